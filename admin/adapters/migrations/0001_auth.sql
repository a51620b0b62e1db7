-- The admin's own schema: staff users, their sessions, API tokens for systems, the audit log.
CREATE SCHEMA IF NOT EXISTS admin;

CREATE TABLE admin.users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('admin', 'marketer', 'analyst', 'operator', 'sre')),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE UNIQUE INDEX users_email ON admin.users (lower(email));

-- Only a hash of the session token is stored: a leaked table opens no session.
CREATE TABLE admin.sessions (
    token_hash bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES admin.users (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    ip         text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user ON admin.sessions (user_id);

CREATE TABLE admin.api_tokens (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE admin.audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    bigint,
    actor      text NOT NULL,           -- e-mail or token name, kept if the user goes
    action     text NOT NULL,           -- e.g. contacts.read_pii, campaign.start
    target     text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}',
    ip         text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON admin.audit (at DESC);

CREATE TABLE admin.login_failures (
    id  bigserial PRIMARY KEY,
    key text NOT NULL,                  -- "email:<lower>" or "ip:<addr>"
    at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key ON admin.login_failures (key, at);
