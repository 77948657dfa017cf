-- wetoken schema, version 4: the console (SPEC §11).
-- A signed-in browser holds a random session token; only its SHA-256 is
-- kept, with the session's end, so signing out ends it on every instance.
-- The overview lists failing credentials by the time of their last error.
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.

CREATE TABLE wt_console_sessions (
    hash        VARCHAR2(64)  NOT NULL PRIMARY KEY,
    created_at  NUMBER(19)    NOT NULL,
    expires_at  NUMBER(19)    NOT NULL
);

CREATE INDEX wt_console_sessions_expiry ON wt_console_sessions (expires_at);
CREATE INDEX wt_credentials_failing ON wt_credentials (last_error_at);
