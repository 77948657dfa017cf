//! `examples/embedded.rs`, the library's front door in an axum application,
//! run as a process against the simulator: its own route reads a token
//! in-process, the mounted wetoken API serves the same one, and the
//! scheduler it started keeps it fresh.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use wetoken_core::secret::MasterKey;

use crate::helpers::{ADMIN, client, sim, tempdir, until};

/// The example's binary, which `cargo test` builds (built here if a narrower
/// command did not).
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples/embedded");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", "wetoken", "--example", "embedded"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot build the embedded example");
    }
    bin
}

#[tokio::test]
async fn the_embedded_example_serves_in_process_and_over_http() {
    let sim = sim().await;
    sim.add_app("wxembedded", "right");
    sim.configure(|c| c.token_ttl_secs = 8);
    let dir = tempdir();
    let mut child = Command::new(example())
        .env_clear()
        .envs([
            (
                "WETOKEN_DATABASE_URL",
                format!("sqlite://{}", dir.join("e.db").display()),
            ),
            ("WETOKEN_MASTER_KEY", MasterKey::generate_base64()),
            ("WETOKEN_ADMIN_KEY", ADMIN.to_owned()),
            ("WETOKEN_UPSTREAM_MP", sim.url()),
            ("WETOKEN_UPSTREAM_WORK", sim.url()),
            ("LISTEN", "127.0.0.1:0".to_owned()),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the example exited");
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.to_owned();
            }
        }
    })
    .await
    .expect("the example did not start");
    let http = client();

    // The mounted API: create the account with the admin key.
    let resp = http
        .post(format!("{url}/v1/accounts"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "mp", "appid": "wxembedded", "secret": "right"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // The application's own route reads it in-process…
    let own = http.get(format!("{url}/app/wxembedded/token")).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let in_process = own.text().await.unwrap();
    assert!(sim.is_valid(&in_process));
    // …and the mounted API serves the same one.
    let v: serde_json::Value = http
        .get(format!("{url}/v1/mp/wxembedded/access_token"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["access_token"], in_process.as_str());
    assert_eq!(sim.token_calls(), 1);

    // The scheduler the example started refreshes the 8 s token ahead of
    // expiry, with nobody reading.
    assert!(
        until(Duration::from_secs(20), || async { sim.token_calls() >= 2 }).await,
        "refreshed by the embedded scheduler"
    );
    child.kill().await.unwrap();
}
