-- One-time passwords: challenges (durable, single use under a row lock) and pumping
-- alerts. The theory is in gateway/core/otp.py; the counters themselves are in Redis.

CREATE TABLE otp_challenges (
    id           bigint PRIMARY KEY,
    client_id    bigint NOT NULL,
    destination  text NOT NULL,
    client_ref   text,
    salt         bytea NOT NULL,
    code_hash    bytea NOT NULL,              -- HMAC-SHA256, never the code
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    tries        smallint NOT NULL DEFAULT 0,
    max_tries    smallint NOT NULL CHECK (max_tries > 0),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'verified', 'locked', 'superseded')),
    done_at      timestamptz,
    message_id   bigint,                      -- the SMS that carried the code
    CHECK (tries <= max_tries)
);
CREATE UNIQUE INDEX otp_challenges_ref ON otp_challenges (client_id, client_ref)
    WHERE client_ref IS NOT NULL;
-- A new code to a number supersedes the client's pending one.
CREATE INDEX otp_challenges_pending ON otp_challenges (client_id, destination)
    WHERE state = 'pending';
CREATE INDEX otp_challenges_created ON otp_challenges (created_at);

-- One row per counter that started refusing (at most one per counter per window), for
-- GET /v1/otp/alerts; the subject is masked (a number keeps its country code and last
-- two digits, a range its first digits).
CREATE TABLE otp_alerts (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    client_id   bigint NOT NULL,
    reason      text NOT NULL,
    country     text NOT NULL,
    subject     text NOT NULL,
    lim         integer NOT NULL,
    window_s    integer NOT NULL
);
CREATE INDEX otp_alerts_client ON otp_alerts (client_id, id);
