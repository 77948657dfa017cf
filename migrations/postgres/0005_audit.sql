-- wetoken schema, version 5: the audit trail of token-free calls (SPEC §6).
-- One row per call relayed for a key: who (the key's name), which account,
-- what (method, WeChat path), and what WeChat answered (HTTP status, errcode,
-- rid). Never a token or a body. Ids sort by time (`{ms}-{instance}-{n}`),
-- so a page is an index range; kept WETOKEN_EVENT_RETENTION_DAYS.

CREATE TABLE IF NOT EXISTS wt_audit (
    id          VARCHAR(64) COLLATE "C"  NOT NULL PRIMARY KEY,
    called_at   BIGINT       NOT NULL,
    key_name    VARCHAR(64) COLLATE "C"  NOT NULL,
    account_id  VARCHAR(200) COLLATE "C" NOT NULL,
    method      VARCHAR(16)   NOT NULL,
    path        VARCHAR(200)  NOT NULL,
    status      BIGINT       NOT NULL,
    errcode     BIGINT,
    rid         VARCHAR(64)
);

CREATE INDEX IF NOT EXISTS wt_audit_at ON wt_audit (called_at);
CREATE INDEX IF NOT EXISTS wt_audit_key ON wt_audit (key_name, id);
CREATE INDEX IF NOT EXISTS wt_audit_account ON wt_audit (account_id, id);
