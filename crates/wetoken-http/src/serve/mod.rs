//! Serving the router on a socket with the limits SPEC §4 sets, so that
//! slow or idle clients cannot hold the server: a connection that starts no
//! request for 10 s is closed ([`idle`]: a client dribbling its headers,
//! idle keep-alive connections included), a
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
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

mod idle;
mod stalls;

pub use stalls::Stalls;

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
    // No timer for hyper: its header-read timeout armed one on every
    // keep-alive request; `idle` guards the connection instead.
    builder.http1().header_read_timeout(None);
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
        let activity = Arc::new(idle::Activity::default());
        let requests = activity.clone();
        // Every request knows its connection's peer (for refusals' logs).
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let busy = requests.begin();
            if let Some(p) = peer {
                req.extensions_mut().insert(p);
            }
            let mut r = router.clone();
            async move {
                let answer = tower::Service::call(&mut r, req).await?;
                Ok::<_, std::convert::Infallible>(busy.until_written(answer))
            }
        });
        let io = TokioIo::new(Stalls::new(stream, limits.write_stall));
        let conn = builder.serve_connection_with_upgrades(io, service);
        let conn = graceful.watch(conn.into_owned());
        let task = tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
        idle::watch(task.abort_handle(), activity);
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
