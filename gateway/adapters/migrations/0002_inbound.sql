-- Inbound (mobile-originated) messages and the opt-out list. See gateway/core/inbound.py.

-- Parts of concatenated messages wait here for their siblings: they may come on any bind,
-- to any process, across restarts. A joined part stays (payload replaced by its SHA-256,
-- joined_at set) for the part TTL, so that an SMSC repeating a part is recognised; a part
-- whose payload differs is a new message reusing the reference and starts waiting again.
CREATE TABLE inbound_parts (
    provider     text NOT NULL,
    source       text NOT NULL,
    destination  text NOT NULL,
    ref          integer NOT NULL,
    total        smallint NOT NULL,
    seq          smallint NOT NULL,
    data_coding  smallint NOT NULL,
    payload      bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    joined_at    timestamptz,
    PRIMARY KEY (provider, source, destination, ref, total, seq)
);
CREATE INDEX inbound_parts_waiting ON inbound_parts (stored_at) WHERE joined_at IS NULL;
CREATE INDEX inbound_parts_joined ON inbound_parts (joined_at) WHERE joined_at IS NOT NULL;

-- Whole messages (or, marked incomplete, what arrived before the part TTL ran out).
-- client_id: the client whose forwarding rule took it (NULL when no rule matched).
CREATE TABLE inbound_messages (
    id           bigint PRIMARY KEY,
    provider     text NOT NULL,
    source       text NOT NULL,
    destination  text NOT NULL,
    body         text NOT NULL,
    parts        smallint NOT NULL,
    total        smallint NOT NULL,
    client_id    bigint,
    action       text,              -- 'opt_out' | 'opt_in' | NULL
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbound_messages_client ON inbound_messages (client_id, id) WHERE client_id IS NOT NULL;
CREATE INDEX inbound_messages_source ON inbound_messages (source);

-- Numbers that asked for no more bulk messages: by SMS (a STOP keyword) or through the API.
-- client_id: the client that added it, or whose number received the STOP.
CREATE TABLE opt_outs (
    number       text PRIMARY KEY,
    since        timestamptz NOT NULL DEFAULT now(),
    via          text NOT NULL,     -- 'sms' | 'api'
    keyword      text,
    inbound_id   bigint,
    client_id    bigint
);
CREATE INDEX opt_outs_client ON opt_outs (client_id, number);
