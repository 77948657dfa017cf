-- wetoken schema, version 7: sign-in without secrets (SPEC §13).
-- A user's session_key, kept for keys that may not see it: sealed like every
-- secret, bound to (account, openid), until expires_at
-- (WETOKEN_SESSION_KEY_TTL_SECS after the login); expired ones are purged in
-- batches by the index on expires_at, never by a scan.

CREATE TABLE IF NOT EXISTS wt_session_keys (
    account_id  VARCHAR(200) NOT NULL,
    openid      VARCHAR(128) NOT NULL,
    sealed      TEXT         NOT NULL,
    expires_at  BIGINT       NOT NULL,
    PRIMARY KEY (account_id, openid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX wt_session_keys_expiry ON wt_session_keys (expires_at);
