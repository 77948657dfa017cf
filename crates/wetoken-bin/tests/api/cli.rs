use crate::helpers::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_is_one_line_and_exit_2() {
    let dir = tempdir();
    let env = base_env(&dir, "http://127.0.0.1:1");
    for args in [
        vec!["--frobnicate"],
        vec![],
        vec!["account", "show", "mp:wx1' OR '1'='1"],
        vec!["account", "add", "mp", "--appid", "wx1"],
        vec!["account", "add", "mp", "--appid", "bad id", "--secret", "s"],
        vec!["token", "get", "mp:wx1", "agent_ticket"],
        vec!["key", "create", "--name", "k", "--accounts", "wx1"],
        vec!["key", "create", "--name", "bad name", "--accounts", "*"],
        vec!["account", "rm"],
    ] {
        let out = cli(&args, &env).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("error: "), "{err}");
    }
    assert!(
        !dir.join("master.key").exists() && !dir.join("wetoken.db").exists(),
        "bad usage changed nothing"
    );
    let out = cli(&["--help"], &env).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("install-schema"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_keys_and_tokens_from_the_command_line() {
    let sim = sim().await;
    sim.add_app("wxcli", "s");
    let dir = tempdir();
    let env = base_env(&dir, &sim.url());
    let out = cli(&["install-schema"], &env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["install-schema"], &env).await;
    assert!(out.status.success(), "idempotent: {}", text(&out.stderr));
    let out = cli(&["install-schema", "--print"], &env).await;
    assert!(text(&out.stdout).contains("CREATE TABLE"));

    let out = cli(&["account", "add", "mp", "--appid", "wxcli", "--secret", "s"], &env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["account", "add", "mp", "--appid", "wxcli", "--secret", "s"], &env).await;
    assert_eq!(out.status.code(), Some(1), "duplicate is a runtime error");
    assert!(text(&out.stderr).starts_with("error: "));

    let out = cli(&["token", "get", "mp:wxcli"], &env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert!(sim.is_valid(&token), "prints the bare value");
    let out = cli(&["token", "get", "mp:wxcli", "--json"], &env).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["access_token"], token.as_str(), "served from the database");
    assert_eq!(sim.token_calls(), 1);
    let out = cli(&["token", "get", "mp:wxcli", "jsapi_ticket"], &env).await;
    assert!(text(&out.stdout).starts_with("JSAPI_"));

    let out = cli(&["account", "list"], &env).await;
    assert!(text(&out.stdout).lines().next().unwrap().starts_with("mp:wxcli\t"));
    let out = cli(&["account", "show", "mp:wxcli"], &env).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["appid"], "wxcli");

    let out = cli(
        &["key", "create", "--name", "app1", "--accounts", "mp:wxcli,mp:other"],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout);
    assert_eq!(key.lines().count(), 1);
    assert!(key.starts_with("wtk_"));
    let out = cli(&["key", "list"], &env).await;
    assert_eq!(
        text(&out.stdout).split('\t').take(2).collect::<Vec<_>>(),
        ["app1", "mp:wxcli,mp:other"]
    );

    // The key made on the command line works over HTTP.
    let srv = spawn_with(&dir, &sim.url(), &[]).await;
    let (s, v) = srv.get("/v1/mp/wxcli/access_token", Some(key.trim())).await;
    assert_eq!(s, reqwest::StatusCode::OK);
    assert_eq!(v["access_token"], token.as_str());

    let out = cli(&["key", "rm", "app1"], &env).await;
    assert!(out.status.success());
    let out = cli(&["account", "rm", "mp:wxcli"], &env).await;
    assert!(out.status.success());
    let out = cli(&["account", "rm", "mp:wxcli"], &env).await;
    assert_eq!(out.status.code(), Some(1), "unknown id is a runtime error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refusal_on_the_command_line_names_the_errcode() {
    let sim = sim().await;
    sim.add_app("wxclibad", "right");
    let env = base_env(&tempdir(), &sim.url());
    cli(
        &["account", "add", "mp", "--appid", "wxclibad", "--secret", "wrong"],
        &env,
    )
    .await;
    let out = cli(&["token", "get", "mp:wxclibad"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("40125"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_not_compiled_in_are_named() {
    let dir = tempdir();
    let mut env = base_env(&dir, "http://127.0.0.1:1");
    env.retain(|(k, _)| k != "WETOKEN_DATABASE_URL");
    env.push(("WETOKEN_DATABASE_URL".into(), "postgres://u@127.0.0.1/w".into()));
    let out = cli(&["account", "list"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--features postgres"),
        "{}",
        text(&out.stderr)
    );
}
