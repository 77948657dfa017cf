use super::*;

impl Statements {
    /// Every statement, for tests that inspect the SQL text.
    pub fn all(&self) -> Vec<&'static str> {
        vec![
            self.insert_account,
            self.select_account,
            self.update_account,
            self.delete_account_credentials,
            self.delete_family_credentials,
            self.delete_child_accounts,
            self.delete_account,
            self.select_credential,
            self.select_credentials,
            self.insert_credential_if_absent,
            self.take_lease,
            self.complete_refresh,
            self.select_version,
            self.update_account_secrets,
            self.record_failure,
            self.put_pushed,
            self.mark_forced,
            self.record_verdict,
            self.force_today,
            self.force_spent_once,
            self.clear_blocks_filled,
            self.clear_blocks_empty,
            self.select_due,
            self.select_by_hash,
            self.insert_key,
            self.select_key_by_hash,
            self.delete_key,
            self.select_key_checks,
            self.insert_key_check,
            self.delete_key_check,
            self.reseal_account,
            self.reseal_value,
            self.mark_pushed_stale,
            self.select_dedupe,
            self.bump_event_seq,
            self.select_event_seq,
            self.insert_event,
            self.select_events,
            self.select_event,
            self.select_last_message,
            self.purge_events,
            self.purge_deliveries,
            self.insert_webhook,
            self.select_webhooks,
            self.select_webhook,
            self.delete_webhook_deliveries,
            self.delete_webhook,
            self.move_cursor,
            self.insert_delivery,
            self.insert_leased_delivery,
            self.select_delivery,
            self.select_due_deliveries,
            self.take_delivery_lease,
            self.record_attempt,
            self.select_deliveries,
            self.retry_delivery,
            self.select_oldest_pending,
            self.reseal_webhook,
            self.select_accounts_page,
            self.select_credentials_between,
            self.select_keys_page,
            self.count_accounts,
            self.select_failing,
            self.insert_session,
            self.select_session,
            self.delete_session,
            self.purge_sessions,
            self.insert_audit,
            self.select_audit,
            self.purge_audit,
            self.upsert_session_key,
            self.select_session_key,
            self.session_keys_batch,
            self.purge_session_keys,
            self.delete_family_session_keys,
        ]
    }
}

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
            .starts_with("MERGE INTO wt_credentials t USING (SELECT :1 account_id, :2 kind FROM dual)")
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
