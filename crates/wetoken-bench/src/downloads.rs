//! (f, part 3) Slow readers of large proxied answers (SPEC §6): 50 clients
//! ask for a 60 MB answer through `/proxy/…/cgi-bin/media/get` and stop
//! reading after its headers, against an instance with
//! `WETOKEN_PROXY_MAX_INFLIGHT=32`: how many are streamed and how many
//! refused (the cap holds, counted until the answer is sent), wetoken's
//! resident memory meanwhile (answers are read at most 64 KiB ahead), and
//! then every streamed answer read to its end.

use std::time::{Duration, Instant};

use super::token_free::Proxied;
use super::{Args, usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SIZE: usize = 60 << 20;
const CLIENTS: usize = 50;
const CAP: usize = 32;

pub async fn slow_downloads(args: &Args) {
    const APPID: &str = "wxbenchdl";
    let cap = CAP.to_string();
    let extra = [
        ("WETOKEN_REQUEST_TIMEOUT_SECS", "120"),
        ("WETOKEN_PROXY_MAX_INFLIGHT", cap.as_str()),
    ];
    let p = Proxied::start(args, APPID, &extra).await;
    let (url, key) = (&p.url, &p.key);
    let pid = p.child.id().unwrap();
    let addr = url.trim_start_matches("http://").to_owned();
    let path = format!("/proxy/mp/{APPID}/cgi-bin/media/get?media_id=big-{SIZE}");
    let (rss0, _, _) = usage(pid);
    let mut streaming = Vec::new();
    let mut refused = 0;
    for _ in 0..CLIENTS {
        let (sock, head) = headers_only(&addr, &path, key).await;
        if head.contains("text/plain") {
            streaming.push(sock);
        } else {
            assert!(head.contains("\"errcode\":-1"), "{head}");
            refused += 1;
        }
    }
    // The answers wait on their readers for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (stalled, _, _) = usage(pid);
    let started = Instant::now();
    let n = streaming.len();
    let totals = futures::future::join_all(streaming.into_iter().map(|mut s| async move {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        while let Ok(k) = s.read(&mut buf).await {
            if k == 0 {
                break;
            }
            total += k;
        }
        total
    }))
    .await;
    let whole = totals.iter().filter(|t| **t >= SIZE).count();
    let (_, hwm, _) = usage(pid);
    println!(
        "    {CLIENTS} slow readers of a 60 MB answer, in-flight cap {CAP}: {n} streamed, {refused} refused at once; \
         resident memory {:.1} MiB before, {:.1} MiB with {n} answers waiting on their readers, \
         {:.1} MiB high-water mark; then {whole}/{n} read whole in {:.1} s\n",
        rss0 as f64 / 1024.0,
        stalled as f64 / 1024.0,
        hwm as f64 / 1024.0,
        started.elapsed().as_secs_f64(),
    );
    drop(p);
}

/// A GET whose answer is read up to the end of its headers (and, for a
/// short answer, its body), then left unread.
async fn headers_only(addr: &str, path: &str, key: &str) -> (TcpStream, String) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") || (head.len() < 200 && !head.ends_with(b"}")) {
        let n = sock.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    (sock, String::from_utf8_lossy(&head).into_owned())
}
