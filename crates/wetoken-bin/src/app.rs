//! Wiring shared by `serve` and the other commands: settings into the
//! library's [`wetoken::Builder`], the one way a wetoken is assembled.

use wetoken::{Builder, Wetoken};
use wetoken_core::service::{CredentialService, ServiceError};

use crate::settings::Settings;
use crate::{CliError, keyfiles};

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => CliError::Usage(m),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

/// A builder with every setting applied (the master key read, or generated
/// into the data directory).
pub fn builder(settings: &Settings) -> Result<Builder, CliError> {
    let key = keyfiles::master_key(settings.master_key.as_deref(), &settings.data_dir()).map_err(CliError::Runtime)?;
    let up = settings.upstream_config();
    Ok(Wetoken::builder()
        .database(&settings.database_url)
        .key(key)
        .service_config(settings.service_config())
        .upstream(&up.mp_base, &up.work_base)
        .auto_migrate(settings.auto_migrate)
        .auth(settings.auth)
        .max_body_bytes(settings.max_body_bytes)
        .callback_max_skew(settings.callback_max_skew_secs as i64)
        .proxy(settings.proxy))
}

/// Opens the database (migrating it when `auto_migrate`) and builds the
/// service.
pub async fn service(settings: &Settings) -> Result<CredentialService, CliError> {
    let wetoken = builder(settings)?
        .build()
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok(wetoken.service().clone())
}
