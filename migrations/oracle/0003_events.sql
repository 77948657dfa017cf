-- wetoken schema, version 3: events and webhooks (SPEC §10).
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.
-- The outbox: an event is written in the transaction of the state change it
-- reports. Its id comes from the one counter row of wt_event_seq, whose row
-- lock the writing transaction holds until it commits, so ids increase in
-- commit order and a reader's cursor never skips one.
CREATE TABLE wt_event_seq (
    name        VARCHAR2(16)  NOT NULL PRIMARY KEY,
    last_id     NUMBER(19)       NOT NULL
);

INSERT INTO wt_event_seq (name, last_id) SELECT 'events', 0 FROM dual
    WHERE NOT EXISTS (SELECT 1 FROM wt_event_seq WHERE name = 'events');

CREATE TABLE wt_events (
    id          NUMBER(19)       NOT NULL PRIMARY KEY,
    event_type  VARCHAR2(100) NOT NULL,
    account_id  VARCHAR2(200) NOT NULL,
    -- the parent of a child account, else the account: `{id}/*` filters
    family_id   VARCHAR2(200) NOT NULL,
    created_at  NUMBER(19)       NOT NULL,
    data        CLOB         NOT NULL,
    -- the callback request (query, content type, body) for `wechat` webhooks
    source      CLOB,
    -- SHA-256 of a callback's encrypted message: WeChat's retries are one event
    dedupe      VARCHAR2(64)
);

CREATE INDEX wt_events_created ON wt_events (created_at);
CREATE UNIQUE INDEX wt_events_dedupe ON wt_events (dedupe);

CREATE TABLE wt_webhooks (
    name        VARCHAR2(64)  NOT NULL PRIMARY KEY,
    url         VARCHAR2(2000) NOT NULL,
    events      VARCHAR2(4000)         NOT NULL,
    accounts    VARCHAR2(4000)         NOT NULL,
    format      VARCHAR2(16)  NOT NULL,
    -- sealed with the master key
    secret      VARCHAR2(400)         NOT NULL,
    -- the last event id handed to its deliveries
    cursor_id   NUMBER(19)       NOT NULL,
    created_at  NUMBER(19)       NOT NULL
);

CREATE TABLE wt_deliveries (
    webhook     VARCHAR2(64)  NOT NULL,
    event_id    NUMBER(19)       NOT NULL,
    status      VARCHAR2(16)  NOT NULL,
    attempts    NUMBER(19)       NOT NULL,
    next_at     NUMBER(19)       NOT NULL,
    created_at  NUMBER(19)       NOT NULL,
    updated_at  NUMBER(19)       NOT NULL,
    last_status NUMBER(19),
    last_error  VARCHAR2(1000),
    lease_owner VARCHAR2(64),
    lease_until NUMBER(19),
    PRIMARY KEY (webhook, event_id)
);

CREATE INDEX wt_deliveries_due ON wt_deliveries (webhook, status, next_at);
CREATE INDEX wt_deliveries_age ON wt_deliveries (status, created_at);
