//! Picks the store backend from the database URL's scheme. Backends are
//! additive cargo features (`sqlite` by default, `mysql`, `postgres`,
//! `oracle`); a URL whose backend was not compiled in gets one line naming
//! the feature to enable.

use std::path::PathBuf;
use std::sync::Arc;

use wetoken_core::store::Store;

#[cfg(not(any(feature = "sqlite", feature = "mysql", feature = "postgres", feature = "oracle")))]
compile_error!(
    "wetoken needs at least one database backend: build with one or more of \
     --features sqlite (the default), mysql, postgres, oracle"
);

/// The SQLite file a URL names, if it is a SQLite URL.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn scheme(url: &str) -> &str {
    url.split(':').next().unwrap_or_default()
}

/// The cargo feature a URL's backend needs.
fn feature_of(url: &str) -> Option<&'static str> {
    match scheme(url) {
        "sqlite" => Some("sqlite"),
        "mysql" | "mariadb" => Some("mysql"),
        "postgres" | "postgresql" => Some("postgres"),
        "oracle" => Some("oracle"),
        _ => None,
    }
}

/// Why a URL cannot be opened by this build.
fn unsupported(url: &str) -> String {
    match feature_of(url) {
        Some(feature) => format!(
            "this wetoken was built without {feature} support: rebuild with `cargo install wetoken --features {feature}`"
        ),
        None => format!(
            "WETOKEN_DATABASE_URL must start with sqlite:, mysql:, postgres: or oracle: (got {:?})",
            url.chars().take(40).collect::<String>()
        ),
    }
}

/// Opens the store a URL names (without migrating).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
    let opened: Result<Arc<dyn Store>, wetoken_core::store::StoreError> = match feature_of(url) {
        #[cfg(feature = "sqlite")]
        Some("sqlite") => wetoken_store_sqlite::connect(url).await.map(|s| Arc::new(s) as _),
        #[cfg(feature = "mysql")]
        Some("mysql") => wetoken_store_mysql::connect(url).await.map(|s| Arc::new(s) as _),
        #[cfg(feature = "postgres")]
        Some("postgres") => wetoken_store_postgres::connect(url).await.map(|s| Arc::new(s) as _),
        #[cfg(feature = "oracle")]
        Some("oracle") => wetoken_store_oracle::connect(url).await.map(|s| Arc::new(s) as _),
        _ => return Err(unsupported(url)),
    };
    opened.map_err(|e| format!("cannot open {}: {e}", redact(url)))
}

/// The DDL for a URL's backend, for `install-schema --print`.
pub fn schema_sql(url: &str) -> Result<String, String> {
    match feature_of(url) {
        #[cfg(feature = "sqlite")]
        Some("sqlite") => Ok(wetoken_store_sqlite::schema_sql()),
        #[cfg(feature = "mysql")]
        Some("mysql") => Ok(wetoken_store_mysql::schema_sql()),
        #[cfg(feature = "postgres")]
        Some("postgres") => Ok(wetoken_store_postgres::schema_sql()),
        #[cfg(feature = "oracle")]
        Some("oracle") => Ok(wetoken_store_oracle::schema_sql()),
        _ => Err(unsupported(url)),
    }
}

/// The database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_not_built_name_their_feature() {
        for (url, feature) in [
            ("mysql://u@h/db", "mysql"),
            ("mariadb://u@h/db", "mysql"),
            ("postgres://h/db", "postgres"),
            ("oracle://u:p@h/s", "oracle"),
        ] {
            assert!(unsupported(url).contains(&format!("--features {feature}")), "{url}");
        }
        assert!(unsupported("redis://h").contains("must start with"));
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("mysql://u:pw@db:3306/w"), "mysql://***@db:3306/w");
        assert_eq!(redact("sqlite://wetoken.db"), "sqlite://wetoken.db");
    }

    #[test]
    fn sqlite_files_of_urls() {
        assert_eq!(sqlite_file("sqlite://wetoken.db"), Some(PathBuf::from("wetoken.db")));
        assert_eq!(
            sqlite_file("sqlite:///var/lib/w.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/w.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("mysql://x"), None);
    }
}
