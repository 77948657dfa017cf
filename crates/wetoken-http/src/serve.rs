//! Serving the router on a socket with the limits SPEC §4 sets, so that
//! slow or idle clients cannot hold the server: hyper's header-read timeout
//! (request headers within 10 s, idle keep-alive connections included), a
//! deadline on each request with a body or for the proxy
//! (`WETOKEN_REQUEST_TIMEOUT_SECS`, 408 after it: the front layer,
//! `ops::Front`) and at most
//! `WETOKEN_MAX_CONNECTIONS` connections served at once (the next is
//! accepted when one closes; the kernel's backlog holds the rest), and a
//! client that stops reading its answer for `WETOKEN_REQUEST_TIMEOUT_SECS`
//! is cut off ([`Stalls`]: a proxied download cannot hold its slot, and
//! what was read ahead for it, for ever).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Request headers must arrive within this (SPEC §4).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The address a request's connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::IpAddr);

/// Connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `WETOKEN_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// How long a write to a client may wait for it to read
    /// (`WETOKEN_REQUEST_TIMEOUT_SECS`).
    pub write_stall: Duration,
}

/// A connection whose writes fail once the client has not read for
/// `limit`: a write that cannot proceed arms a timer, any progress disarms
/// it, and the timer firing wakes the connection, whose next write fails
/// with `TimedOut` (hyper then closes it).
pub struct Stalls<T> {
    io: T,
    limit: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Stalls<T> {
    pub fn new(io: T, limit: Duration) -> Self {
        Stalls {
            io,
            limit,
            stalled: None,
        }
    }

    /// After a write attempt: `Pending` arms (or checks) the timer.
    fn watch<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        r: std::task::Poll<std::io::Result<R>>,
    ) -> std::task::Poll<std::io::Result<R>> {
        use std::task::Poll;
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stalls<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Stalls<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// open connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a
                    // moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok().map(|a| Peer(a.ip()));
        let router = router.clone();
        // Every request knows its connection's peer (for refusals' logs).
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(p) = peer {
                req.extensions_mut().insert(p);
            }
            let mut r = router.clone();
            async move { tower::Service::call(&mut r, req).await }
        });
        let io = TokioIo::new(Stalls::new(stream, limits.write_stall));
        let conn = builder.serve_connection_with_upgrades(io, service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
