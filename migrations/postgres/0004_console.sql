-- wetoken schema, version 4: the console (SPEC §11).
-- A signed-in browser holds a random session token; only its SHA-256 is
-- kept, with the session's end, so signing out ends it on every instance.
-- The overview lists failing credentials by the time of their last error.
CREATE TABLE IF NOT EXISTS wt_console_sessions (
    hash        VARCHAR(64)  COLLATE "C" NOT NULL PRIMARY KEY,
    created_at  BIGINT       NOT NULL,
    expires_at  BIGINT       NOT NULL
);

CREATE INDEX IF NOT EXISTS wt_console_sessions_expiry ON wt_console_sessions (expires_at);
CREATE INDEX IF NOT EXISTS wt_credentials_failing ON wt_credentials (last_error_at);
