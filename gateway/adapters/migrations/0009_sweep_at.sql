-- The sweeper walks messages in order of `sweep_at`, from a cursor, instead of reading two
-- partial indexes on `state` and `in_queue` (gateway/services/sweeper.py has the theory).
-- An index that names a column the hot path changes (even in its WHERE) makes every update
-- of a row write a new entry into every index of the table: the four updates of a message
-- (queued, claimed, submitted, final) were never HOT. `sweep_at` is set when a message is
-- accepted and changed on the hot path only when the sweeper has already passed it, so those
-- updates stay on their page and leave the indexes alone (docs/benchmarks.md).
-- Upgrading to it: stop every gateway process, then start the new ones (the old ones'
-- statements would leave sweep_at behind the sweeper; the default covers their inserts).
ALTER TABLE messages ADD COLUMN sweep_at timestamptz DEFAULT now();  -- NULL: never visited
UPDATE messages SET sweep_at = now() WHERE state < 40;
CREATE INDEX messages_sweep ON messages (sweep_at, id);
DROP INDEX messages_due;
DROP INDEX messages_awaiting_receipt;

-- Where the sweepers are: every row before (at, id) has been visited.
CREATE TABLE sweep_cursor (
    only_one  boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    at        timestamptz NOT NULL,
    id        bigint NOT NULL
);
INSERT INTO sweep_cursor (at, id) VALUES (now(), 0);

-- Room on each page for the new versions of its rows (a HOT update stays on its page).
-- New day partitions get it when made (gateway/adapters/retention_store.py).
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'messages'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 50)', part);
    END LOOP;
END $$;
-- A part's receipt changes no indexed column either.
ALTER TABLE message_parts SET (fillfactor = 50);
