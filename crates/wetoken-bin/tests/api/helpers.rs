//! Starts wetoken on port 0 with its own SQLite database, pointed at a
//! WeChat simulator, and speaks HTTP to it over a real socket: in this
//! process through the same `wetoken::server::run` the binary calls
//! ([`spawn_with`], most tests), or as the real binary
//! ([`spawn_process_with`]) for what only a process shows — its open files,
//! memory, log, `/metrics`, a kill -9, several instances at once.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wetoken_sim::{Sim, SimConfig};

pub const ADMIN: &str = "test-admin-key-0123456789-abcdefghij";
pub const BIN: &str = env!("CARGO_BIN_EXE_wetoken");

pub fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub async fn sim() -> Sim {
    Sim::start(SimConfig::default()).await.unwrap()
}

/// A running wetoken. A process is killed on drop, one in this process
/// told to stop; its directory goes when the last server and test holding
/// it are done.
pub struct TestServer {
    process: Option<Child>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub url: String,
    pub client: Client,
    _dir: TestDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(p) = &mut self.process {
            let _ = p.start_kill();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The environment of a test instance: only what it is given.
pub fn base_env(dir: &Path, upstream: &str) -> Vec<(String, String)> {
    [
        ("WETOKEN_LISTEN", "127.0.0.1:0".to_string()),
        (
            "WETOKEN_DATABASE_URL",
            format!("sqlite://{}", dir.join("wetoken.db").display()),
        ),
        // Key files stay in the test's directory whatever the database.
        ("WETOKEN_DATA_DIR", dir.display().to_string()),
        ("WETOKEN_ADMIN_KEY", ADMIN.to_string()),
        ("WETOKEN_UPSTREAM_MP", upstream.to_string()),
        ("WETOKEN_UPSTREAM_WORK", upstream.to_string()),
        ("WETOKEN_UPSTREAM_TIMEOUT_SECS", "3".to_string()),
        ("WETOKEN_LOG", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A temporary directory, removed once the test and every server started
/// in it are done with it.
#[derive(Clone)]
pub struct TestDir(std::sync::Arc<tempfile::TempDir>);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

pub fn tempdir() -> TestDir {
    TestDir(std::sync::Arc::new(tempfile::tempdir().unwrap()))
}

pub async fn spawn(sim: &Sim) -> TestServer {
    spawn_with(&tempdir(), &sim.url(), &[]).await
}

/// The base environment with `extra` overriding it.
fn env_with(dir: &Path, upstream: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = base_env(dir, upstream);
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// Starts an instance in this process, in `dir` (sharing its database with
/// any other instance there), with extra env overriding the base: the
/// settings read from that environment alone, then what `wetoken serve`
/// runs.
pub async fn spawn_with(dir: &TestDir, upstream: &str, extra: &[(&str, &str)]) -> TestServer {
    let env: std::collections::HashMap<String, String> = env_with(dir, upstream, extra).into_iter().collect();
    let settings = wetoken::server::Settings::load(None, |n| env.get(n).cloned()).expect("the test's settings");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (listening, url) = tokio::sync::oneshot::channel::<String>();
    let server = tokio::spawn(async move {
        let listening = move |s: &wetoken::server::Serving| {
            let _ = listening.send(format!("http://{}", s.addr));
        };
        wetoken::server::run(settings, false, listening, async move {
            let _ = stopped.await;
        })
        .await
    });
    let url = match tokio::time::timeout(Duration::from_secs(30), url).await {
        Ok(Ok(url)) => url,
        Ok(Err(_)) => panic!("wetoken did not start: {:?}", server.await),
        Err(_) => panic!("wetoken did not start within 30 s"),
    };
    TestServer {
        process: None,
        stop: Some(stop),
        url,
        client: client(),
        _dir: dir.clone(),
    }
}

/// How a test's server runs: in this process, or as the real binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    InProcess,
    Process,
}

/// Starts an instance the way `run` says (see [`spawn_with`] and
/// [`spawn_process_with`]).
pub async fn start(run: Run, dir: &TestDir, upstream: &str, extra: &[(&str, &str)]) -> TestServer {
    match run {
        Run::InProcess => spawn_with(dir, upstream, extra).await,
        Run::Process => spawn_process_with(dir, upstream, extra).await,
    }
}

/// Starts the real binary on `sim` in a directory of its own.
pub async fn spawn_process(sim: &Sim) -> TestServer {
    spawn_process_with(&tempdir(), &sim.url(), &[]).await
}

/// Starts the real binary in `dir` (sharing its database with any other
/// instance there), with extra env overriding the base; its log goes to
/// `server.log` there.
pub async fn spawn_process_with(dir: &TestDir, upstream: &str, extra: &[(&str, &str)]) -> TestServer {
    let env = env_with(dir, upstream, extra);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("wetoken listening on ") {
                return url.to_string();
            }
        }
        panic!(
            "wetoken exited before listening; see {}",
            dir.join("server.log").display()
        );
    })
    .await
    .expect("wetoken did not start within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    TestServer {
        process: Some(child),
        stop: None,
        url,
        client: client(),
        _dir: dir.clone(),
    }
}

impl TestServer {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::POST, path, key, body).await
    }

    /// Creates an mp account with the admin key.
    pub async fn add_mp(&self, appid: &str, secret: &str) {
        let (s, v) = self
            .post(
                "/v1/accounts",
                Some(ADMIN),
                Some(json!({"kind": "mp", "appid": appid, "secret": secret})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    /// Creates a client key covering `patterns`; returns the key.
    pub async fn key_for(&self, name: &str, patterns: &[&str]) -> String {
        let (s, v) = self
            .post(
                "/v1/keys",
                Some(ADMIN),
                Some(json!({"name": name, "accounts": patterns})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["key"].as_str().unwrap().to_string()
    }

    /// The server's process (started by [`spawn_process_with`]).
    pub fn child(&mut self) -> &mut Child {
        self.process
            .as_mut()
            .expect("this test needs a process of its own: start it with spawn_process_with")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .and_then(Child::id)
            .expect("this test needs a running process of its own: start it with spawn_process_with")
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub async fn kill(mut self) {
        self.child().kill().await.unwrap();
    }
}

/// Runs the CLI with only the given environment.
pub async fn cli(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .output()
        .await
        .unwrap()
}

/// The server's `/metrics` text (a process's own: the recorder is
/// process-wide).
pub async fn metrics_text(srv: &TestServer) -> String {
    assert!(
        srv.process.is_some(),
        "metrics are per process: start this server with spawn_process_with"
    );
    srv.client
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sum of a metric's samples whose labels contain every `label="value"`.
pub async fn metric(srv: &TestServer, name: &str, labels: &[&str]) -> f64 {
    let text = metrics_text(srv).await;
    text.lines()
        .filter(|l| l.starts_with(name) && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' ')))
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub async fn until<F: std::future::Future<Output = bool>>(limit: Duration, mut cond: impl FnMut() -> F) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
