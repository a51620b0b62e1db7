-- Retention, erasure and audit. The theory is in gateway/core/retention.py.

-- 1. Idempotency keys get their own table: a partitioned table cannot hold a unique index
-- without its partition key, and (client_id, client_ref) must stay unique across days.
-- The insert writes both tables in one statement (gateway/adapters/message_store.py).
CREATE TABLE client_refs (
    client_id   bigint NOT NULL,
    client_ref  text NOT NULL,
    message_id  bigint NOT NULL,
    PRIMARY KEY (client_id, client_ref)
);
CREATE INDEX client_refs_message ON client_refs (message_id);  -- retention deletes by id
INSERT INTO client_refs (client_id, client_ref, message_id)
SELECT client_id, client_ref, id FROM messages WHERE client_ref IS NOT NULL;

-- 2. messages partitioned by RANGE (id), one partition per UTC day, plus a DEFAULT one.
ALTER TABLE messages RENAME TO messages_unpartitioned;
ALTER INDEX messages_pkey RENAME TO messages_unpartitioned_pkey;
ALTER INDEX messages_client_ref RENAME TO messages_unpartitioned_client_ref;
ALTER INDEX messages_due RENAME TO messages_unpartitioned_due;
ALTER INDEX messages_client_time RENAME TO messages_unpartitioned_client_time;
ALTER INDEX messages_destination RENAME TO messages_unpartitioned_destination;

CREATE TABLE messages (LIKE messages_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (id);
ALTER TABLE messages ADD PRIMARY KEY (id);
CREATE INDEX messages_due ON messages (due_at) WHERE state < 30 AND NOT in_queue;
CREATE INDEX messages_client_time ON messages (client_id, accepted_at);
CREATE INDEX messages_destination ON messages (destination);
CREATE TABLE messages_default PARTITION OF messages DEFAULT;

-- Day partitions from the oldest stored message through a week ahead. The bounds repeat
-- gateway/core/retention.day_bounds (tests/integration/test_retention.py checks they agree);
-- the maintenance task makes the later ones.
DO $$
DECLARE
    first_day date := LEAST(
        current_date,
        (SELECT (to_timestamp(((min(id) >> 22) + 1767225600000) / 1000.0) AT TIME ZONE 'UTC')::date
         FROM messages_unpartitioned));
    day date;
BEGIN
    FOR day IN SELECT generate_series(GREATEST(first_day, date '2026-01-01'),
                                      (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%s) TO (%s)',
            'messages_p' || to_char(day, 'YYYYMMDD'),
            ((extract(epoch FROM day::timestamp)::bigint * 1000 - 1767225600000) << 22),
            ((extract(epoch FROM (day + 1)::timestamp)::bigint * 1000 - 1767225600000) << 22));
    END LOOP;
END $$;

INSERT INTO messages SELECT * FROM messages_unpartitioned;
DROP TABLE messages_unpartitioned;

-- 3. Aggregates kept for ever: one row per day and kind, rolled up before a day's
-- partition is dropped (recomputed whole each time: idempotent). provider '' = none.
CREATE TABLE daily_stats (
    day         date NOT NULL,
    client_id   bigint NOT NULL,
    provider    text NOT NULL,
    priority    smallint NOT NULL,
    state       smallint NOT NULL,
    messages    bigint NOT NULL,
    parts       bigint NOT NULL,
    cost        numeric(18, 6) NOT NULL,
    rolled_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, client_id, provider, priority, state)
);

-- 4. Erasure. Personal data is replaced by a keyed hash where something must still be
-- matched (an erased person's opt-out must still be honoured; the audit names whom).
-- The key is 244 random bits made here; see README "Retention and erasure" for its limits.
CREATE TABLE erasure_key (
    only_one  boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    key       bytea NOT NULL
);
INSERT INTO erasure_key (key)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');

CREATE TABLE opt_out_hashes (
    number_hash  bytea PRIMARY KEY,     -- sha256(erasure_key.key || number)
    since        timestamptz NOT NULL,
    via          text NOT NULL,
    client_id    bigint
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL,          -- erase | retention
    actor       text NOT NULL,
    reason      text,
    subject_hash bytea,                 -- sha256(erasure_key.key || number); never the number
    counts      jsonb NOT NULL DEFAULT '{}'
);
