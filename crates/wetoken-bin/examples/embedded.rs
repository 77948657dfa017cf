//! An axum application that embeds wetoken (SPEC §9, the Go project's
//! `Bind` and `Cron`): it reads credentials in-process on its own route,
//! serves wetoken's whole HTTP API beside it, and keeps every credential
//! fresh with the scheduler.
//!
//! ```text
//! WETOKEN_MASTER_KEY=$(head -c32 /dev/urandom | base64) WETOKEN_ADMIN_KEY=$(head -c32 /dev/urandom | base64) \
//!   cargo run -p wetoken --example embedded
//! ```
//!
//! Settings come from the environment (`WETOKEN_DATABASE_URL`,
//! `WETOKEN_MASTER_KEY`, `WETOKEN_ADMIN_KEY`, `WETOKEN_UPSTREAM_MP`,
//! `WETOKEN_UPSTREAM_WORK`) and `LISTEN` (default 127.0.0.1:3000).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use wetoken::{AccountId, Credential, Wetoken};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    let wetoken = Wetoken::builder()
        .database(&env("WETOKEN_DATABASE_URL", "sqlite://embedded.db"))
        .master_key(&std::env::var("WETOKEN_MASTER_KEY").map_err(|_| "set WETOKEN_MASTER_KEY")?)
        .admin_key(&std::env::var("WETOKEN_ADMIN_KEY").map_err(|_| "set WETOKEN_ADMIN_KEY")?)
        .upstream(
            &env("WETOKEN_UPSTREAM_MP", "https://api.weixin.qq.com"),
            &env("WETOKEN_UPSTREAM_WORK", "https://qyapi.weixin.qq.com"),
        )
        .build()
        .await?;
    // Cron: refresh everything ahead of expiry, in the background.
    let _scheduler = wetoken.run_scheduler();
    let _deliverer = wetoken.run_deliverer();

    let app = Router::new()
        // The application's own route, using wetoken in-process.
        .route("/app/{appid}/token", get(token))
        .with_state(wetoken.clone())
        // Bind: wetoken's whole HTTP API (/v1/…, callbacks, compat) beside it.
        .merge(wetoken.router());

    let listener = tokio::net::TcpListener::bind(env("LISTEN", "127.0.0.1:3000")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The Official Account's access token, read in-process.
async fn token(State(wetoken): State<Wetoken>, Path(appid): Path<String>) -> Result<String, (StatusCode, String)> {
    let id: AccountId = format!("mp:{appid}")
        .parse()
        .map_err(|e: wetoken::core::domain::ParseError| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let token = wetoken
        .get(&id, Credential::AccessToken)
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(token.value)
}
