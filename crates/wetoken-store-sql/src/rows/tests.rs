use super::*;

fn account_row() -> AccountRow {
    AccountRow {
        id: "authorizer:wxc:wx1".into(),
        kind: "authorizer".into(),
        parent_id: Some("component:wxc".into()),
        secrets: "v1:x".into(),
        config: r#"{"token_api":"classic"}"#.into(),
        status: "needs_reauthorization".into(),
        created_at: 1,
        updated_at: 2,
    }
}

#[test]
fn accounts_round_trip() {
    let a = account_row().decode().unwrap();
    assert_eq!(a.status, AccountStatus::NeedsReauthorization);
    assert_eq!(AccountRow::encode(&a), account_row());
}

#[test]
fn rows_that_do_not_decode_are_errors_not_defaults() {
    for bad in [
        AccountRow {
            status: "bogus".into(),
            ..account_row()
        },
        AccountRow {
            id: "mp:bad id".into(),
            ..account_row()
        },
        AccountRow {
            kind: "mp".into(),
            ..account_row()
        },
        AccountRow {
            parent_id: None,
            ..account_row()
        },
        AccountRow {
            config: "{".into(),
            ..account_row()
        },
    ] {
        assert!(matches!(bad.clone().decode(), Err(StoreError::Corrupt(_))), "{bad:?}");
    }
    let cred = CredentialRow {
        account_id: "mp:wx1".into(),
        kind: "access_token".into(),
        ..CredentialRow::default()
    };
    assert!(cred.clone().decode().is_ok());
    for bad in [
        CredentialRow {
            kind: "refresh_token".into(),
            ..cred.clone()
        },
        CredentialRow {
            last_errcode: Some(1),
            ..cred.clone()
        },
    ] {
        assert!(matches!(bad.clone().decode(), Err(StoreError::Corrupt(_))), "{bad:?}");
    }
    let key = KeyRow {
        name: "k".into(),
        hash: "h".into(),
        accounts: r#"["mp:wx1","component:wxc/*"]"#.into(),
        created_at: 1,
    };
    assert_eq!(KeyRow::encode(&key.clone().decode().unwrap()), key);
    assert!(
        key.clone().decode().unwrap().tokens,
        "a key from before `tokens` reads tokens"
    );
    let token_free = KeyRow {
        accounts: r#"{"accounts":["mp:wx1"],"tokens":false}"#.into(),
        ..key.clone()
    };
    let decoded = token_free.clone().decode().unwrap();
    assert!(!decoded.tokens);
    assert_eq!(KeyRow::encode(&decoded), token_free);
    for accounts in [
        r#"["mp:bad id"]"#,
        "nope",
        r#"[1]"#,
        r#"{"accounts":["mp:wx1"],"tokens":"no"}"#,
        r#"{"tokens":false}"#,
    ] {
        let bad = KeyRow {
            accounts: accounts.into(),
            ..key.clone()
        };
        assert!(matches!(bad.decode(), Err(StoreError::Corrupt(_))), "{accounts}");
    }
}
