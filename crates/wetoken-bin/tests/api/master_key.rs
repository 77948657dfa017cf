//! SPEC §2 "the master key cannot be lost silently", with the real binary
//! over a real SQLite file: a lost or wrong key is refused (exit 1, naming
//! where the key came from and the key id expected) and never replaced by a
//! new one; a rotation opens with the old keys, `wetoken rekey` re-seals
//! everything under the new one, and then the old key is not needed.

use std::time::Duration;

use reqwest::StatusCode;
use wetoken_core::secret::MasterKey;

use crate::helpers::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command that must fail at start-up (a hang would be a pass of
/// the key check: bounded).
async fn refused(args: &[&str], env: &[(String, String)]) -> String {
    let out = tokio::time::timeout(Duration::from_secs(30), cli(args, env))
        .await
        .expect("refused at once, not started");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: "), "{err}");
    last
}

fn with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_wrong_master_key_is_refused_and_never_replaced() {
    let sim = sim().await;
    sim.add_app("wxkeep", "s");
    let dir = tempdir();
    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    srv.add_mp("wxkeep", "s").await;
    let (_, v) = srv.get("/v1/mp/wxkeep/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    srv.kill().await;
    let key_file = dir.join("master.key");
    let original = std::fs::read_to_string(&key_file).unwrap();
    let id = MasterKey::from_base64(&original).unwrap().id().to_owned();
    let env = base_env(&dir, &sim.url());

    // The key file is lost (a new container, a second instance).
    std::fs::remove_file(&key_file).unwrap();
    let err = refused(&["serve"], &env).await;
    assert!(err.contains("master.key") && err.contains(&id), "{err}");
    assert!(!key_file.exists(), "no new key was kept over sealed data");
    let err = refused(&["account", "list"], &env).await;
    assert!(err.contains(&id), "every command checks: {err}");

    // Another key given.
    let other = MasterKey::generate_base64();
    let err = refused(&["serve"], &with(&env, &[("WETOKEN_MASTER_KEY", &other)])).await;
    assert!(err.contains("WETOKEN_MASTER_KEY") && err.contains(&id), "{err}");

    // The key restored: everything opens, nothing was lost.
    std::fs::write(&key_file, &original).unwrap();
    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    let (s, v) = srv.get("/v1/mp/wxkeep/access_token", Some(ADMIN)).await;
    assert_eq!((s, v["access_token"].as_str()), (StatusCode::OK, Some(token.as_str())));
    assert_eq!(sim.token_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_opens_with_the_old_key_and_rekey_retires_it() {
    let sim = sim().await;
    sim.add_app("wxrotate", "s");
    let dir = tempdir();
    let (a, b) = (MasterKey::generate_base64(), MasterKey::generate_base64());
    let b_id = MasterKey::from_base64(&b).unwrap().id().to_owned();
    let srv = spawn_process_with(&dir, &sim.url(), &[("WETOKEN_MASTER_KEY", &a)]).await;
    srv.add_mp("wxrotate", "s").await;
    let (_, v) = srv.get("/v1/mp/wxrotate/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    // A webhook's secret is sealed too.
    let rx = crate::receiver::Receiver::start().await;
    let (s, hook) = srv
        .post(
            "/v1/webhooks",
            Some(ADMIN),
            Some(serde_json::json!({"name":"ops","url":rx.url,"events":["wetoken.*"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    srv.kill().await;

    // The new key seals, the old one still opens.
    let rotating = [
        ("WETOKEN_MASTER_KEY", b.as_str()),
        ("WETOKEN_OLD_MASTER_KEYS", a.as_str()),
    ];
    let srv = spawn_process_with(&dir, &sim.url(), &rotating).await;
    let (s, v) = srv.get("/v1/mp/wxrotate/access_token", Some(ADMIN)).await;
    assert_eq!((s, v["access_token"].as_str()), (StatusCode::OK, Some(token.as_str())));
    srv.kill().await;

    let env = with(&base_env(&dir, &sim.url()), &rotating);
    let out = cli(&["rekey"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let count: u64 = said
        .strip_prefix("re-sealed ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        count >= 3,
        "the account's secrets, its token, the webhook's secret: {said}"
    );
    assert!(said.contains(&b_id), "{said}");
    let out = cli(&["rekey"], &env).await;
    assert!(
        text(&out.stdout).starts_with("re-sealed 0 values"),
        "a second run finds nothing to do"
    );

    // The old key is no longer needed, and no longer enough.
    let srv = spawn_process_with(&dir, &sim.url(), &[("WETOKEN_MASTER_KEY", &b)]).await;
    let (s, v) = srv.get("/v1/mp/wxrotate/access_token", Some(ADMIN)).await;
    assert_eq!((s, v["access_token"].as_str()), (StatusCode::OK, Some(token.as_str())));
    // The webhook still signs with its secret: an event to deliver.
    sim.add_app("wxrotatebad", "right");
    srv.add_mp("wxrotatebad", "wrong").await;
    let (s, _) = srv.get("/v1/mp/wxrotatebad/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    let got = rx.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert!(!got.is_empty(), "delivered after the rotation");
    let r = &got[0];
    // SPEC §10, computed here: sha256=<hex HMAC-SHA256(secret, ts + "." + body)>.
    let expected = {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(r.header("x-wetoken-timestamp").as_bytes());
        mac.update(b".");
        mac.update(&r.body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    assert_eq!(r.header("x-wetoken-signature"), expected, "signed with the same secret");
    srv.kill().await;
    let err = refused(
        &["serve"],
        &with(&base_env(&dir, &sim.url()), &[("WETOKEN_MASTER_KEY", &a)]),
    )
    .await;
    assert!(err.contains(&b_id), "{err}");
    assert_eq!(
        sim.token_calls(),
        2,
        "nothing was fetched again (1 + the refused wxrotatebad)"
    );
}
