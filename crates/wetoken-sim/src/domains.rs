//! WeChat's other domains (contract-2 §D.1): `api2.weixin.qq.com` and the
//! regional `sh.`/`sz.`/`hk.api.weixin.qq.com` reach the same WeChat as
//! `api.weixin.qq.com` — a token from one is good at the others — but
//! each can be unreachable from a data centre on its own. [`Sim::domain`]
//! serves the same world on another address that a test can kill (its
//! port refuses connections and the connections it holds break) or make
//! hang (it accepts and never answers), and bring back.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::Sim;

/// How a domain behaves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Up,
    /// Accepts connections, never answers.
    Hangs,
    /// Refuses connections; those it held break.
    Down,
}

struct DomainState {
    reach: watch::Sender<Reach>,
    calls: AtomicU64,
}

/// Another domain of the simulated WeChat. Dropping it stops it.
pub struct Domain {
    addr: SocketAddr,
    state: Arc<DomainState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Domain {
    fn drop(&mut self) {
        self.state.reach.send_replace(Reach::Down);
        self.task.abort();
    }
}

impl Sim {
    /// Serves this simulator's WeChat on another loopback address, as
    /// another of its domains.
    pub async fn domain(&self) -> io::Result<Domain> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(DomainState {
            reach: watch::channel(Reach::Up).0,
            calls: AtomicU64::new(0),
        });
        let app = crate::routes::router(self.shared.clone())
            .layer(axum::middleware::from_fn_with_state(state.clone(), reached));
        let listener = DomainListener {
            addr,
            inner: Some(listener),
            reach: state.reach.subscribe(),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Domain { addr, state, task })
    }
}

impl Domain {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests this domain received (answered or not).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }

    pub fn set(&self, reach: Reach) {
        self.state.reach.send_replace(reach);
    }
}

/// Counts a request, and never answers it while the domain hangs.
async fn reached(State(state): State<Arc<DomainState>>, req: Request, next: Next) -> Response {
    state.calls.fetch_add(1, Ordering::Relaxed);
    let mut reach = state.reach.subscribe();
    if *reach.borrow_and_update() != Reach::Up {
        std::future::pending::<()>().await;
    }
    next.run(req).await
}

/// The domain's port: closed while it is down, bound again when it is not.
struct DomainListener {
    addr: SocketAddr,
    inner: Option<TcpListener>,
    reach: watch::Receiver<Reach>,
}

impl axum::serve::Listener for DomainListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            if *self.reach.borrow_and_update() == Reach::Down {
                self.inner = None;
                let _ = self.reach.changed().await;
                continue;
            }
            let listener = match &self.inner {
                Some(l) => l,
                None => match TcpListener::bind(self.addr).await {
                    Ok(l) => self.inner.insert(l),
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((io, peer)) = accepted {
                        return (Conn { io, reach: self.reach.clone() }, peer);
                    }
                }
                _ = self.reach.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// A connection that breaks once its domain is down.
struct Conn {
    io: TcpStream,
    reach: watch::Receiver<Reach>,
}

impl Conn {
    fn check(&self) -> io::Result<()> {
        match *self.reach.borrow() {
            Reach::Down => Err(io::Error::new(io::ErrorKind::ConnectionReset, "the domain is down")),
            _ => Ok(()),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    #[tokio::test]
    async fn a_domain_serves_the_same_world_and_can_hang_die_and_come_back() {
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        sim.add_app("wxd", "s");
        let d = sim.domain().await.unwrap();
        wetoken_core::upstream::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(500))
            .build()
            .unwrap();
        let token = |base: String| {
            let http = http.clone();
            async move {
                let r = http
                    .get(format!(
                        "{base}/cgi-bin/token?grant_type=client_credential&appid=wxd&secret=s"
                    ))
                    .send()
                    .await?;
                r.json::<serde_json::Value>().await
            }
        };
        let t = token(d.url()).await.unwrap();
        let t = t["access_token"].as_str().unwrap().to_owned();
        assert!(sim.is_valid(&t), "a token from one domain is good at the others");
        d.set(Reach::Hangs);
        assert!(token(d.url()).await.unwrap_err().is_timeout());
        d.set(Reach::Down);
        let e = token(d.url()).await.unwrap_err();
        assert!(e.is_connect() || e.is_request(), "{e:?}");
        d.set(Reach::Up);
        // Bound again (the listener takes a moment).
        let mut ok = None;
        for _ in 0..200 {
            if let Ok(v) = token(d.url()).await {
                ok = Some(v);
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(ok.unwrap()["access_token"].is_string());
        // The first call, the one that hung, and the one after it came back.
        assert_eq!(d.calls(), 3);
    }
}
