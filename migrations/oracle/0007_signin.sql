-- wetoken schema, version 7: sign-in without secrets (SPEC §13).
-- A user's session_key, kept for keys that may not see it: sealed like every
-- secret, bound to (account, openid), until expires_at
-- (WETOKEN_SESSION_KEY_TTL_SECS after the login); expired ones are purged in
-- batches by the index on expires_at, never by a scan.
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.

CREATE TABLE wt_session_keys (
    account_id  VARCHAR2(200)  NOT NULL,
    openid      VARCHAR2(128)  NOT NULL,
    sealed      VARCHAR2(4000) NOT NULL,
    expires_at  NUMBER(19)     NOT NULL,
    PRIMARY KEY (account_id, openid)
);

CREATE INDEX wt_session_keys_expiry ON wt_session_keys (expires_at);
