//! MariaDB and PostgreSQL for the test run: installed from Debian packages
//! when missing, started on free loopback ports with their data in a
//! temporary directory, stopped (and the directory removed) on drop.
//!
//! A server URL already in `WETOKEN_TEST_MYSQL_URL` / `WETOKEN_TEST_POSTGRES_URL`
//! is used as it is and nothing is started for it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MYSQL_VAR: &str = "WETOKEN_TEST_MYSQL_URL";
const POSTGRES_VAR: &str = "WETOKEN_TEST_POSTGRES_URL";

pub struct Databases {
    dir: PathBuf,
    mysql_url: String,
    postgres_url: String,
    mariadb: Option<(Child, PathBuf)>,
    postgres: Option<(PathBuf, PathBuf)>,
}

pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

pub(crate) fn is_root() -> bool {
    run(Command::new("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

/// The first of `names` found on PATH or in the usual sbin folders.
fn find(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// PostgreSQL's server programs: Debian keeps them versioned out of PATH.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

pub(crate) fn apt_install(packages: &[&str]) -> Result<(), String> {
    if !is_root() {
        return Err(format!(
            "{} missing: install it (apt-get install {}) or run as root",
            packages.join(", "),
            packages.join(" ")
        ));
    }
    eprintln!("==> apt-get install {}", packages.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("{what} did not become ready within {limit:?}"))
}

impl Databases {
    pub fn start() -> Result<Databases, String> {
        let dir = std::env::temp_dir().join(format!("wetoken-ci-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // The postgres user must reach its data directory.
        run(Command::new("chmod").arg("755").arg(&dir))?;
        let mut dbs = Databases {
            dir,
            mysql_url: String::new(),
            postgres_url: String::new(),
            mariadb: None,
            postgres: None,
        };
        match std::env::var(MYSQL_VAR) {
            Ok(url) => dbs.mysql_url = url,
            Err(_) => dbs.start_mariadb()?,
        }
        match std::env::var(POSTGRES_VAR) {
            Ok(url) => dbs.postgres_url = url,
            Err(_) => dbs.start_postgres()?,
        }
        eprintln!(
            "==> databases: {MYSQL_VAR}={} {POSTGRES_VAR}={}",
            dbs.mysql_url, dbs.postgres_url
        );
        Ok(dbs)
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (MYSQL_VAR.into(), self.mysql_url.clone()),
            (POSTGRES_VAR.into(), self.postgres_url.clone()),
        ]
    }

    fn start_mariadb(&mut self) -> Result<(), String> {
        if find(&["mariadbd", "mysqld"]).is_none() {
            apt_install(&["mariadb-server"])?;
        }
        let server = find(&["mariadbd", "mysqld"]).ok_or("mariadbd not found after installing mariadb-server")?;
        let install = find(&["mariadb-install-db", "mysql_install_db"]).ok_or("mariadb-install-db not found")?;
        let client = find(&["mariadb", "mysql"]).ok_or("the mariadb client was not found")?;
        let data = self.dir.join("mariadb");
        let socket = self.dir.join("mariadb.sock");
        let port = free_port()?;
        eprintln!("==> starting MariaDB on 127.0.0.1:{port}");
        let user = if is_root() {
            "root".to_owned()
        } else {
            std::env::var("USER").unwrap_or_default()
        };
        run(Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]))?;
        let log = std::fs::File::create(self.dir.join("mariadb.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", self.dir.join("mariadb.pid").display()))
            .arg(format!("--user={user}"))
            .args([
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-connections=1000",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
        self.mariadb = Some((child, socket.clone()));
        let sql = |statements: &str| {
            run(Command::new(&client)
                .arg("--no-defaults")
                .arg(format!("--socket={}", socket.display()))
                .args(["-uroot", "-e", statements]))
        };
        wait_until("MariaDB", Duration::from_secs(60), || sql("SELECT 1").is_ok())?;
        sql(
            "CREATE USER 'wetoken'@'%' IDENTIFIED BY 'wetoken'; GRANT ALL ON *.* TO 'wetoken'@'%'; \
             CREATE USER 'wetoken'@'localhost' IDENTIFIED BY 'wetoken'; GRANT ALL ON *.* TO 'wetoken'@'localhost';",
        )?;
        self.mysql_url = format!("mysql://wetoken:wetoken@127.0.0.1:{port}");
        Ok(())
    }

    fn start_postgres(&mut self) -> Result<(), String> {
        if postgres_bin().is_none() {
            apt_install(&["postgresql"])?;
        }
        let bin = postgres_bin().ok_or("PostgreSQL's initdb not found after installing postgresql")?;
        let data = self.dir.join("postgres");
        let port = free_port()?;
        eprintln!("==> starting PostgreSQL on 127.0.0.1:{port}");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        // initdb refuses to run as root: run the server programs as postgres.
        let as_server = |program: &Path| -> Command {
            if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres"]).arg(&data))?;
        }
        run(as_server(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"]))?;
        run(as_server(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(data.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=500",
                data.display()
            ))
            .args(["-w", "start"]))?;
        self.postgres = Some((bin, data));
        self.postgres_url = format!("postgres://postgres@127.0.0.1:{port}");
        Ok(())
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.mariadb.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((bin, data)) = self.postgres.take() {
            let mut stop = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join("pg_ctl"));
                c
            } else {
                Command::new(bin.join("pg_ctl"))
            };
            let _ = run(stop.arg("-D").arg(&data).args(["-m", "immediate", "stop"]));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        eprintln!("==> databases stopped");
    }
}
