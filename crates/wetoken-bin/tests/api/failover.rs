//! SPEC §16: the database fails over under wetoken. A PostgreSQL primary
//! with a synchronous streaming replica, reached through a forwarder on
//! one loopback address (as a virtual IP or a DNS name would be); the
//! primary killed (-9), the replica promoted, the forwarder switched.
//! Readers (with a client key) are served throughout; pushes made while
//! nothing can be committed are not answered `success` (WeChat retries
//! them); refreshes and pushes resume by themselves within
//! WETOKEN_LEASE_SECS of the new primary accepting writes; every
//! acknowledged push and refresh is on the new primary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use wetoken_sim::messages::{Answered, Format, Message, Mode, Receiver};

use crate::helpers::*;

/// PostgreSQL's server programs (Debian keeps them out of PATH).
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs (Debian: postgresql): run `cargo xtask ci`")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect("initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A server program, run as `postgres` when this is root (initdb refuses root).
fn as_postgres(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

/// Runs a server program; its output.
fn pg(bin: &Path, program: &str, args: &[&str]) -> String {
    let out = as_postgres(bin, program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn psql(bin: &Path, port: u16, sql: &str) -> String {
    let port = port.to_string();
    let tab = "\t";
    pg(
        bin,
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "wetoken",
            "-F",
            tab,
            "-Atc",
            sql,
        ],
    )
}

/// Stops every server started on these data directories, however the test ends.
struct Servers(PathBuf, Vec<PathBuf>);

impl Drop for Servers {
    fn drop(&mut self) {
        for d in &self.1 {
            let d = d.display().to_string();
            let mut cmd = as_postgres(&self.0, "pg_ctl");
            let _ = cmd.args(["-D", &d, "-m", "immediate", "stop"]).output();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server on `data` at `port`.
fn start(bin: &Path, data: &Path, port: u16, extra: &str) {
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 {extra}",
        data.display()
    );
    let (d, log) = (
        data.display().to_string(),
        data.join("server.log").display().to_string(),
    );
    pg(bin, "pg_ctl", &["-D", &d, "-l", &log, "-o", &opts, "-w", "start"]);
}

/// A TCP forwarder on one loopback port to a switchable target: what an
/// application sees of a failover (the address it has stays; what answers
/// there changes, its connections break).
struct Forwarder {
    port: u16,
    target: Arc<AtomicU16>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Forwarder {
    async fn start(target: u16) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(target));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (t, c) = (target.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = t.load(Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Forwarder { port, target, conns }
    }

    /// Points at `port`; every connection made so far is cut.
    fn switch(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

const APPS: [&str; 3] = ["wxfailover001", "wxfailover002", "wxfailover003"];
const TOKEN: &str = "failovertoken";
const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const LEASE_SECS: u64 = 10;

/// Two database servers, a primary and its synchronous replica, that a
/// test reads directly and fails over.
trait Pair {
    /// The primary's and the replica's ports.
    fn ports(&self) -> (u16, u16);
    /// wetoken's database URL through `port`.
    fn url(&self, port: u16) -> String;
    /// One query on the primary (`true`) or the replica, rows as lines of
    /// tab-separated fields, NULL as nothing.
    fn sql(&self, primary: bool, sql: &str) -> String;
    /// kill -9 of the primary's server.
    fn kill_primary(&self);
    /// The replica made a primary accepting writes.
    fn promote(&self);
}

struct PgPair {
    bin: PathBuf,
    primary: PathBuf,
    replica: PathBuf,
    ports: (u16, u16),
    _servers: Servers,
}

impl PgPair {
    async fn start(dir: &Path) -> PgPair {
        let bin = pg_bin();
        let (primary, replica) = (dir.join("primary"), dir.join("replica"));
        Command::new("chmod").arg("755").arg(dir).status().unwrap();
        for d in [&primary, &replica] {
            std::fs::create_dir_all(d).unwrap();
            if is_root() {
                Command::new("chown").arg("postgres").arg(d).status().unwrap();
            }
            Command::new("chmod").arg("700").arg(d).status().unwrap();
        }
        let _servers = Servers(bin.clone(), vec![primary.clone(), replica.clone()]);
        let (p1, p2) = (free_port(), free_port());
        pg(
            &bin,
            "initdb",
            &[
                "-D",
                &primary.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ],
        );
        start(&bin, &primary, p1, "-c wal_level=replica -c max_wal_senders=5");
        let p1s = p1.to_string();
        pg(
            &bin,
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &p1s,
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE wetoken",
            ],
        );
        let r = replica.display().to_string();
        pg(
            &bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &p1s,
                "-U",
                "postgres",
                "-D",
                &r,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        start(&bin, &replica, p2, "");
        // Synchronous: a commit returns once the replica has it.
        psql(&bin, p1, "ALTER SYSTEM SET synchronous_standby_names = '*'");
        psql(&bin, p1, "SELECT pg_reload_conf()");
        let sync = until(Duration::from_secs(20), || async {
            psql(&bin, p1, "SELECT sync_state FROM pg_stat_replication") == "sync"
        })
        .await;
        assert!(sync, "the replica never became synchronous");

        PgPair {
            bin,
            primary,
            replica,
            ports: (p1, p2),
            _servers,
        }
    }
}

impl Pair for PgPair {
    fn ports(&self) -> (u16, u16) {
        self.ports
    }

    fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/wetoken")
    }

    fn sql(&self, primary: bool, sql: &str) -> String {
        psql(&self.bin, if primary { self.ports.0 } else { self.ports.1 }, sql)
    }

    fn kill_primary(&self) {
        let pid = std::fs::read_to_string(self.primary.join("postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_owned();
        Command::new("kill").args(["-9", &pid]).status().unwrap();
    }

    fn promote(&self) {
        pg(
            &self.bin,
            "pg_ctl",
            &["-D", &self.replica.display().to_string(), "-w", "promote"],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL's server programs (Debian: postgresql): run `cargo xtask ci`, or pass --include-ignored"]
async fn postgres_fails_over_under_wetoken() {
    let dir = tempdir();
    let pair = PgPair::start(&dir).await;
    fail_over(&pair, &dir, "PostgreSQL").await;
}

/// The scenario, on either database.
async fn fail_over(pair: &dyn Pair, dir: &TestDir, label: &str) {
    let (p1, p2) = pair.ports();
    let fwd = Forwarder::start(p1).await;
    let sim = sim().await;
    // Tokens of 12 s: each due again 6–9 s after it is fetched.
    sim.configure(|c| c.token_ttl_secs = 12);
    let url = pair.url(fwd.port);
    let lease = LEASE_SECS.to_string();
    let srv = spawn_process_with(
        dir,
        &sim.url(),
        &[
            ("WETOKEN_DATABASE_URL", &url),
            ("WETOKEN_CACHE_TTL_SECS", "1"),
            ("WETOKEN_LEASE_SECS", &lease),
            ("WETOKEN_REFRESH_AHEAD_SECS", "6"),
        ],
    )
    .await;
    for app in APPS {
        sim.add_app(app, "s");
        let body = json!({"kind": "mp", "appid": app, "secret": "s", "token": TOKEN, "aes_key": AES});
        let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let key = srv.key_for("readers", &["*"]).await;

    // Readers, every 50 ms, with a client key: every answer recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let readers = {
        let (stop, url, key) = (stop.clone(), srv.url.clone(), key.clone());
        tokio::spawn(async move {
            let http = client();
            let mut reads = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for app in APPS {
                    let started = Instant::now();
                    let r = http
                        .get(format!("{url}/v1/mp/{app}/access_token"))
                        .bearer_auth(&key)
                        .send()
                        .await;
                    let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    reads.push((started, status, started.elapsed()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            reads
        })
    };
    // Pushes, one after another, as WeChat makes them (retries included).
    let pushes = {
        let (stop, srv_url) = (stop.clone(), srv.url.clone());
        let receiver = Receiver::mp(
            &format!("{srv_url}/callback/mp/{}", APPS[0]),
            TOKEN,
            AES,
            APPS[0],
            Mode::Safe,
            Format::Xml,
        );
        let sim = &sim;
        async move {
            let mut out = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let m = Message::text("gh_failover", "oUser", &format!("failover-push-{n}"), n, sim.now_secs());
                let d = sim.push_within(&receiver, &m, Duration::from_secs(2)).await;
                out.push((n, Instant::now(), d));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            out
        }
    };
    let scenario = async {
        // Refreshes going on: every account fetched, then refreshed once.
        let refreshed = until(Duration::from_secs(30), || async {
            pair.sql(
                true,
                "SELECT count(*) FROM wt_credentials WHERE kind = 'access_token' AND version > 1",
            ) == "3"
        })
        .await;
        assert!(refreshed, "the scheduler did not refresh");
        let committed = pair.sql(
            true,
            "SELECT account_id, expires_at FROM wt_credentials WHERE kind = 'access_token' ORDER BY account_id",
        );
        // The primary dies.
        pair.kill_primary();
        let killed = Instant::now();
        // The outage: what failing over takes before a replica is promoted.
        tokio::time::sleep(Duration::from_secs(3)).await;
        pair.promote();
        // Nothing committed on the old primary is missing on the new one.
        let now_there = pair.sql(
            false,
            "SELECT account_id, expires_at FROM wt_credentials WHERE kind = 'access_token' ORDER BY account_id",
        );
        for (before, after) in committed.lines().zip(now_there.lines()) {
            let (a, e) = before.split_once('\t').unwrap();
            let (b, f) = after.split_once('\t').unwrap();
            assert!(
                a == b && f.parse::<i64>().unwrap() >= e.parse::<i64>().unwrap(),
                "{before} → {after}"
            );
        }
        fwd.switch(p2);
        let promoted = Instant::now();
        let promoted_ms = chrono::Utc::now().timestamp_millis();
        // Refreshes resume by themselves: the first credential due (or
        // left leased by the dead primary's last refresh) within
        // WETOKEN_LEASE_SECS of its due time or of the promotion.
        let min_due: i64 = pair
            .sql(
                false,
                "SELECT min(due_at) FROM wt_credentials WHERE kind = 'access_token'",
            )
            .parse()
            .unwrap();
        let from_ms = promoted_ms.max(min_due);
        let deadline = from_ms + LEASE_SECS as i64 * 1000;
        let wait = Duration::from_millis((deadline - promoted_ms).max(0) as u64 + 2_000);
        let first_refresh = || {
            pair.sql(
                false,
                &format!("SELECT min(refreshed_at) FROM wt_credentials WHERE refreshed_at > {promoted_ms}"),
            )
        };
        let resumed = until(wait, || async { !first_refresh().is_empty() }).await;
        if !resumed {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "no refresh on the new primary; the server's log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let first: i64 = first_refresh().parse().unwrap();
        assert!(first <= deadline, "a refresh {} ms after it was due", first - from_ms);
        let refresh_after = Duration::from_millis((first - from_ms).max(0) as u64);
        (killed, promoted, refresh_after)
    };
    let (pushes, (killed, promoted, refresh_after)) = tokio::join!(pushes, async {
        let r = scenario.await;
        // A few more pushes and reads after the refresh resumed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        r
    });
    let reads = readers.await.unwrap();

    // Every read answered, from the cache while there was no database.
    let failed: Vec<_> = reads.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} reads failed: {failed:?}",
        failed.len(),
        reads.len()
    );
    let slowest = reads.iter().map(|r| r.2).max().unwrap();

    // Pushes: each acknowledged one is on the new primary; while nothing
    // could be committed, WeChat was not told `success`.
    let events = pair.sql(false, "SELECT data FROM wt_events WHERE event_type = 'message.text'");
    let acknowledged = |d: &wetoken_sim::messages::Delivery| {
        d.attempts
            .iter()
            .any(|(a, _)| matches!(a, Answered::Status(200, b) if b.is_empty() || b == "success"))
    };
    let mut refused = 0;
    for (n, _, d) in &pushes {
        refused += d
            .attempts
            .iter()
            .filter(|(a, _)| !matches!(a, Answered::Status(200, _)))
            .count();
        if acknowledged(d) {
            assert!(
                events.contains(&format!("failover-push-{n}\"")),
                "push {n} acknowledged, not on the new primary"
            );
        }
    }
    assert!(refused > 0, "no push came during the outage");
    // When the first push acknowledged after the promotion was answered.
    let first_ok = pushes
        .iter()
        .filter(|(_, at, d)| *at > promoted && acknowledged(d))
        .map(|(_, at, _)| at.duration_since(promoted))
        .min()
        .expect("pushes acknowledged after the failover");
    let lease = Duration::from_secs(LEASE_SECS);
    assert!(
        first_ok < lease,
        "pushes acknowledged again {first_ok:?} after the promotion"
    );
    eprintln!(
        "failover on {label}: outage {:.1?} (kill → promoted); after promotion pushes acknowledged within {first_ok:.1?}, \
         the first refresh due committed {refresh_after:.1?} after it was due (or after the promotion); {} reads all answered (slowest {slowest:.0?}); \
         {} pushes, {refused} attempts refused",
        promoted - killed,
        reads.len(),
        pushes.len()
    );
}

/// The first of `names` on PATH or in the sbin folders.
fn find(names: &[&str]) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{names:?} not found (Debian: mariadb-server): run `cargo xtask ci`"))
}

/// A MariaDB primary and a replica of it by GTID, semi-synchronous (a
/// commit returns once the replica has it; the primary never falls back
/// to asynchronous within the test), each a server of its own.
struct MariaPair {
    client: PathBuf,
    dir: PathBuf,
    ports: (u16, u16),
    servers: std::sync::Mutex<Vec<std::process::Child>>,
}

impl Drop for MariaPair {
    fn drop(&mut self) {
        for c in self.servers.lock().unwrap().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl MariaPair {
    fn socket(&self, primary: bool) -> PathBuf {
        self.dir.join(if primary { "primary.sock" } else { "replica.sock" })
    }

    fn root(&self, primary: bool, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket(primary).display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    async fn start(dir: &Path) -> MariaPair {
        let server = find(&["mariadbd", "mysqld"]);
        let install = find(&["mariadb-install-db", "mysql_install_db"]);
        let pair = MariaPair {
            client: find(&["mariadb", "mysql"]),
            dir: dir.to_owned(),
            ports: (free_port(), free_port()),
            servers: Default::default(),
        };
        for (primary, port, id) in [(true, pair.ports.0, 1), (false, pair.ports.1, 2)] {
            let name = if primary { "primary" } else { "replica" };
            let data = dir.join(format!("{name}-data"));
            let out = Command::new(&install)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
            let child = Command::new(&server)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--socket={}", pair.socket(primary).display()))
                .arg(format!("--pid-file={}", dir.join(format!("{name}.pid")).display()))
                .arg("--user=root")
                .arg(format!("--server-id={id}"))
                .args([
                    "--log-bin=binlog",
                    "--binlog-format=ROW",
                    "--innodb-flush-log-at-trx-commit=2",
                    "--max-connections=500",
                    "--skip-name-resolve",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            pair.servers.lock().unwrap().push(child);
            let up = until(Duration::from_secs(60), || async {
                pair.root(primary, "SELECT 1").is_ok()
            })
            .await;
            assert!(up, "MariaDB ({name}) did not start");
        }
        let must = |primary: bool, sql: &str| pair.root(primary, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        must(
            true,
            "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'; \
             CREATE USER 'wetoken'@'%' IDENTIFIED BY 'wetoken'; GRANT ALL ON *.* TO 'wetoken'@'%'; \
             CREATE DATABASE wetoken",
        );
        must(
            false,
            &format!(
                "SET GLOBAL rpl_semi_sync_slave_enabled = ON; \
                 CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
                 MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos; START SLAVE",
                pair.ports.0
            ),
        );
        must(
            true,
            "SET GLOBAL rpl_semi_sync_master_timeout = 600000; SET GLOBAL rpl_semi_sync_master_enabled = ON",
        );
        let sync = until(Duration::from_secs(30), || async {
            pair.root(true, "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'")
                .is_ok_and(|s| s.ends_with("\t1"))
                && pair
                    .root(
                        false,
                        "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'wetoken'",
                    )
                    .is_ok_and(|s| s == "1")
        })
        .await;
        assert!(sync, "the replica never became semi-synchronous");
        pair
    }
}

impl Pair for MariaPair {
    fn ports(&self) -> (u16, u16) {
        self.ports
    }

    fn url(&self, port: u16) -> String {
        format!("mysql://wetoken:wetoken@127.0.0.1:{port}/wetoken")
    }

    fn sql(&self, primary: bool, sql: &str) -> String {
        let out = self
            .root(primary, &format!("USE wetoken; {sql}"))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if out == "NULL" { String::new() } else { out }
    }

    fn kill_primary(&self) {
        let _ = self.servers.lock().unwrap()[0].kill();
    }

    fn promote(&self) {
        // What the replica received is applied first (semi-synchronous:
        // every acknowledged commit is among it), then it takes writes.
        let applied = || {
            let status = self.root(false, "SHOW SLAVE STATUS\\G").unwrap();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")).map(str::to_owned))
            };
            field("Slave_SQL_Running_State").is_some_and(|s| s.contains("has read all relay log"))
                || (field("Read_Master_Log_Pos") == field("Exec_Master_Log_Pos")
                    && field("Master_Log_File") == field("Relay_Master_Log_File"))
        };
        let started = Instant::now();
        while !applied() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.root(
            false,
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL rpl_semi_sync_slave_enabled = OFF; SET GLOBAL read_only = OFF",
        )
        .unwrap();
    }
}

/// The same on MariaDB: set up in about as long as PostgreSQL's, so CI
/// runs it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs MariaDB's server (Debian: mariadb-server): run `cargo xtask ci`, or pass --include-ignored"]
async fn mariadb_fails_over_under_wetoken() {
    let dir = tempdir();
    let pair = MariaPair::start(&dir).await;
    fail_over(&pair, &dir, "MariaDB").await;
}
