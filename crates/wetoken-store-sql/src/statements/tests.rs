use super::*;

#[test]
fn placeholders_per_dialect() {
    let pg = Statements::for_dialect(Dialect::Postgres);
    let now = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
    assert_eq!(
        pg.take_lease,
        format!(
            "UPDATE wt_credentials SET lease_owner = $1, lease_until = {now} + $2 WHERE account_id = $3 \
             AND kind = $4 AND version = $5 AND (lease_until IS NULL OR lease_until < {now})"
        )
    );
    let ora = Statements::for_dialect(Dialect::Oracle);
    assert!(
        ora.select_due
            .ends_with("ORDER BY expires_at, due_at FETCH FIRST :3 ROWS ONLY"),
        "{}",
        ora.select_due
    );
    assert!(
        ora.insert_credential_if_absent
            .starts_with("MERGE INTO wt_credentials c USING (SELECT :1 account_id, :2 kind FROM dual)")
    );
    let my = Statements::for_dialect(Dialect::MySql);
    assert!(my.insert_credential_if_absent.starts_with("INSERT IGNORE"));
    assert!(my.select_due.ends_with("LIMIT ?"));
}

#[test]
fn no_dialect_specific_syntax_leaks() {
    for d in [Dialect::Sqlite, Dialect::MySql, Dialect::Postgres, Dialect::Oracle] {
        for sql in Statements::for_dialect(d).all() {
            assert!(!sql.contains("RETURNING"), "{d:?}: {sql}");
            assert!(!sql.contains("''"), "{d:?}: Oracle reads '' as NULL: {sql}");
            assert!(
                !sql.trim_end().ends_with(';'),
                "{d:?}: Oracle refuses a trailing ;: {sql}"
            );
            if matches!(d, Dialect::Postgres | Dialect::Oracle) {
                assert!(!sql.contains('?'), "{d:?}: {sql}");
            }
        }
    }
}
