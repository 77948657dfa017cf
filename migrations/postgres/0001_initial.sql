-- wetoken schema, version 1 (PostgreSQL 12+).
-- Instants are epoch milliseconds. Secrets and credential values are sealed
-- with the master key (AES-256-GCM) before they are written.
-- Ids sort and compare byte for byte (COLLATE "C").

CREATE TABLE IF NOT EXISTS wt_accounts (
    id          VARCHAR(200) COLLATE "C" NOT NULL PRIMARY KEY,
    kind        VARCHAR(16)  NOT NULL,
    parent_id   VARCHAR(200) COLLATE "C",
    secrets     TEXT         NOT NULL,
    config      TEXT         NOT NULL,
    status      VARCHAR(32)  NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
);

CREATE INDEX IF NOT EXISTS wt_accounts_parent ON wt_accounts (parent_id);

CREATE TABLE IF NOT EXISTS wt_credentials (
    account_id    VARCHAR(200) COLLATE "C" NOT NULL,
    kind          VARCHAR(32)  COLLATE "C" NOT NULL,
    -- sealed value; WeChat asks for at least 512 characters per credential
    value         TEXT,
    expires_at    BIGINT,
    version       BIGINT       NOT NULL DEFAULT 0,
    refreshed_at  BIGINT,
    lease_owner   VARCHAR(64),
    lease_until   BIGINT,
    last_errcode  BIGINT,
    last_errmsg   TEXT,
    last_error_at BIGINT,
    blocked_until BIGINT,
    forced_at     BIGINT,
    due_at        BIGINT,
    attempts      BIGINT       NOT NULL DEFAULT 0,
    -- SHA-256 of the value, and of the one before it while WeChat's grace
    -- lasts: finds the account a presented token belongs to
    value_hash     VARCHAR(64),
    previous_hash  VARCHAR(64),
    previous_until BIGINT,
    PRIMARY KEY (account_id, kind)
);

CREATE INDEX IF NOT EXISTS wt_credentials_due ON wt_credentials (due_at);
CREATE INDEX IF NOT EXISTS wt_credentials_hash ON wt_credentials (value_hash);
CREATE INDEX IF NOT EXISTS wt_credentials_previous ON wt_credentials (previous_hash);

CREATE TABLE IF NOT EXISTS wt_keys (
    name        VARCHAR(64)  COLLATE "C" NOT NULL PRIMARY KEY,
    hash        VARCHAR(64)  NOT NULL UNIQUE,
    accounts    TEXT         NOT NULL,
    created_at  BIGINT       NOT NULL
);
