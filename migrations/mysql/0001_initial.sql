-- wetoken schema, version 1 (MySQL 8 / MariaDB 10.5+).
-- Instants are epoch milliseconds. Secrets and credential values are sealed
-- with the master key (AES-256-GCM) before they are written.
-- Ids compare byte for byte (utf8mb4_bin): appids are case-sensitive.

CREATE TABLE IF NOT EXISTS wt_accounts (
    id          VARCHAR(200) NOT NULL PRIMARY KEY,
    kind        VARCHAR(16)  NOT NULL,
    parent_id   VARCHAR(200),
    secrets     TEXT         NOT NULL,
    config      TEXT         NOT NULL,
    status      VARCHAR(32)  NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL,
    KEY wt_accounts_parent (parent_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS wt_credentials (
    account_id    VARCHAR(200) NOT NULL,
    kind          VARCHAR(32)  NOT NULL,
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
    PRIMARY KEY (account_id, kind),
    KEY wt_credentials_due (due_at),
    KEY wt_credentials_hash (value_hash),
    KEY wt_credentials_previous (previous_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS wt_keys (
    name        VARCHAR(64)  NOT NULL PRIMARY KEY,
    hash        VARCHAR(64)  NOT NULL,
    accounts    TEXT         NOT NULL,
    created_at  BIGINT       NOT NULL,
    UNIQUE KEY wt_keys_hash (hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
