-- Access control (gateway/core/access.py): scopes per API key, sender allow-lists.

-- Keys made before scopes keep every scope: nothing that worked stops working.
ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{send,read,admin}';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known
    CHECK (scopes <@ '{send,read,admin}'::text[] AND cardinality(scopes) > 0);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

-- NULL: any sender id (as before); a list: the listed ids and the default sender only.
ALTER TABLE clients ADD COLUMN allowed_senders text[];
