//! `wetoken serve [--sandbox]`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wetoken_core::account::NewAccount;
use wetoken_core::auth::Authenticator;
use wetoken_core::service::ServiceError;
use wetoken_http::AppState;
use wetoken_sim::{Sim, SimConfig};

use crate::settings::Settings;
use crate::{CliError, app, keyfiles};

pub const DEMO_APPID: &str = "wxsandbox00000001";
const DEMO_SECRET: &str = "sandbox-secret-not-for-production";

struct Sandbox {
    sim: Sim,
    dir: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn run(mut settings: Settings, sandbox: bool) -> Result<(), CliError> {
    check_network(&settings)?;
    let sandbox = if sandbox {
        Some(start_sandbox(&mut settings).await?)
    } else {
        None
    };
    let service = app::service(&settings).await?;
    let admin_key = if settings.auth {
        Some(keyfiles::admin_key(settings.admin_key.as_deref(), &settings.data_dir()).map_err(CliError::Runtime)?)
    } else {
        tracing::warn!("WETOKEN_AUTH=off: every request is trusted as admin; use only on a trusted network");
        None
    };
    let auth = Authenticator::new(
        service.store().clone(),
        admin_key.as_deref(),
        settings.auth,
        Duration::from_secs(settings.cache_ttl_secs),
    );
    let state = AppState {
        service: service.clone(),
        auth: Arc::new(auth),
        max_body: settings.max_body_bytes,
        metrics: wetoken_http::install_metrics(),
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot listen on {}: {e}", settings.listen)))?;
    let addr = listener.local_addr().map_err(|e| CliError::Runtime(e.to_string()))?;
    println!("wetoken listening on http://{addr}");
    tracing::info!(%addr, database = %crate::backend::redact(&settings.database_url), "wetoken listening");
    if let Some(sb) = &sandbox {
        demo(&service, sb, addr, admin_key.as_deref()).await?;
    }
    let scheduler = service.spawn_scheduler();
    axum::serve(listener, wetoken_http::router(state))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    scheduler.abort();
    tracing::info!("stopped");
    Ok(())
}

/// SPEC §4: with keys off, only loopback unless explicitly allowed.
fn check_network(s: &Settings) -> Result<(), CliError> {
    if !s.auth && !s.listen.ip().is_loopback() && !s.allow_open_network {
        return Err(CliError::Runtime(format!(
            "refusing to serve without authentication on {}: WETOKEN_AUTH=off is only for loopback \
             unless WETOKEN_ALLOW_OPEN_NETWORK=true",
            s.listen
        )));
    }
    Ok(())
}

async fn start_sandbox(settings: &mut Settings) -> Result<Sandbox, CliError> {
    let sim = Sim::start(SimConfig::default())
        .await
        .map_err(|e| CliError::Runtime(format!("cannot start the simulator: {e}")))?;
    sim.add_app(DEMO_APPID, DEMO_SECRET);
    let dir = std::env::temp_dir().join(format!("wetoken-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    settings.upstream_mp = sim.url();
    settings.upstream_work = sim.url();
    settings.database_url = format!("sqlite://{}", dir.join("wetoken.db").display());
    settings.data_dir = Some(dir.clone());
    settings.auto_migrate = true;
    Ok(Sandbox { sim, dir })
}

async fn demo(
    service: &wetoken_core::service::CredentialService,
    sb: &Sandbox,
    addr: SocketAddr,
    admin_key: Option<&str>,
) -> Result<(), CliError> {
    let new = NewAccount::from_json(&json!({"kind": "mp", "appid": DEMO_APPID, "secret": DEMO_SECRET}))
        .expect("demo account is valid");
    match service.create_account(new).await {
        Ok(_) | Err(ServiceError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };
    let base = format!("http://{host}/v1/mp/{DEMO_APPID}");
    let auth = admin_key
        .map(|k| format!(" -H 'Authorization: Bearer {k}'"))
        .unwrap_or_default();
    println!();
    println!("sandbox: a WeChat simulator runs at {}", sb.sim.url());
    println!(
        "sandbox: demo account mp:{DEMO_APPID}; data in {} (removed on exit)",
        sb.dir.display()
    );
    println!("sandbox: try these:");
    println!("  curl -s{auth} {base}/access_token");
    println!("  curl -s{auth} {base}/jsapi_ticket");
    println!("  curl -s{auth} -X POST {base}/jssdk_config -d '{{\"url\":\"https://example.com/page?x=1\"}}'");
    println!("  curl -s{auth} -X POST {base}/access_token/refresh");
    println!("  curl -s{auth} http://{host}/v1/accounts");
    println!();
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_off_needs_loopback_or_permission() {
        let mut s = Settings {
            auth: false,
            ..Settings::default()
        };
        assert!(check_network(&s).is_ok());
        s.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(check_network(&s).is_err());
        s.allow_open_network = true;
        assert!(check_network(&s).is_ok());
    }
}
