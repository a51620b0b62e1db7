-- Billing: prepaid balances with a credit limit, per-client intake limits, holds, a ledger.
-- The theory is in gateway/core/billing.py.

ALTER TABLE clients
    ADD COLUMN balance      numeric(16, 6),                         -- NULL: not billed
    ADD COLUMN credit_limit numeric(16, 6) NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
    ADD COLUMN held         numeric(16, 6) NOT NULL DEFAULT 0,      -- open holds, for GET /v1/balance
    ADD COLUMN tps          integer CHECK (tps > 0),                -- messages/s at the API; NULL: unlimited
    ADD COLUMN daily_quota  integer CHECK (daily_quota >= 0);       -- messages per UTC day; NULL: unlimited

-- What was held at accept for the dearest eligible route; NULL for clients not billed.
ALTER TABLE messages ADD COLUMN price_hold numeric(14, 6);

-- Every change to a balance, so that balance = sum(amount) can be audited. Holds that
-- settle at exactly their price change no balance and write no line.
CREATE TABLE ledger (
    id          bigserial PRIMARY KEY,
    client_id   bigint NOT NULL,
    amount      numeric(16, 6) NOT NULL,
    reason      text NOT NULL,          -- topup | hold | settle | refund
    message_id  bigint,                 -- NULL for top-ups
    at          timestamptz NOT NULL DEFAULT now()
);
-- No index on message_id: it would cost every hot-path insert; a message's lines are
-- found through its client and time.
CREATE INDEX ledger_client_at ON ledger (client_id, at);
