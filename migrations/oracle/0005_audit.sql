-- wetoken schema, version 5: the audit trail of token-free calls (SPEC §6).
-- One row per call relayed for a key: who (the key's name), which account,
-- what (method, WeChat path), and what WeChat answered (HTTP status, errcode,
-- rid). Never a token or a body. Ids sort by time (`{ms}-{instance}-{n}`),
-- so a page is an index range; kept WETOKEN_EVENT_RETENTION_DAYS.
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.

CREATE TABLE wt_audit (
    id          VARCHAR2(64)  NOT NULL PRIMARY KEY,
    called_at   NUMBER(19)       NOT NULL,
    key_name    VARCHAR2(64)  NOT NULL,
    account_id  VARCHAR2(200) NOT NULL,
    method      VARCHAR2(16)   NOT NULL,
    path        VARCHAR2(200)  NOT NULL,
    status      NUMBER(19)       NOT NULL,
    errcode     NUMBER(19),
    rid         VARCHAR2(64)
);

CREATE INDEX wt_audit_at ON wt_audit (called_at);
CREATE INDEX wt_audit_key ON wt_audit (key_name, id);
CREATE INDEX wt_audit_account ON wt_audit (account_id, id);
