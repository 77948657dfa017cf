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
    // A key that may not read tokens.
    let out = cli(
        &[
            "key",
            "create",
            "--name",
            "events-only",
            "--accounts",
            "mp:wxcli",
            "--no-tokens",
        ],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (s, _) = srv
        .get("/v1/mp/wxcli/access_token", Some(text(&out.stdout).trim()))
        .await;
    assert_eq!(s, reqwest::StatusCode::FORBIDDEN, "--no-tokens");

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
    let dir = tempdir();
    let env = base_env(&dir, &sim.url());
    assert!(cli(&["install-schema"], &env).await.status.success());
    cli(
        &["account", "add", "mp", "--appid", "wxclibad", "--secret", "wrong"],
        &env,
    )
    .await;
    let out = cli(&["token", "get", "mp:wxclibad"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("40125"), "{}", text(&out.stderr));
}

#[cfg(not(all(feature = "mysql", feature = "postgres", feature = "oracle")))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_not_compiled_in_are_named() {
    let dir = tempdir();
    let mut missing = Vec::new();
    if !cfg!(feature = "mysql") {
        missing.push(("mysql://u@127.0.0.1/w", "--features mysql"));
    }
    if !cfg!(feature = "postgres") {
        missing.push(("postgres://u@127.0.0.1/w", "--features postgres"));
    }
    if !cfg!(feature = "oracle") {
        missing.push(("oracle://u:p@127.0.0.1/w", "--features oracle"));
    }
    for (url, hint) in missing {
        let mut env = base_env(&dir, "http://127.0.0.1:1");
        env.retain(|(k, _)| k != "WETOKEN_DATABASE_URL");
        env.push(("WETOKEN_DATABASE_URL".into(), url.into()));
        let out = cli(&["account", "list"], &env).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains(hint), "{}", text(&out.stderr));
    }
}

#[cfg(feature = "oracle")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_without_its_client_library_fails_at_start_with_a_clear_message() {
    let dir = tempdir();
    let mut env = base_env(&dir, "http://127.0.0.1:1");
    env.retain(|(k, _)| k != "WETOKEN_DATABASE_URL");
    env.push((
        "WETOKEN_DATABASE_URL".into(),
        "oracle://wt:secret@127.0.0.1:1/XEPDB1".into(),
    ));
    let out = cli(&["serve"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(!line.contains("secret"), "no password in the message: {line}");
    // Without Instant Client (as here) it names what is missing; with it, the
    // unreachable server.
    assert!(line.contains("Instant Client") || line.contains("ORA-"), "{line}");
    assert!(out.stdout.is_empty(), "nothing listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_is_printed_for_a_dba_without_connecting() {
    let dir = tempdir();
    let env = base_env(&dir, "http://127.0.0.1:1");
    let mut backends = vec![("sqlite:///nowhere/w.db", "CREATE TABLE IF NOT EXISTS wt_credentials")];
    if cfg!(feature = "mysql") {
        backends.push(("mysql://u:p@127.0.0.1:1/w", "ENGINE = InnoDB"));
    }
    if cfg!(feature = "postgres") {
        backends.push(("postgres://u@127.0.0.1:1/w", "COLLATE \"C\""));
    }
    if cfg!(feature = "oracle") {
        backends.push(("oracle://u:p@127.0.0.1:1/s", "VARCHAR2(4000)"));
    }
    for (url, marker) in backends {
        let out = cli(&["install-schema", "--database-url", url, "--print"], &env).await;
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        let ddl = text(&out.stdout);
        assert!(ddl.contains(marker) && ddl.contains("wt_keys"), "{url}: {ddl}");
    }
}

/// `install-schema` on the servers `cargo xtask ci` starts: installs, and
/// again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MariaDB and PostgreSQL: run `cargo xtask ci`, or set WETOKEN_TEST_MYSQL_URL and WETOKEN_TEST_POSTGRES_URL and pass --include-ignored"]
async fn install_schema_on_database_servers_is_idempotent() {
    let dir = tempdir();
    let env = base_env(&dir, "http://127.0.0.1:1");
    for var in ["WETOKEN_TEST_MYSQL_URL", "WETOKEN_TEST_POSTGRES_URL"] {
        let server = std::env::var(var).unwrap_or_else(|_| panic!("set {var}"));
        let url = wetoken_store_tests::fresh_database(&server).await.unwrap();
        for _ in 0..2 {
            let out = cli(&["install-schema", "--database-url", &url], &env).await;
            assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        }
        let mut env = env.clone();
        env.retain(|(k, _)| k != "WETOKEN_DATABASE_URL");
        env.push(("WETOKEN_DATABASE_URL".into(), url.clone()));
        env.push(("WETOKEN_AUTO_MIGRATE".into(), "false".into()));
        let out = cli(&["account", "add", "mp", "--appid", "wxschema", "--secret", "s"], &env).await;
        assert!(
            out.status.success(),
            "works without auto-migrate once installed: {}",
            text(&out.stderr)
        );
    }
}

/// SPEC §2 fencing: `serve` refuses a lease that does not outlast the
/// upstream calls it covers (exit 1, naming both settings), before it
/// touches anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_lease_shorter_than_its_upstream_calls() {
    let dir = tempdir();
    let mut env = base_env(&dir, "http://127.0.0.1:1");
    env.push(("WETOKEN_LEASE_SECS".into(), "6".into()));
    // base_env's upstream timeout is 3 s: two calls need more than 6 s.
    let out = cli(&["serve"], &env).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("WETOKEN_LEASE_SECS") && err.contains("WETOKEN_UPSTREAM_TIMEOUT_SECS"),
        "{err}"
    );
    assert!(!dir.join("wetoken.db").exists(), "nothing was created");
}

/// Commands other than `serve` and `install-schema` never alter a schema:
/// on a database server without one they fail (exit 1) naming what to run,
/// and leave it without one; once installed their stderr carries no driver
/// notice (issue: custody holds, item 8). The embedded default is the one
/// exception: a new SQLite file gets its schema on first use, as the file
/// itself is created (SPEC §7).
async fn one_shot_commands_leave_the_schema_alone(url: String, embedded: bool) {
    let dir = tempdir();
    let mut env = base_env(&dir, "http://127.0.0.1:1");
    env.retain(|(k, _)| k != "WETOKEN_DATABASE_URL" && k != "WETOKEN_LOG");
    env.push(("WETOKEN_DATABASE_URL".into(), url));
    if !embedded {
        for _ in 0..2 {
            let out = cli(&["account", "list"], &env).await;
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
            let err = text(&out.stderr);
            assert!(err.starts_with("error: ") && err.contains("install-schema"), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        assert!(
            !dir.join("master.key").exists(),
            "nothing made for a command that cannot run"
        );
        let out = cli(&["install-schema"], &env).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for args in [
        &["account", "list"][..],
        &["key", "list"],
        &["webhook", "list"],
        &["account", "list"],
    ] {
        let out = cli(args, &env).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            !err.contains("sqlx") && !err.contains("INFO"),
            "{args:?}: no driver notice: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_create_a_new_sqlite_database_quietly() {
    let dir = tempdir();
    let url = format!("sqlite://{}", dir.join("fresh.db").display());
    one_shot_commands_leave_the_schema_alone(url, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run `cargo xtask ci`, or set WETOKEN_TEST_POSTGRES_URL and pass --include-ignored"]
async fn one_shot_commands_leave_a_postgres_schema_alone() {
    let server = std::env::var("WETOKEN_TEST_POSTGRES_URL").expect("set WETOKEN_TEST_POSTGRES_URL");
    let url = wetoken_store_tests::fresh_database(&server).await.unwrap();
    one_shot_commands_leave_the_schema_alone(url, false).await;
}
