-- Campaigns: what to send to whom and when, where the runner is, and what it sent.
--
-- The runner walks the audience once per run, one keyset cursor per time zone
-- (``cursors``: zone -> last contact id handed to the gateway; a zone in ``zones_done``
-- has no contact left). A chunk's messages, its contact_sends and its cursor advance
-- commit in one transaction, so a crash resumes where the last chunk ended; a chunk sent
-- but not recorded is resent with the same client_ref and the gateway returns the same
-- messages. ``lease_owner`` / ``lease_until`` keep two admin processes off one campaign.
CREATE TABLE admin.campaigns (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    state        text NOT NULL DEFAULT 'draft'
                 CHECK (state IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled')),
    audience_id  bigint NOT NULL,
    sender       text NOT NULL,
    variants     jsonb NOT NULL,  -- [{"variant": "A", "template_id": 1, "percent": "50"}, ...]
    schedule     jsonb NOT NULL,  -- admin.core.campaigns.schedule_json
    window_start time,            -- NULL: any time of day
    window_end   time,
    rate_per_s   int NOT NULL DEFAULT 100 CHECK (rate_per_s > 0),
    cap_messages int CHECK (cap_messages > 0),  -- NULL: no frequency cap
    cap_period   interval,
    next_run_at  timestamptz,     -- a scheduled campaign falls due then
    run_id       int NOT NULL DEFAULT 0,
    cursors      jsonb NOT NULL DEFAULT '{}',
    zones_done   text[] NOT NULL DEFAULT '{}',
    lease_owner  text,
    lease_until  timestamptz,
    total        int NOT NULL DEFAULT 0,  -- eligible contacts when the run began
    sent         int NOT NULL DEFAULT 0,  -- accepted by the gateway in this run
    rejected     int NOT NULL DEFAULT 0,  -- refused by the gateway (a bad number...)
    created_by   bigint REFERENCES admin.users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX campaigns_due ON admin.campaigns (next_run_at) WHERE state IN ('scheduled', 'running');

CREATE TABLE admin.campaign_runs (
    campaign_id bigint NOT NULL REFERENCES admin.campaigns (id) ON DELETE CASCADE,
    run_id      int NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    total       int NOT NULL DEFAULT 0,
    sent        int NOT NULL DEFAULT 0,
    rejected    int NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, run_id)
);

CREATE TABLE admin.campaign_messages (
    message_id   bigint PRIMARY KEY,  -- the gateway's id
    campaign_id  bigint NOT NULL REFERENCES admin.campaigns (id) ON DELETE CASCADE,
    run_id       int NOT NULL,
    contact_id   bigint NOT NULL,
    variant      char(1) NOT NULL,
    status       text NOT NULL DEFAULT 'accepted',
    parts        int NOT NULL DEFAULT 1,
    accepted_at  timestamptz NOT NULL DEFAULT now(),
    submitted_at timestamptz,
    delivered_at timestamptz,
    final_at     timestamptz,
    provider     text,
    error_code   text,
    price        numeric(14, 6)
);
-- One message per contact per run: the database refuses a second one whatever happens.
CREATE UNIQUE INDEX campaign_messages_contact ON admin.campaign_messages (campaign_id, run_id, contact_id);
CREATE INDEX campaign_messages_status ON admin.campaign_messages (campaign_id, status);

-- Marketing sends per contact, for the frequency cap across campaigns.
CREATE TABLE admin.contact_sends (
    contact_id  bigint NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    campaign_id bigint NOT NULL
);
CREATE INDEX contact_sends_contact ON admin.contact_sends (contact_id, sent_at);

-- The runner's per-zone keyset scan: WHERE timezone = $zone AND id > $cursor ORDER BY id.
CREATE INDEX IF NOT EXISTS contacts_zone_id ON admin.contacts (timezone, id);
