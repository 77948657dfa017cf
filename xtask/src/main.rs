//! Project automation: `cargo xtask <task>`.
//!
//! - `ci`: what CI runs — format check, clippy with `-D warnings` on every
//!   feature, then every test on every backend: MariaDB and PostgreSQL are
//!   installed from Debian packages if missing, started on loopback in a
//!   temporary directory, and stopped at the end (see [`Databases`]); a
//!   virtualenv with wechatpy from PyPI runs the SDK drop-in test; Chromium
//!   and chromium-driver (Debian packages) run the console's browser tests,
//!   which leave screenshots in target/console-screenshots/; then the
//!   Debian package is built, installed, served and removed (`package.rs`).
//! - `bench [--quick] [--only a|b|c|d|e|f|g]`: build release and run the benchmarks
//!   (crates/wetoken-bench); figures go to docs/PERFORMANCE.md by hand.
//! - `install-schema --database-url URL [--print]`: install (or print) the
//!   schema with the backend the URL names.

mod databases;
mod package;

use std::process::{Command, ExitCode};

use databases::Databases;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("install-schema") => install_schema(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | bench [--quick] [--only a|b|c|d|e|f|g] | install-schema --database-url URL [--print]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str]) -> Result<(), String> {
    cargo_with(args, &[])
}

fn cargo_with(args: &[&str], env: &[(String, String)]) -> Result<(), String> {
    eprintln!("==> cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .envs(env.iter().cloned())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

fn ci() -> Result<(), String> {
    let started = std::time::Instant::now();
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])?;
    // The Oracle-only build has its own cfg paths: keep it clean too.
    cargo(&[
        "clippy",
        "-p",
        "wetoken",
        "--no-default-features",
        "--features",
        "oracle",
        "--",
        "-D",
        "warnings",
    ])?;
    // Build first, so that the databases are not kept waiting on a compile.
    cargo(&["test", "--workspace", "--all-features", "--no-run"])?;
    let python = sdk_python()?;
    browser()?;
    let dbs = Databases::start()?;
    let mut env = dbs.env();
    env.push(("WETOKEN_TEST_PYTHON".into(), python));
    // No Oracle server can run here: its conformance test is skipped by
    // name (reported as not run), never passed without running.
    let oracle = std::env::var("WETOKEN_TEST_ORACLE_URL").is_ok();
    // Six tests at once: the API tests mostly wait (timeouts, slow clients,
    // retries, browsers), so on two cores six halve the suite's time
    // (measured: 99 s → 50 s for the API tests without the databases).
    let mut args = vec![
        "test",
        "--workspace",
        "--all-features",
        "--",
        "--include-ignored",
        "--test-threads=6",
    ];
    if !oracle {
        args.extend(["--skip", "oracle_passes_the_conformance_suite"]);
    }
    let result = cargo_with(&args, &env);
    drop(dbs);
    result?;
    let package = match package::check(env!("CARGO"))? {
        package::Checked::Served => "the Debian package installed and served".to_owned(),
        package::Checked::Skipped(why) => format!("the Debian package NOT checked ({why})"),
    };
    let oracle = if oracle {
        "Oracle: the conformance suite on WETOKEN_TEST_ORACLE_URL"
    } else {
        "Oracle: unit tests only, its conformance suite skipped (no server here)"
    };
    eprintln!(
        "==> ci passed in {:.0?} (SQLite, MariaDB and PostgreSQL; {oracle}; {package})",
        started.elapsed()
    );
    Ok(())
}

/// Headless Chromium and its WebDriver for the console's browser tests,
/// from Debian's packages (with a CJK font, so that screenshots of the
/// Chinese console show characters), and tinyproxy.
fn browser() -> Result<(), String> {
    let has = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let font = std::path::Path::new("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc").exists();
    if !(has("chromium") && has("chromedriver") && font) {
        databases::apt_install(&["chromium", "chromium-driver", "fonts-wqy-microhei"])?;
    }
    // The egress proxy the upstream-proxy tests send WeChat's calls through.
    if !Command::new("tinyproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        databases::apt_install(&["tinyproxy"])?;
    }
    Ok(())
}

/// A Python with wechatpy (a real SDK from PyPI) for the drop-in test: a
/// virtualenv under target/, made once and reused while it imports.
fn sdk_python() -> Result<String, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), std::path::PathBuf::from);
    let venv = target.join("sdk-venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import wechatpy.work"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        eprintln!("==> python3 -m venv {} && pip install wechatpy", venv.display());
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "wechatpy==2.0.0a26",
                    "cryptography",
                ])
                .status()
                .is_ok_and(|s| s.success());
        if !ok || !ready() {
            return Err("cannot make a Python virtualenv with wechatpy (python3 and PyPI are needed)".into());
        }
    }
    Ok(python.display().to_string())
}

/// The cargo feature of the backend a URL names.
fn feature_of(url: &str) -> Result<&'static str, String> {
    match url.split(':').next().unwrap_or_default() {
        "sqlite" => Ok("sqlite"),
        "mysql" | "mariadb" => Ok("mysql"),
        "postgres" | "postgresql" => Ok("postgres"),
        "oracle" => Ok("oracle"),
        other => Err(format!("unknown database URL scheme {other:?}")),
    }
}

fn install_schema(args: &[String]) -> Result<(), String> {
    let mut url = None;
    let mut print = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--database-url" => url = it.next().cloned(),
            "--print" => print = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let url = url.ok_or("--database-url URL is required")?;
    let feature = feature_of(&url)?;
    let mut cmd = vec![
        "run",
        "--quiet",
        "-p",
        "wetoken",
        "--no-default-features",
        "--features",
        feature,
        "--",
    ];
    cmd.extend(["install-schema", "--database-url", &url]);
    if print {
        cmd.push("--print");
    }
    cargo(&cmd)
}

fn bench(args: &[String]) -> Result<(), String> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "wetoken",
        "--features",
        "postgres",
        "-p",
        "wetoken-bench",
    ])?;
    // (e) runs on PostgreSQL too, (g) and (h) only there: a server of its own for the run.
    let wants_pg = args
        .windows(2)
        .all(|w| w[0] != "--only" || ["e", "g", "h"].contains(&w[1].as_str()));
    let dbs = if wants_pg { Some(Databases::start()?) } else { None };
    let pg = dbs
        .as_ref()
        .and_then(|d| d.env().into_iter().find(|(k, _)| k == "WETOKEN_TEST_POSTGRES_URL"))
        .map(|(_, url)| format!("{url}/postgres"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), std::path::PathBuf::from);
    let wetoken = target.join("release/wetoken");
    let mut cmd = Command::new(target.join("release/wetoken-bench"));
    cmd.arg("--wetoken").arg(&wetoken).args(args);
    if let Some(url) = pg {
        cmd.env("WETOKEN_BENCH_POSTGRES_URL", url);
    }
    let status = cmd.status().map_err(|e| format!("cannot run the benchmarks: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("benchmarks failed".into())
    }
}
