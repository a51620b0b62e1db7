-- smsgw schema v1. State codes come from gateway/core/lifecycle.py (code / 10 = rank).

CREATE TABLE clients (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    callback_url    text,
    webhook_secret  text NOT NULL,
    default_sender  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- API keys are 256-bit random tokens: a SHA-256 of them cannot be brute-forced,
-- so a slow password hash would only cost latency on every request.
CREATE TABLE api_keys (
    key_hash    bytea PRIMARY KEY,
    client_id   bigint NOT NULL REFERENCES clients (id),
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Message ids are allocated by the gateway (time-ordered, see gateway/core/ids.py).
CREATE TABLE messages (
    id              bigint PRIMARY KEY,
    client_id       bigint NOT NULL,
    client_ref      text,
    destination     text NOT NULL,
    sender          text NOT NULL,
    body            text NOT NULL,
    encoding        text NOT NULL,
    parts           smallint NOT NULL,
    priority        smallint NOT NULL,
    state           smallint NOT NULL DEFAULT 10,
    callback_url    text,
    send_at         timestamptz,
    expires_at      timestamptz,
    due_at          timestamptz NOT NULL,     -- when the sweeper must (re)enqueue it if not in the queue
    in_queue        boolean NOT NULL DEFAULT false,
    attempts        smallint NOT NULL DEFAULT 0,
    provider        text,
    price           numeric(14, 6),
    parts_delivered smallint NOT NULL DEFAULT 0,
    error_code      text,
    accepted_at     timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz,
    submitted_at    timestamptz,
    done_at         timestamptz
);
CREATE UNIQUE INDEX messages_client_ref ON messages (client_id, client_ref) WHERE client_ref IS NOT NULL;
CREATE INDEX messages_due ON messages (due_at) WHERE state < 30 AND NOT in_queue;
CREATE INDEX messages_client_time ON messages (client_id, accepted_at);
CREATE INDEX messages_destination ON messages (destination);

-- One row per submitted part: the provider's id (canonical form) → our message.
CREATE TABLE message_parts (
    provider            text NOT NULL,
    provider_key        text NOT NULL,
    message_id          bigint NOT NULL,
    part                smallint NOT NULL,
    provider_message_id text NOT NULL,
    status              smallint,
    error_code          text,
    done_at             timestamptz,
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_key)
);
CREATE INDEX message_parts_message ON message_parts (message_id);

-- Receipts whose id is not (yet) known: a receipt can overtake its submit response.
CREATE TABLE early_receipts (
    provider            text NOT NULL,
    provider_key        text NOT NULL,
    provider_message_id text NOT NULL,
    status              smallint NOT NULL,
    error_code          text,
    done_at             timestamptz,
    received_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_key)
);

-- The durable webhook schedule, filled in the same statement as the status change.
CREATE TABLE webhook_outbox (
    id              bigserial PRIMARY KEY,
    message_id      bigint NOT NULL,
    client_id       bigint NOT NULL,
    url             text NOT NULL,
    payload         text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    last_error      text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX webhook_outbox_message ON webhook_outbox (message_id);

-- Node numbers for the id generator: each process takes one at start.
CREATE SEQUENCE id_nodes CYCLE MAXVALUE 1023 MINVALUE 0 START 0;
