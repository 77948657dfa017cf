//! Picks the store backend from the database URL's scheme. Backends are
//! cargo features; a URL whose backend was not compiled in gets one line
//! naming the feature to enable.

use std::path::PathBuf;
use std::sync::Arc;

use wetoken_core::store::Store;

#[cfg(not(any(feature = "sqlite")))]
compile_error!("wetoken needs at least one database backend: build with --features sqlite (the default)");

/// The SQLite file a URL names, if it is a SQLite URL.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    #[cfg(feature = "sqlite")]
    return wetoken_store_sqlite::database_file(url);
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = url;
        None
    }
}

fn scheme(url: &str) -> &str {
    url.split(':').next().unwrap_or_default()
}

/// Why a URL cannot be opened by this build.
fn unsupported(url: &str) -> String {
    let feature = match scheme(url) {
        "sqlite" => "sqlite",
        "mysql" | "mariadb" => "mysql",
        "postgres" | "postgresql" => "postgres",
        "oracle" => "oracle",
        _ => {
            return format!(
                "WETOKEN_DATABASE_URL must start with sqlite:, mysql:, postgres: or oracle: (got {:?})",
                url.chars().take(40).collect::<String>()
            );
        }
    };
    format!(
        "this wetoken was built without {feature} support: rebuild with `cargo install wetoken --features {feature}`"
    )
}

/// Opens the store a URL names (without migrating).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
    match scheme(url) {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let store = wetoken_store_sqlite::SqliteStore::connect(url)
                .await
                .map_err(|e| format!("cannot open {url}: {e}"))?;
            Ok(Arc::new(store))
        }
        _ => Err(unsupported(url)),
    }
}

/// The DDL for a URL's backend, for `install-schema --print`.
pub fn schema_sql(url: &str) -> Result<String, String> {
    match scheme(url) {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(wetoken_store_sqlite::schema_sql()),
        _ => Err(unsupported(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_not_built_name_their_feature() {
        assert!(unsupported("mysql://u@h/db").contains("--features mysql"));
        assert!(unsupported("postgres://h/db").contains("--features postgres"));
        assert!(unsupported("oracle://h/db").contains("--features oracle"));
        assert!(unsupported("redis://h").contains("must start with"));
    }
}
