-- wetoken schema, version 2: the master keys that sealed data here (SPEC §2).
-- A check value per key id (a constant sealed by that key) lets every
-- instance and command prove it holds the right key before it starts.
-- Statements end with ";" at the end of a line; the runner splits on it,
-- sends each without the ";", and treats "already exists" as done.

CREATE TABLE wt_master_keys (
    key_id      VARCHAR2(16)  NOT NULL PRIMARY KEY,
    check_value VARCHAR2(400) NOT NULL,
    created_at  NUMBER(19)    NOT NULL
);
