use super::*;
use std::collections::HashMap;

/// A value for each setting that differs from its default.
fn sample(key: &str) -> &'static str {
    match key {
        "listen" => "0.0.0.0:9999",
        "database_url" => "sqlite:///tmp/other.db",
        "data_dir" => "/tmp/wetoken-data",
        "auto_migrate" | "auth" => "false",
        "metrics_per_account" => "true",
        "allow_open_network" => "true",
        "proxy" => "on",
        "master_key" => "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "old_master_keys" => {
            "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        }
        "admin_key" => "admin-secret",
        "max_body_bytes" => "2048",
        "public_url" => "https://wetoken.example.com",
        "upstream_mp" | "upstream_work" => "http://127.0.0.1:1, http://127.0.0.1:2/",
        "upstream_proxy" => "http://user:pw@127.0.0.1:3128",
        "cache_ttl_secs" => "12",
        "log" => "debug",
        "max_forced_per_day" => "7",
        "reply_budget_ms" => "1500",
        "release_test" => "off",
        _ => "77",
    }
}

/// The packaged /etc/wetoken/wetoken.toml names every setting (commented
/// out) and parses as it is.
#[test]
fn the_packaged_configuration_lists_every_setting() {
    let packaged = include_str!("../../../debian/wetoken.toml");
    for (key, _) in KEYS {
        assert!(
            packaged.lines().any(|l| l.starts_with(&format!("# {key} = "))),
            "{key} is missing from debian/wetoken.toml"
        );
    }
    assert!(
        packaged.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "everything is commented out"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wetoken.toml");
    std::fs::write(&path, packaged).unwrap();
    assert_eq!(Settings::load(Some(&path), |_| None).unwrap(), Settings::default());
}

#[test]
fn every_env_name_takes_effect() {
    let default = Settings::default();
    for (key, env_name) in KEYS {
        let env: HashMap<&str, &str> = [(*env_name, sample(key))].into();
        let s =
            Settings::load(None, |n| env.get(n).map(|v| v.to_string())).unwrap_or_else(|e| panic!("{env_name}: {e}"));
        assert_ne!(s, default, "{env_name} changed nothing");
        let mut expected = Settings::default();
        expected.set(key, sample(key)).unwrap();
        assert_eq!(s, expected, "{env_name} set something else than {key}");
    }
}

#[test]
fn file_then_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wetoken.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:7000\"\nlease_secs = 45\nauth = \"off\"\nproxy = true\n",
    )
    .unwrap();
    let s = Settings::load(Some(&path), |_| None).unwrap();
    assert_eq!(
        (s.listen.port(), s.lease_secs, s.auth, s.proxy),
        (7000, 45, false, true)
    );
    let s = Settings::load(Some(&path), |n| (n == "WETOKEN_LEASE_SECS").then(|| "50".into())).unwrap();
    assert_eq!(s.lease_secs, 50, "env overrides the file");
    std::fs::write(&path, "lese_secs = 45\n").unwrap();
    assert!(Settings::load(Some(&path), |_| None).unwrap_err().contains("lese_secs"));
}

#[test]
fn bad_values_are_named() {
    for (name, v) in [
        ("WETOKEN_CACHE_TTL_SECS", "300"),
        ("WETOKEN_CACHE_TTL_SECS", "0"),
        ("WETOKEN_LISTEN", "nowhere"),
        ("WETOKEN_AUTH", "maybe"),
        ("WETOKEN_LEASE_SECS", "-1"),
        ("WETOKEN_UPSTREAM_MP", "ftp://x"),
        ("WETOKEN_UPSTREAM_MP", "https://api.weixin.qq.com,ftp://x"),
        ("WETOKEN_UPSTREAM_WORK", " , "),
        ("WETOKEN_UPSTREAM_PROXY", "socks5://127.0.0.1:1080"),
    ] {
        let e = Settings::load(None, |n| (n == name).then(|| v.to_string())).unwrap_err();
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn data_dir_follows_the_sqlite_file() {
    let mut s = Settings::default();
    assert_eq!(s.data_dir(), PathBuf::from("."));
    s.database_url = "sqlite:///var/lib/wetoken/w.db".into();
    assert_eq!(s.data_dir(), PathBuf::from("/var/lib/wetoken"));
    s.data_dir = Some("/etc/wetoken".into());
    assert_eq!(s.data_dir(), PathBuf::from("/etc/wetoken"));
}

#[test]
fn debug_prints_no_key_and_no_database_password() {
    let env: HashMap<&str, &str> = [
        ("WETOKEN_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        (
            "WETOKEN_OLD_MASTER_KEYS",
            "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("WETOKEN_ADMIN_KEY", "admin-secret-value"),
        ("WETOKEN_DATABASE_URL", "postgres://wetoken:db-password@db/wetoken"),
        ("WETOKEN_UPSTREAM_PROXY", "http://egress:proxy-password@10.0.0.5:3128"),
    ]
    .into();
    let s = Settings::load(None, |n| env.get(n).map(|v| v.to_string())).unwrap();
    let shown = format!("{s:?}");
    for secret in [
        "AAAAAAAA",
        "AQAAAAAA",
        "admin-secret-value",
        "db-password",
        "proxy-password",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("db/wetoken"), "{shown}");
}
