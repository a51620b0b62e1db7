-- The company's BI system reads these views, and nothing else (docs/bi.md).
--
-- Schema bi holds only views (and the masking function they call). The views run with
-- their owner's rights, so the role bi_reader needs no right on the tables under them:
-- it gets USAGE on bi and SELECT on its views, and cannot read admin.contacts, the
-- gateway's messages or anything else. Phone numbers leave masked; contacts appear by
-- their id only. A BI login is a role that inherits bi_reader (see docs/bi.md).
CREATE SCHEMA IF NOT EXISTS bi;
COMMENT ON SCHEMA bi IS 'Read-only views for BI (smsgw admin); documented in docs/bi.md';

-- As providers.masking.mask_phone: +79211234567 -> +79*******67.
CREATE OR REPLACE FUNCTION bi.mask_phone(phone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN length(phone) <= 5 THEN repeat('*', length(phone))
                ELSE left(phone, 3) || repeat('*', length(phone) - 5) || right(phone, 2) END
$$;

CREATE VIEW bi.campaigns AS
SELECT id AS campaign_id, name, state, audience_id, sender, rate_per_s, cap_messages,
       cap_period, created_at, started_at, finished_at
FROM admin.campaigns;
COMMENT ON VIEW bi.campaigns IS 'One row per campaign: what it is and its state';

CREATE VIEW bi.campaign_messages AS
SELECT cm.message_id, cm.campaign_id, cm.run_id, cm.variant::text AS variant, cm.contact_id,
       bi.mask_phone(c.phone) AS phone_masked, c.region, c.timezone, c.operator,
       cm.status, cm.parts, cm.price, cm.provider, cm.error_code,
       cm.accepted_at, cm.submitted_at, cm.delivered_at, cm.final_at,
       extract(epoch FROM cm.delivered_at - cm.accepted_at) AS seconds_to_deliver
FROM admin.campaign_messages cm LEFT JOIN admin.contacts c ON c.id = cm.contact_id;
COMMENT ON VIEW bi.campaign_messages IS
    'One row per message a campaign sent, with its latest status; phone masked';

CREATE VIEW bi.conversions AS
SELECT id AS conversion_id, external_id, contact_id, event, value, currency, at,
       campaign_id, message_id, variant::text AS variant, source, received_at
FROM admin.conversions;
COMMENT ON VIEW bi.conversions IS
    'Conversions posted to /v1/conversions; campaign_id NULL when none within the window';

CREATE VIEW bi.clicks AS
SELECT k.id AS click_id, k.at, l.code, l.url, l.campaign_id, l.message_id, l.contact_id
FROM admin.clicks k JOIN admin.links l ON l.code = k.code;
COMMENT ON VIEW bi.clicks IS 'One row per visit of a short link /l/{code}';

CREATE VIEW bi.replies AS
SELECT inbound_id, contact_id, campaign_id, message_id, variant::text AS variant, at,
       opt_out, opt_in
FROM admin.replies;
COMMENT ON VIEW bi.replies IS 'Inbound messages from contacts (never their text)';

CREATE VIEW bi.campaign_results AS
WITH m AS (
    SELECT campaign_id, variant::text AS variant, count(*) AS sent,
           count(*) FILTER (WHERE status = 'delivered') AS delivered,
           count(*) FILTER (WHERE status IN ('undeliverable', 'rejected', 'failed')) AS failed,
           count(*) FILTER (WHERE status = 'expired') AS expired,
           count(*) FILTER (WHERE status IN ('accepted', 'queued', 'submitted')) AS pending,
           COALESCE(sum(price), 0) AS cost,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM delivered_at - accepted_at)) AS p50_seconds_to_deliver,
           percentile_cont(0.95) WITHIN GROUP (
               ORDER BY extract(epoch FROM delivered_at - accepted_at)) AS p95_seconds_to_deliver
    FROM admin.campaign_messages GROUP BY 1, 2
), k AS (
    SELECT cm.campaign_id, cm.variant::text AS variant,
           count(DISTINCT cm.message_id) AS clicks_unique, count(*) AS clicks_total
    FROM admin.links l JOIN admin.clicks c ON c.code = l.code
         JOIN admin.campaign_messages cm ON cm.message_id = l.message_id
    GROUP BY 1, 2
), r AS (
    SELECT campaign_id, variant::text AS variant, count(*) AS replies,
           count(*) FILTER (WHERE opt_out) AS opt_outs
    FROM admin.replies WHERE campaign_id IS NOT NULL GROUP BY 1, 2
), v AS (
    SELECT campaign_id, variant::text AS variant, count(*) AS conversions,
           COALESCE(sum(value), 0) AS conversion_value
    FROM admin.conversions WHERE campaign_id IS NOT NULL GROUP BY 1, 2
)
SELECT m.campaign_id, m.variant, m.sent, m.delivered, m.failed, m.expired, m.pending,
       round(m.delivered::numeric / NULLIF(m.sent, 0), 4) AS delivery_rate, m.cost,
       m.p50_seconds_to_deliver, m.p95_seconds_to_deliver,
       COALESCE(k.clicks_unique, 0) AS clicks_unique, COALESCE(k.clicks_total, 0) AS clicks_total,
       COALESCE(r.replies, 0) AS replies, COALESCE(r.opt_outs, 0) AS opt_outs,
       COALESCE(v.conversions, 0) AS conversions,
       COALESCE(v.conversion_value, 0) AS conversion_value
FROM m LEFT JOIN k USING (campaign_id, variant) LEFT JOIN r USING (campaign_id, variant)
       LEFT JOIN v USING (campaign_id, variant);
COMMENT ON VIEW bi.campaign_results IS 'Per campaign and A/B variant: what it did';

CREATE VIEW bi.daily_delivery AS
SELECT (accepted_at AT TIME ZONE 'UTC')::date AS day, campaign_id,
       COALESCE(provider, '') AS provider, count(*) AS sent,
       count(*) FILTER (WHERE status = 'delivered') AS delivered,
       count(*) FILTER (WHERE status IN ('undeliverable', 'rejected', 'failed')) AS failed,
       count(*) FILTER (WHERE status = 'expired') AS expired,
       COALESCE(sum(price), 0) AS cost
FROM admin.campaign_messages GROUP BY 1, 2, 3;
COMMENT ON VIEW bi.daily_delivery IS 'Per UTC day (of sending), campaign and provider';

-- Roles belong to the whole server: another database on it may have made it already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bi_reader') THEN
        CREATE ROLE bi_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- made at the same moment by a migration of another database
END
$$;
COMMENT ON ROLE bi_reader IS 'Reads the bi views only; BI logins are granted this role';

REVOKE ALL ON SCHEMA bi FROM PUBLIC;
GRANT USAGE ON SCHEMA bi TO bi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA bi TO bi_reader;
GRANT EXECUTE ON FUNCTION bi.mask_phone(text) TO bi_reader;
