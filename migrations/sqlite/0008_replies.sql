-- wetoken schema, version 8: replies to users' messages (SPEC §14).
-- A reply webhook (reply = 1) is called while WeChat waits for the push's
-- answer; at most one covers any account. A delivery keeps the reply it
-- gave and how long it took (reply_ms).

ALTER TABLE wt_webhooks ADD COLUMN reply BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wt_deliveries ADD COLUMN reply TEXT;
ALTER TABLE wt_deliveries ADD COLUMN reply_ms BIGINT;

-- The newest message or event of an account (the console's "last push").
CREATE INDEX IF NOT EXISTS wt_events_account ON wt_events (account_id, id);
