//! (h) users' messages on PostgreSQL: pushes at rising rates up to 1 000 a
//! second, sealed as WeChat seals them (safe mode), spread over three
//! instances, each answered with the reply of a reply webhook that takes
//! 5 ms. wetoken's
//! own time is a push's time to its sealed reply against the same reply
//! webhook called straight with the plaintext message, the two runs at
//! the same rate in one process; then every event must reach a second
//! webhook exactly once, and the reply webhook must have been called once
//! per message.

use std::collections::HashMap;
use std::sync::Mutex;

use wetoken_core::msgcrypt::{MsgCrypt, sha1_sorted};

use super::signin::open_loop;
use super::*;

const APPID: &str = "wxbenchmessages";
const TOKEN: &str = "benchtoken";
const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const REPLY: &str = "<xml><ToUserName><![CDATA[oBench]]></ToUserName><FromUserName><![CDATA[gh_bench]]></FromUserName>\
    <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到]]></Content></xml>";

/// Requests a test server got, by key (a MsgId, an event id).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, u32>>>);

impl Seen {
    fn add(&self, key: String) {
        *self.0.lock().unwrap().entry(key).or_default() += 1;
    }

    /// (distinct keys, keys seen more than once).
    fn tally(&self) -> (usize, usize) {
        let m = self.0.lock().unwrap();
        (m.len(), m.values().filter(|n| **n > 1).count())
    }
}

/// A reply webhook answering every message with [`REPLY`] after `delay`,
/// counting MsgIds; its URL.
async fn reply_webhook(seen: Seen, delay: Duration) -> String {
    let app = axum::Router::new().route(
        "/reply",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                let id = body
                    .split("<MsgId>")
                    .nth(1)
                    .and_then(|r| r.split('<').next())
                    .unwrap_or("?")
                    .to_owned();
                seen.add(id);
                tokio::time::sleep(delay).await;
                REPLY
            }
        }),
    );
    serve(app, "/reply").await
}

/// A `json` webhook counting deliveries by event id; its URL.
async fn listener(seen: Seen) -> String {
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                seen.add(v["id"].as_str().unwrap_or("?").to_owned());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    serve(app, "/events").await
}

async fn serve(app: axum::Router, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Message `i` as WeChat writes it.
fn message(i: usize) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[oBench{}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[第 {i} 条]]></Content>\
         <MsgId>{}</MsgId></xml>",
        i % 1000,
        now_secs(),
        9_000_000_000u64 + i as u64
    )
}

/// The PostgreSQL server's processes (its backends do the work).
fn postgres_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// (h) users' messages: see the module.
pub(crate) async fn messages(args: &Args, pg: &str) {
    let (rates, secs): (&[u32], u64) = if args.quick {
        (&[250, 500, 1_000], 3)
    } else {
        (&[100, 250, 500, 750, 1_000], 10)
    };
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app(APPID, "s");
    let dir = tempfile::tempdir().unwrap();
    let env = [("WETOKEN_DATABASE_URL", pg)];
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(wetoken(args, dir.path(), &sim.url(), &env).await);
    }
    let urls: Arc<Vec<String>> = Arc::new(instances.iter().map(|(_, u)| u.clone()).collect());
    let c = client();
    post(
        &c,
        &format!("{}/v1/accounts", urls[0]),
        ADMIN,
        json!({"kind": "mp", "appid": APPID, "secret": "s", "token": TOKEN, "aes_key": AES}),
    )
    .await;
    let (replies, events) = (Seen::default(), Seen::default());
    let reply_url = reply_webhook(replies.clone(), Duration::from_millis(5)).await;
    let listener_url = listener(events.clone()).await;
    let suffix = rand::random::<u32>();
    for (name, url, format, reply) in [
        ("bench-reply", &reply_url, "wechat_plain", true),
        ("bench-listener", &listener_url, "json", false),
    ] {
        post(
            &c,
            &format!("{}/v1/webhooks", urls[0]),
            ADMIN,
            json!({"name": format!("{name}-{suffix}"), "url": url, "events": ["message.*"],
                   "accounts": [format!("mp:{APPID}")], "format": format, "reply": reply}),
        )
        .await;
    }
    let crypt = Arc::new(MsgCrypt::new(TOKEN, AES, APPID).unwrap());

    // Straight: the plaintext message to the reply webhook.
    let direct = |i: usize| {
        let (c, url) = (c.clone(), reply_url.clone());
        async move {
            let resp = c.post(url).body(message(100_000_000 + i)).send().await;
            match resp {
                Ok(r) => r.text().await.is_ok_and(|t| t == REPLY),
                Err(_) => false,
            }
        }
    };
    // Through wetoken: sealed and signed as WeChat does, to the instances
    // in turn; the answer must be the sealed reply.
    let pushed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let through = |i: usize| {
        let (c, urls, crypt, pushed) = (c.clone(), urls.clone(), crypt.clone(), pushed.clone());
        async move {
            let (ts, nonce) = (now_secs().to_string(), rand::random::<u32>().to_string());
            let (msg_signature, body) = crypt.seal_push("ToUserName", &message(i), &ts, &nonce);
            let url = format!("{}/callback/mp/{APPID}", urls[i % urls.len()]);
            pushed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let resp = c
                .post(url)
                .query(&[
                    ("signature", sha1_sorted(&[TOKEN, &ts, &nonce])),
                    ("timestamp", ts),
                    ("nonce", nonce),
                    ("openid", "oBench".into()),
                    ("encrypt_type", "aes".into()),
                    ("msg_signature", msg_signature),
                ])
                .header("content-type", "text/xml")
                .body(body)
                .send()
                .await;
            match resp {
                Ok(r) => r.status().is_success() && r.text().await.is_ok_and(|t| t.contains("<Encrypt>")),
                Err(_) => false,
            }
        }
    };
    open_loop(250, 2, |i| direct(500_000 + i)).await;
    open_loop(250, 2, |i| through(10_000_000 + i)).await;
    println!(
        "(h) users' messages on PostgreSQL: pushes over 3 instances for {secs} s a rate, open loop, a reply webhook answering in 5 ms"
    );
    println!(
        "    rate/s | straight p50 / p99 ms | through wetoken p50 / p99 ms | wetoken's own p50 / p99 ms | failed | CPU ms a push: wetoken, PostgreSQL"
    );
    let pids: Vec<u32> = instances.iter().filter_map(|(c, _)| c.id()).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| usage(*p).2).sum::<f64>();
    let mut offset = 0;
    for &rate in rates {
        let n = rate as usize * secs as usize;
        let (mut d, dfail) = open_loop(rate, secs, |i| direct(offset + i)).await;
        let (w0, pg0) = (cpu(&pids), cpu(&postgres_pids()));
        let (mut w, wfail) = open_loop(rate, secs, |i| through(offset + i)).await;
        let (w1, pg1) = (cpu(&pids), cpu(&postgres_pids()));
        offset += n;
        let (d50, d99) = (quantile(&mut d, 0.5), quantile(&mut d, 0.99));
        let (w50, w99) = (quantile(&mut w, 0.5), quantile(&mut w, 0.99));
        println!(
            "    {rate:>6} | {d50:>8.2} / {d99:>8.2} | {w50:>10.2} / {w99:>10.2} | {:>8.2} / {:>8.2} | {dfail} / {wfail} | {:.2}, {:.2}",
            w50 - d50,
            w99 - d99,
            (w1 - w0) * 1000.0 / n as f64,
            (pg1 - pg0) * 1000.0 / n as f64
        );
    }

    // Every event delivered once to the other webhook; one call each.
    let total = pushed.load(std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    while events.tally().0 < total && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (delivered, twice) = events.tally();
    let through_calls = replies
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| {
            id.parse::<u64>()
                .is_ok_and(|n| !(9_100_000_000..9_110_000_000).contains(&n))
        })
        .count();
    let (_, replied_twice) = replies.tally();
    println!(
        "    {total} pushes: {delivered} events delivered to the other webhook ({twice} more than once) within {:.1} s; \
         the reply webhook called for {through_calls} of them ({replied_twice} messages more than once)",
        t.elapsed().as_secs_f64()
    );
    println!();
    drop(instances);
}
