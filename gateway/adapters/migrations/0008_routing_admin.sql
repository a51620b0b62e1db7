-- Routing changed at run time by the operators (the admin's providers page): it must hold
-- in every gateway process on every machine, so it lives here, not in one file or process.
-- Each process polls routing_admin.version (gateway/services/routing_admin.py) and, when
-- it moved, applies the stored table the way a config reload does.

-- One row. document NULL: the config file's [[routes]] apply; else a parsed-and-checked
-- {"routes": [...], "routing": {...}} document that replaces them. Every change (the
-- document, a provider disabled or enabled) bumps the version in the same statement.
CREATE TABLE routing_admin (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL DEFAULT 0,
    document jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
INSERT INTO routing_admin (id) VALUES (true);

-- A disabled provider takes no new submissions (routed as if down); its binds stay up
-- so that receipts of what it already carries still arrive.
CREATE TABLE disabled_providers (
    name text PRIMARY KEY,
    disabled_at timestamptz NOT NULL DEFAULT now(),
    disabled_by text
);

-- The gateway operators' scope: routes, prices and providers for every client.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_known;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known
    CHECK (scopes <@ '{send,read,admin,operator}'::text[] AND cardinality(scopes) > 0);
