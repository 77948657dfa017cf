-- wetoken schema, version 8: replies to users' messages (SPEC §14).
-- A reply webhook (reply = 1) is called while WeChat waits for the push's
-- answer; at most one covers any account. A delivery keeps the reply it
-- gave and how long it took (reply_ms).
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.

ALTER TABLE wt_webhooks ADD (reply NUMBER(19) DEFAULT 0 NOT NULL);
ALTER TABLE wt_deliveries ADD (reply CLOB, reply_ms NUMBER(19));

-- The newest message or event of an account (the console's "last push").
CREATE INDEX wt_events_account ON wt_events (account_id, id);
