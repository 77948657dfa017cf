//! The Debian package (SPEC §12), checked as an operator uses it: `cargo
//! deb -p wetoken` (cargo-deb installed when missing), `dpkg -i`, the
//! installed files (a configuration with every setting commented out, a
//! unit that `systemd-analyze verify` accepts), the installed binary's
//! `install-schema` and `serve` on a temporary database with `/readyz`
//! answering 200 and SIGTERM ending it with status 0, then `dpkg -r`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::databases::{apt_install, is_root, run};

const CARGO_DEB: &str = "3.8.0";

/// What the package check did: installed and served the package, or
/// skipped it (and why), so that the summary never claims what did not run.
pub enum Checked {
    Served,
    Skipped(&'static str),
}

pub fn check(cargo: &str) -> Result<Checked, String> {
    if !is_root() {
        eprintln!("==> package check SKIPPED: dpkg -i needs root");
        return Ok(Checked::Skipped("dpkg -i needs root"));
    }
    if !Command::new(cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("==> cargo install cargo-deb {CARGO_DEB}");
        run(Command::new(cargo).args(["install", "cargo-deb", "--locked", "--version", CARGO_DEB]))?;
    }
    eprintln!("==> cargo deb -p wetoken");
    let out = run(Command::new(cargo).args(["deb", "-p", "wetoken"]))?;
    let deb = out
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .ok_or_else(|| format!("cargo deb named no package: {out}"))?
        .trim()
        .to_owned();
    // The package depends on adduser (its postinst makes the user).
    if Command::new("sh")
        .args(["-c", "command -v adduser"])
        .output()
        .is_ok_and(|o| !o.status.success())
    {
        apt_install(&["adduser"])?;
    }
    eprintln!("==> dpkg -i {deb}");
    run(Command::new("dpkg")
        .args(["-i", &deb])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let result = installed();
    let removed = run(Command::new("dpkg").args(["-r", "wetoken"]));
    result?;
    removed?;
    eprintln!("==> package installed, served, stopped and removed");
    Ok(Checked::Served)
}

fn installed() -> Result<(), String> {
    for f in [
        "/usr/bin/wetoken",
        "/etc/wetoken/wetoken.toml",
        "/usr/lib/systemd/system/wetoken.service",
    ] {
        if !Path::new(f).exists() {
            return Err(format!("the package did not install {f}"));
        }
    }
    let toml = std::fs::read_to_string("/etc/wetoken/wetoken.toml").map_err(|e| e.to_string())?;
    if let Some(l) = toml
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        return Err(format!("/etc/wetoken/wetoken.toml sets something: {l:?}"));
    }
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        run(Command::new("systemd-analyze").args(["verify", "/usr/lib/systemd/system/wetoken.service"]))?;
    }
    let dir = std::env::temp_dir().join(format!("wetoken-package-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = serve(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The installed binary: schema, then `serve` until `/readyz` answers.
fn serve(dir: &Path) -> Result<(), String> {
    let url = format!("sqlite://{}", dir.join("wetoken.db").display());
    run(Command::new("/usr/bin/wetoken").args(["install-schema", "--database-url", &url]))?;
    let mut child = Command::new("/usr/bin/wetoken")
        .args(["serve", "--config", "/etc/wetoken/wetoken.toml"])
        .env_clear()
        .env("WETOKEN_LISTEN", "127.0.0.1:0")
        .env("WETOKEN_DATABASE_URL", &url)
        .env("WETOKEN_DATA_DIR", dir)
        .env("WETOKEN_AUTO_MIGRATE", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the installed wetoken: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = lines
        .find_map(|l| l.ok()?.strip_prefix("wetoken listening on http://").map(str::to_owned))
        .ok_or("the installed wetoken exited before listening")?;
    let status = readyz(&addr);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = child.wait().map_err(|e| e.to_string())?;
    let status = status?;
    if !status.contains(" 200 ") {
        return Err(format!("GET /readyz of the installed wetoken: {status}"));
    }
    if !exit.success() {
        return Err(format!("the installed wetoken stopped with {exit} on SIGTERM"));
    }
    Ok(())
}

/// The status line of `GET /readyz`.
fn readyz(addr: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}
