//! Wiring shared by `serve` and the other commands: settings into the
//! library's [`crate::Builder`], the one way a wetoken is assembled.

use crate::{Builder, Wetoken};
use wetoken_core::service::{ServiceError, Services};

use super::settings::Settings;
use super::{CliError, keyfiles};

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => CliError::Usage(m),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

/// A builder with every setting applied (the master key read, or generated
/// into the data directory), and where its master key came from.
pub fn builder(settings: &Settings) -> Result<(Builder, keyfiles::KeySource), CliError> {
    let (key, source) =
        keyfiles::master_key(settings.master_key.as_deref(), &settings.data_dir()).map_err(CliError::Runtime)?;
    let up = settings.upstream_config();
    let builder = Wetoken::builder()
        .database(&settings.database_url)
        .key(key)
        .old_master_keys(settings.old_master_keys.iter().map(String::as_str))
        .service_config(settings.service_config())
        .upstream_config(up)
        .auto_migrate(settings.auto_migrate)
        .auth(settings.auth)
        .max_body_bytes(settings.max_body_bytes)
        .callback_max_skew(settings.callback_max_skew_secs as i64)
        .proxy(settings.proxy)
        .request_timeout(std::time::Duration::from_secs(settings.request_timeout_secs))
        .metrics_per_account(settings.metrics_per_account)
        .proxy_max_inflight(usize::try_from(settings.proxy_max_inflight).unwrap_or(usize::MAX));
    Ok((builder, source))
}

/// Builds, and explains a master key that does not open the database
/// (SPEC §2): which key was given, from where, and which one is expected. A
/// key generated just now over sealed data is removed again: it must never
/// become the key of a database sealed with another.
pub async fn build(builder: Builder, source: &keyfiles::KeySource) -> Result<Wetoken, CliError> {
    match builder.build().await {
        Ok(w) => Ok(w),
        Err(crate::BuildError::WrongMasterKey(problem)) => {
            let wetoken_core::service::custody::KeyProblem::Missing { expected, current } = &problem;
            let expected = expected.join(", ");
            Err(CliError::Runtime(match source {
                keyfiles::KeySource::Generated(path) => {
                    let _ = std::fs::remove_file(path);
                    format!(
                        "{} did not exist and WETOKEN_MASTER_KEY is not set, but the database holds data sealed with \
                         master key {expected}: restore that key (WETOKEN_MASTER_KEY or {}); no new key was kept",
                        path.display(),
                        path.display()
                    )
                }
                keyfiles::KeySource::File(path) => format!(
                    "the master key in {} (id {current}) does not open this database, sealed with master key \
                     {expected}: put that key there (or in WETOKEN_MASTER_KEY), or add it to WETOKEN_OLD_MASTER_KEYS",
                    path.display()
                ),
                keyfiles::KeySource::Setting => format!(
                    "WETOKEN_MASTER_KEY (id {current}) does not open this database, sealed with master key \
                     {expected}: set that key, or add it to WETOKEN_OLD_MASTER_KEYS"
                ),
            }))
        }
        Err(e) => Err(CliError::Runtime(e.to_string())),
    }
}

/// The service of a fully built wetoken (for the CLI's one-shot commands),
/// which never alter an existing schema: an older one is an error that
/// names `install-schema`, and so is none on a database server. The one
/// exception is the embedded default: a SQLite database with no schema at
/// all (a file just created, SPEC §7) gets it, as `serve` would give it.
pub async fn service(settings: &Settings) -> Result<Services, CliError> {
    use wetoken_core::store::Schema;
    // Before anything is made (a master key file): is there a schema?
    let store = crate::backend::open(&settings.database_url)
        .await
        .map_err(CliError::Runtime)?;
    let schema = store.schema().await.map_err(|e| CliError::Runtime(e.to_string()))?;
    let embedded = crate::backend::sqlite_file(&settings.database_url).is_some();
    match schema {
        Schema::Current => {}
        Schema::Absent if embedded => store
            .migrate()
            .await
            .map_err(|e| CliError::Runtime(format!("cannot install the schema: {e}")))?,
        Schema::Absent | Schema::Older => {
            return Err(CliError::Runtime(
                "the database has no wetoken schema, or an older one: run `wetoken install-schema` first (or \
                 start `wetoken serve`, which installs it)"
                    .into(),
            ));
        }
    }
    drop(store);
    let (builder, source) = builder(settings)?;
    let builder = builder.auto_migrate(false);
    Ok(build(builder, &source).await?.service().clone())
}
