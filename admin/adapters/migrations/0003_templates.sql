-- Message templates, the short links made from them, and the clicks on those links.
CREATE TABLE admin.templates (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (name <> ''),
    text          text NOT NULL,
    defaults      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(defaults) = 'object'),
    transliterate boolean NOT NULL DEFAULT false,
    track_links   boolean NOT NULL DEFAULT false,
    created_by    bigint REFERENCES admin.users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX templates_name ON admin.templates (lower(name));

-- One row per recipient per link: a 1,000,000-contact campaign with one link writes a
-- million rows (batched by the runner). campaign/contact/message ids are not foreign keys:
-- campaigns come in a later migration, and a link must outlive an erased contact's row.
CREATE TABLE admin.links (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{7,64}$'),
    url         text NOT NULL CHECK (url ~ '^https?://'),
    campaign_id bigint,
    contact_id  bigint,
    message_id  bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX links_campaign ON admin.links (campaign_id) WHERE campaign_id IS NOT NULL;
CREATE INDEX links_message ON admin.links (message_id) WHERE message_id IS NOT NULL;

-- The visitor's address is personal data (152-FZ): only a keyed hash is kept, enough to
-- count distinct visitors, never to recover the address.
CREATE TABLE admin.clicks (
    id         bigserial PRIMARY KEY,
    code       text NOT NULL REFERENCES admin.links (code) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    ip_hash    text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX clicks_code ON admin.clicks (code, at);
CREATE INDEX clicks_at ON admin.clicks (at);
