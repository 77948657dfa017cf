-- wetoken schema, version 1 (Oracle 12c+).
-- Instants are epoch milliseconds. Secrets and credential values are sealed
-- with the master key (AES-256-GCM) before they are written.
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.

CREATE TABLE wt_accounts (
    id          VARCHAR2(200) NOT NULL PRIMARY KEY,
    kind        VARCHAR2(16)  NOT NULL,
    parent_id   VARCHAR2(200),
    secrets     CLOB          NOT NULL,
    config      CLOB          NOT NULL,
    status      VARCHAR2(32)  NOT NULL,
    created_at  NUMBER(19)    NOT NULL,
    updated_at  NUMBER(19)    NOT NULL
);

CREATE INDEX wt_accounts_parent ON wt_accounts (parent_id);

CREATE TABLE wt_credentials (
    account_id    VARCHAR2(200) NOT NULL,
    kind          VARCHAR2(32)  NOT NULL,
    -- sealed value; WeChat asks for at least 512 characters per credential
    value         VARCHAR2(4000),
    expires_at    NUMBER(19),
    version       NUMBER(19)    DEFAULT 0 NOT NULL,
    refreshed_at  NUMBER(19),
    lease_owner   VARCHAR2(64),
    lease_until   NUMBER(19),
    last_errcode  NUMBER(19),
    last_errmsg   VARCHAR2(2000),
    last_error_at NUMBER(19),
    blocked_until NUMBER(19),
    forced_at     NUMBER(19),
    due_at        NUMBER(19),
    attempts      NUMBER(19)    DEFAULT 0 NOT NULL,
    value_hash     VARCHAR2(64),
    previous_hash  VARCHAR2(64),
    previous_until NUMBER(19),
    PRIMARY KEY (account_id, kind)
);

CREATE INDEX wt_credentials_due ON wt_credentials (due_at);

CREATE INDEX wt_credentials_hash ON wt_credentials (value_hash);

CREATE INDEX wt_credentials_previous ON wt_credentials (previous_hash);

CREATE TABLE wt_keys (
    name        VARCHAR2(64)  NOT NULL PRIMARY KEY,
    hash        VARCHAR2(64)  NOT NULL UNIQUE,
    accounts    VARCHAR2(4000) NOT NULL,
    created_at  NUMBER(19)    NOT NULL
);
