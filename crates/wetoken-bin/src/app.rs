//! Wiring shared by `serve` and the other commands: open the store, apply
//! the schema, build the credential service.

use std::sync::Arc;

use wetoken_core::clock::SystemClock;
use wetoken_core::service::{CredentialService, ServiceError};
use wetoken_core::upstream::Upstream;

use crate::settings::Settings;
use crate::{CliError, backend, keyfiles};

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => CliError::Usage(m),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

/// Opens the database (migrating it when `auto_migrate`) and builds the
/// service.
pub async fn service(settings: &Settings) -> Result<CredentialService, CliError> {
    let store = backend::open(&settings.database_url).await.map_err(CliError::Runtime)?;
    if settings.auto_migrate {
        store
            .migrate()
            .await
            .map_err(|e| CliError::Runtime(format!("cannot install the schema: {e}")))?;
    }
    let key = keyfiles::master_key(settings.master_key.as_deref(), &settings.data_dir()).map_err(CliError::Runtime)?;
    let upstream = Upstream::new(settings.upstream_config()).map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok(CredentialService::new(
        store,
        upstream,
        Arc::new(SystemClock),
        key,
        settings.service_config(),
    ))
}
