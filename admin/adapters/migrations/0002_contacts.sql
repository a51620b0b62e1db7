-- Contacts (the people campaigns write to) and audiences (saved queries over them).
--
-- Indexes serve the audience counts a marketer watches while editing a query (1,000,000
-- contacts, several criteria): each criterion the builder offers can use one, and the
-- planner ANDs/ORs them in a bitmap. Text "contains" needs trigrams (pg_trgm), created
-- only where the server has the extension; without it those criteria scan.
CREATE TABLE admin.contacts (
    id               bigserial PRIMARY KEY,
    phone            text NOT NULL UNIQUE,          -- E.164
    external_id      text,                          -- the CRM's id, if it sends one
    first_name       text,
    last_name        text,
    middle_name      text,
    email            text,
    city             text,
    region           text,
    timezone         text NOT NULL DEFAULT 'Europe/Moscow',  -- IANA
    timezone_derived boolean NOT NULL DEFAULT true,  -- guessed from the number, not given
    gender           text CHECK (gender IN ('m', 'f')),
    birth_date       date,
    birth_mmdd       smallint GENERATED ALWAYS AS (
                         (extract(month FROM birth_date) * 100 + extract(day FROM birth_date))::smallint
                     ) STORED,                     -- "birthday in the next N days"
    signup_date      date,
    source_site      text,
    tags             text[] NOT NULL DEFAULT '{}',
    subscribed       boolean NOT NULL DEFAULT true,
    consent          boolean NOT NULL DEFAULT false,  -- 152-FZ / 38-FZ consent to advertising
    consent_at       timestamptz,
    consent_source   text,
    last_purchase_at timestamptz,
    total_spend      numeric(14, 2) NOT NULL DEFAULT 0,
    purchases        integer NOT NULL DEFAULT 0,
    last_activity_at timestamptz,
    operator         text,
    language         text,
    loyalty_level    text,
    custom           jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX contacts_tags ON admin.contacts USING gin (tags);
CREATE INDEX contacts_custom ON admin.contacts USING gin (custom jsonb_path_ops);
CREATE INDEX contacts_region ON admin.contacts (region);
CREATE INDEX contacts_city ON admin.contacts (city);
CREATE INDEX contacts_source_site ON admin.contacts (source_site);
CREATE INDEX contacts_loyalty ON admin.contacts (loyalty_level);
CREATE INDEX contacts_birth_date ON admin.contacts (birth_date);
CREATE INDEX contacts_birth_mmdd ON admin.contacts (birth_mmdd);
CREATE INDEX contacts_signup_date ON admin.contacts (signup_date);
CREATE INDEX contacts_last_purchase ON admin.contacts (last_purchase_at);
CREATE INDEX contacts_last_activity ON admin.contacts (last_activity_at);
CREATE INDEX contacts_total_spend ON admin.contacts (total_spend);
CREATE INDEX contacts_external_id ON admin.contacts (external_id) WHERE external_id IS NOT NULL;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        -- the expressions of admin.core.audience.fold(), which "contains" compiles to
        EXECUTE 'CREATE INDEX contacts_first_name_trgm ON admin.contacts USING gin '
                '((translate(lower(first_name), ''АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ'', ''абвгдеёжзийклмнопрстуфхцчшщъыьэюя'')) gin_trgm_ops)';
        EXECUTE 'CREATE INDEX contacts_last_name_trgm ON admin.contacts USING gin '
                '((translate(lower(last_name), ''АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ'', ''абвгдеёжзийклмнопрстуфхцчшщъыьэюя'')) gin_trgm_ops)';
        EXECUTE 'CREATE INDEX contacts_email_trgm ON admin.contacts USING gin '
                '((translate(lower(email), ''АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ'', ''абвгдеёжзийклмнопрстуфхцчшщъыьэюя'')) gin_trgm_ops)';
        EXECUTE 'CREATE INDEX contacts_city_trgm ON admin.contacts USING gin '
                '((translate(lower(city), ''АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ'', ''абвгдеёжзийклмнопрстуфхцчшщъыьэюя'')) gin_trgm_ops)';
    END IF;
END
$$;

CREATE TABLE admin.audiences (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    query      jsonb NOT NULL,
    created_by bigint REFERENCES admin.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- one name per audience whatever its case, Cyrillic too (lower() alone folds ASCII only on a
-- C-locale server): the expression of admin.core.audience.fold()
CREATE UNIQUE INDEX audiences_name ON admin.audiences
    ((translate(lower(name), 'АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ', 'абвгдеёжзийклмнопрстуфхцчшщъыьэюя')));
