-- Analytics: the conversions the company's systems report, the replies contacts send, and
-- the indexes attribution and the reports read by.
--
-- Attribution (admin/core/attribution.py) is stored with the row when it is recorded:
-- the report then counts rows and never re-runs the window logic. contact_id is kept
-- nullable (ON DELETE SET NULL) so that erasing a contact (152-FZ) keeps the counts.

CREATE TABLE admin.conversions (
    id          bigserial PRIMARY KEY,
    external_id text NOT NULL UNIQUE,      -- the sender's id: posting it again changes nothing
    contact_id  bigint REFERENCES admin.contacts (id) ON DELETE SET NULL,
    event       text NOT NULL,
    value       numeric(16, 4),
    currency    char(3),
    at          timestamptz NOT NULL,
    campaign_id bigint,                    -- NULL: no campaign message within the window
    message_id  bigint,
    variant     char(1),
    source      text NOT NULL DEFAULT '',  -- the API token that posted it
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversions_campaign ON admin.conversions (campaign_id, variant)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX conversions_at ON admin.conversions (at);

-- A reply's text is not kept: analytics needs that and when a contact answered, and
-- whether it was an opt-out, not what they wrote.
CREATE TABLE admin.replies (
    inbound_id  bigint PRIMARY KEY,        -- the gateway's inbound id: a replayed entry is one reply
    contact_id  bigint REFERENCES admin.contacts (id) ON DELETE SET NULL,
    campaign_id bigint,
    message_id  bigint,
    variant     char(1),
    at          timestamptz NOT NULL,
    opt_out     boolean NOT NULL DEFAULT false,
    opt_in      boolean NOT NULL DEFAULT false
);
CREATE INDEX replies_campaign ON admin.replies (campaign_id, variant) WHERE campaign_id IS NOT NULL;

-- Attribution looks up a contact's recent campaign messages.
CREATE INDEX IF NOT EXISTS campaign_messages_contact_at
    ON admin.campaign_messages (contact_id, accepted_at);
-- Delivery over time and the daily view bucket by these.
CREATE INDEX IF NOT EXISTS campaign_messages_campaign_accepted
    ON admin.campaign_messages (campaign_id, accepted_at);

