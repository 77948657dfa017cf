//! A real webhook receiver for tests: an axum server on a loopback port
//! that records every request and answers as told (a status, a body, or
//! never).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// What the receiver does with a request.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// Answers with the status after a delay.
    After(Duration, u16),
    /// Holds the request open and never answers.
    Hang,
    /// 200 with this body after a delay (a reply webhook's reply).
    Reply(Duration, &'static str),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Answers for the next requests, then `otherwise`.
    script: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

async fn handle(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let answer = {
        let mut i = r.inner.lock().unwrap();
        i.received.push(Received {
            query: uri.query().unwrap_or_default().to_owned(),
            headers,
            body,
            at: Instant::now(),
        });
        i.script.pop_front().or(i.otherwise).unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Answer::After(d, s) => {
            tokio::time::sleep(d).await;
            StatusCode::from_u16(s).unwrap().into_response()
        }
        Answer::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Answer::Reply(d, body) => {
            tokio::time::sleep(d).await;
            body.into_response()
        }
    }
}

impl Receiver {
    /// A receiver answering 200 to everything, at `{url}/hook`.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let r = Receiver {
            inner: Arc::default(),
            url,
        };
        let app = Router::new().route("/hook", post(handle)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, answers: &[Answer]) {
        self.inner.lock().unwrap().script.extend(answers.iter().copied());
    }

    /// Every request after the script gets this answer.
    pub fn otherwise(&self, a: Answer) {
        self.inner.lock().unwrap().otherwise = Some(a);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }

    /// Waits until at least `n` requests came, for at most `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let end = Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
