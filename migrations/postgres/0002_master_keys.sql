-- wetoken schema, version 2: the master keys that sealed data here (SPEC §2).
-- A check value per key id (a constant sealed by that key) lets every
-- instance and command prove it holds the right key before it starts.
CREATE TABLE IF NOT EXISTS wt_master_keys (
    key_id      VARCHAR(16)  COLLATE "C" NOT NULL PRIMARY KEY,
    check_value TEXT         NOT NULL,
    created_at  BIGINT       NOT NULL
);
