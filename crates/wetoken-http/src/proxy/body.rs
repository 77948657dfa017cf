//! The bodies of relayed answers: what was read ahead followed by the rest
//! as the caller takes it, and a body that holds the call's in-flight slot
//! until it has been sent (or the caller went away).

use axum::body::{Body, Bytes};
use axum::response::Response;

/// An answer's body: what was read ahead, then the rest from WeChat, pulled
/// only as fast as the caller takes it.
pub(super) struct Prefixed {
    pub(super) ahead: Option<Bytes>,
    pub(super) rest: reqwest::Body,
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, reqwest::Error>>> {
        if let Some(b) = self.ahead.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b))));
        }
        std::pin::Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// A response body that holds an in-flight slot until it is sent or dropped.
struct Held {
    body: Body,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// `resp` with its body holding `slot` until the caller has it all.
pub(super) fn holding(resp: Response, slot: tokio::sync::OwnedSemaphorePermit) -> Response {
    resp.map(|body| Body::new(Held { body, _slot: slot }))
}
