//! `wetoken serve [--sandbox]`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde_json::json;
use wetoken_core::account::NewAccount;
use wetoken_core::service::ServiceError;
use wetoken_sim::{Sim, SimConfig};

use super::settings::Settings;
use super::{CliError, app, keyfiles};

pub const DEMO_APPID: &str = "wxsandbox00000001";
const DEMO_SECRET: &str = "sandbox-secret-not-for-production";
const DEMO_COMPONENT: &str = "wxsandboxcomponent";
const DEMO_AUTHORIZER: &str = "wxsandboxauthorizer";
const DEMO_MSG_TOKEN: &str = "sandboxtoken";
const DEMO_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

struct Sandbox {
    sim: Sim,
    dir: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a server listens, once it does.
#[derive(Debug, Clone)]
pub struct Serving {
    pub addr: SocketAddr,
    /// `WETOKEN_PUBLIC_URL`, or the address bound.
    pub public_url: String,
}

/// `wetoken serve [--sandbox]`: serves until `shutdown` completes, then stops
/// as SPEC §12 says; `listening` is told where once the socket is bound.
pub async fn run(
    mut settings: Settings,
    sandbox: bool,
    listening: impl FnOnce(&Serving),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    check_network(&settings)?;
    settings.check_lease().map_err(CliError::Runtime)?;
    let sandbox = if sandbox {
        Some(start_sandbox(&mut settings).await?)
    } else {
        None
    };
    let admin_key = if settings.auth {
        Some(keyfiles::admin_key(settings.admin_key.as_deref(), &settings.data_dir()).map_err(CliError::Runtime)?)
    } else {
        tracing::warn!("WETOKEN_AUTH=off: every request is trusted as admin; use only on a trusted network");
        None
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot listen on {}: {e}", settings.listen)))?;
    let addr = listener.local_addr().map_err(|e| CliError::Runtime(e.to_string()))?;
    // WETOKEN_PUBLIC_URL defaults to the address actually bound.
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let (builder, key_source) = app::builder(&settings)?;
    let mut builder = builder.public_url(&public_url).metrics(true);
    if let Some(k) = &admin_key {
        builder = builder.admin_key(k);
    }
    let wetoken = app::build(builder, &key_source).await?;
    if settings.proxy {
        tracing::info!("WETOKEN_PROXY=on: other WeChat API paths with a managed token are forwarded upstream");
    }
    listening(&Serving {
        addr,
        public_url: public_url.clone(),
    });
    tracing::info!(%addr, database = %crate::backend::redact(&settings.database_url), "wetoken listening");
    let scheduler = wetoken.run_scheduler();
    let deliverer = wetoken.run_deliverer();
    let router = wetoken.router();
    let limits = wetoken_http::serve::Limits {
        max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
        write_stall: std::time::Duration::from_secs(settings.request_timeout_secs),
    };
    let server = tokio::spawn(wetoken_http::serve::serve(listener, router, limits, shutdown));
    if let Some(sb) = &sandbox {
        // Serving already: the simulator's pushes reach the callbacks.
        demo(wetoken.service(), sb, addr, &public_url, admin_key.as_deref()).await?;
    }
    server
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    // SPEC §12: no new proactive refresh; those running finish (bounded by
    // the upstream timeout) and release their leases; deliveries in flight
    // record their outcome.
    scheduler.abort();
    let drain = std::time::Duration::from_secs(settings.upstream_timeout_secs.saturating_add(2));
    tokio::join!(wetoken.service().engine.drain(drain), deliverer.stop());
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
    settings.upstream_mp = vec![sim.url()];
    settings.upstream_work = vec![sim.url()];
    settings.database_url = format!("sqlite://{}", dir.join("wetoken.db").display());
    settings.data_dir = Some(dir.clone());
    settings.auto_migrate = true;
    Ok(Sandbox { sim, dir })
}

async fn demo(
    service: &wetoken_core::service::Services,
    sb: &Sandbox,
    addr: SocketAddr,
    public_url: &str,
    admin_key: Option<&str>,
) -> Result<(), CliError> {
    let create = |body: serde_json::Value| async move {
        let new = NewAccount::from_json(&body).expect("demo accounts are valid");
        match service.accounts.create_account(new).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => Ok(()),
            Err(e) => Err(CliError::from(e)),
        }
    };
    create(json!({"kind": "mp", "appid": DEMO_APPID, "secret": DEMO_SECRET})).await?;
    // The Open Platform flow: WeChat pushes a verify ticket to the callback,
    // an administrator authorizes an account, wetoken stores it.
    sb.sim
        .add_component(DEMO_COMPONENT, DEMO_SECRET, DEMO_MSG_TOKEN, DEMO_AES_KEY);
    create(
        json!({"kind": "component", "appid": DEMO_COMPONENT, "secret": DEMO_SECRET,
                  "token": DEMO_MSG_TOKEN, "aes_key": DEMO_AES_KEY}),
    )
    .await?;
    let callback = format!("{public_url}/callback/component/{DEMO_COMPONENT}");
    let sandbox_step = |e: String| CliError::Runtime(format!("sandbox: {e}"));
    sb.sim
        .push_verify_ticket(DEMO_COMPONENT, &callback)
        .await
        .map_err(sandbox_step)?;
    sb.sim
        .start_pushing(DEMO_COMPONENT, &callback, std::time::Duration::from_secs(600));
    sb.sim
        .authorize(DEMO_COMPONENT, DEMO_AUTHORIZER, Some(&callback))
        .await
        .map_err(sandbox_step)?;

    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };
    let base = format!("http://{host}/v1");
    let auth = admin_key
        .map(|k| format!(" -H 'Authorization: Bearer {k}'"))
        .unwrap_or_default();
    let mp = format!("{base}/mp/{DEMO_APPID}");
    let component = format!("{base}/component/{DEMO_COMPONENT}");
    println!();
    println!("sandbox: a WeChat simulator runs at {}", sb.sim.url());
    println!(
        "sandbox: demo accounts mp:{DEMO_APPID}, component:{DEMO_COMPONENT} (verify tickets pushed to {callback}),"
    );
    println!(
        "sandbox: and authorizer {DEMO_AUTHORIZER} authorized to it; data in {} (removed on exit)",
        sb.dir.display()
    );
    println!(
        "sandbox: try these (the sandbox prints its admin key to make them work; a real `serve` never prints a key):"
    );
    println!("  curl -s{auth} {mp}/access_token");
    println!("  curl -s{auth} {mp}/jsapi_ticket");
    println!("  curl -s{auth} -X POST {mp}/jssdk_config --json '{{\"url\":\"https://example.com/page?x=1\"}}'");
    println!("  curl -s{auth} -X POST {mp}/access_token/refresh");
    println!("  curl -s{auth} {base}/accounts");
    println!("  curl -s{auth} {component}/access_token");
    println!("  curl -s{auth} {component}/authorizers");
    println!("  curl -s{auth} {component}/authorizers/{DEMO_AUTHORIZER}/access_token");
    println!("  curl -s{auth} '{component}/auth_url?platform=h5'");
    println!();
    // A newcomer's console in one click: a link that signs in once.
    let link = service.console.issue_sign_in_link().await.map_err(CliError::from)?;
    println!("sandbox: the console, signed in by a one-time link (valid 12 h):");
    println!("  http://{host}/console/signin?link={link}");
    println!(
        "sandbox: authorization links made there point at WeChat; to authorize an account here, open one \
         with https://mp.weixin.qq.com replaced by {}",
        sb.sim.url()
    );
    println!();
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn signalled() {
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
