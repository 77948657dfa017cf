//! `wetoken serve --sandbox` and the curl lines it prints, run as printed.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_prints_curl_lines_that_work() {
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--sandbox"])
        .env_clear()
        .env("WETOKEN_LISTEN", "127.0.0.1:0")
        .env("WETOKEN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut curls = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(c) = line.trim().strip_prefix("curl ") {
                curls.push(format!("curl {c}"));
            } else if !curls.is_empty() {
                break;
            }
        }
    })
    .await
    .expect("sandbox printed its curl lines");
    assert_eq!(curls.len(), 9, "{curls:?}");
    let have_curl = std::process::Command::new("curl").arg("--version").output().is_ok();
    for line in &curls {
        let body = if have_curl {
            let out = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{line} -w '\\n%{{http_code}}'"))
                .output()
                .await
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        } else {
            run_like_curl(line).await
        };
        let (json, code) = body.rsplit_once('\n').unwrap();
        assert_eq!(code, "200", "{line}: {json}");
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}: {json}"));
        assert!(v.get("error").is_none(), "{line}: {v}");
    }
    // The console in one click: the printed link signs in, once.
    let link = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("/console/signin?link=") {
                return line.trim().to_owned();
            }
        }
        panic!("no console link printed");
    })
    .await
    .expect("sandbox printed its console link");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = browser.get(&link).send().await.unwrap();
    assert_eq!(signed_in.status(), reqwest::StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("wetoken_session=wts_"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let base = link.split("/console/").next().unwrap();
    let overview = browser
        .get(format!("{base}/console/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), reqwest::StatusCode::OK);
    assert!(
        overview.text().await.unwrap().contains("<h1>Overview</h1>"),
        "signed in"
    );
    let again = browser.get(&link).send().await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::FORBIDDEN, "the link works once");

    // SIGTERM: a graceful stop removes the sandbox's data (there before).
    let pid = child.id().unwrap().to_string();
    let data = std::env::temp_dir().join(format!("wetoken-sandbox-{pid}"));
    assert!(
        data.join("wetoken.db").exists(),
        "the sandbox keeps its data in {}",
        data.display()
    );
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful stop: {status}");
    assert!(!data.exists(), "sandbox data removed");
}

/// Without curl on the machine: the same request, parsed from the line.
async fn run_like_curl(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let url = words
        .iter()
        .find(|w| w.trim_matches('\'').starts_with("http://"))
        .map(|w| w.trim_matches('\''))
        .unwrap();
    let key = line.split("Bearer ").nth(1).map(|r| r.split('\'').next().unwrap());
    let body = line.split("-d '").nth(1).map(|r| r.trim_end_matches('\'').to_owned());
    let mut req = if line.contains("-X POST") {
        client().post(url)
    } else {
        client().get(url)
    };
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    format!("{}\n{code}", resp.text().await.unwrap())
}
