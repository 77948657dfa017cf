-- wetoken schema, version 3: events and webhooks (SPEC §10).
-- The outbox: an event is written in the transaction of the state change it
-- reports. Its id comes from the one counter row of wt_event_seq, whose row
-- lock the writing transaction holds until it commits, so ids increase in
-- commit order and a reader's cursor never skips one.
CREATE TABLE IF NOT EXISTS wt_event_seq (
    name        VARCHAR(16)  NOT NULL PRIMARY KEY,
    last_id     BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

INSERT IGNORE INTO wt_event_seq (name, last_id) VALUES ('events', 0);

CREATE TABLE IF NOT EXISTS wt_events (
    id          BIGINT       NOT NULL PRIMARY KEY,
    event_type  VARCHAR(100) NOT NULL,
    account_id  VARCHAR(200) NOT NULL,
    -- the parent of a child account, else the account: `{id}/*` filters
    family_id   VARCHAR(200) NOT NULL,
    created_at  BIGINT       NOT NULL,
    data        MEDIUMTEXT        NOT NULL,
    -- the callback request (query, content type, body) for `wechat` webhooks
    source      MEDIUMTEXT,
    -- SHA-256 of a callback's encrypted message: WeChat's retries are one event
    dedupe      VARCHAR(64)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX wt_events_created ON wt_events (created_at);
CREATE UNIQUE INDEX wt_events_dedupe ON wt_events (dedupe);

CREATE TABLE IF NOT EXISTS wt_webhooks (
    name        VARCHAR(64)  NOT NULL PRIMARY KEY,
    url         VARCHAR(2000) NOT NULL,
    events      TEXT         NOT NULL,
    accounts    TEXT         NOT NULL,
    format      VARCHAR(16)  NOT NULL,
    -- sealed with the master key
    secret      TEXT         NOT NULL,
    -- the last event id handed to its deliveries
    cursor_id   BIGINT       NOT NULL,
    created_at  BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS wt_deliveries (
    webhook     VARCHAR(64)  NOT NULL,
    event_id    BIGINT       NOT NULL,
    status      VARCHAR(16)  NOT NULL,
    attempts    BIGINT       NOT NULL,
    next_at     BIGINT       NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL,
    last_status BIGINT,
    last_error  VARCHAR(1000),
    lease_owner VARCHAR(64),
    lease_until BIGINT,
    PRIMARY KEY (webhook, event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX wt_deliveries_due ON wt_deliveries (webhook, status, next_at);
CREATE INDEX wt_deliveries_age ON wt_deliveries (status, created_at);
