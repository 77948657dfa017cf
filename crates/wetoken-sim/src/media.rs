//! WeChat's APIs that move data rather than JSON: uploads hashed as they
//! stream in, downloads made as they are read, a picture. Each checks the
//! token like any business API and answers WeChat's JSON error otherwise.

use super::*;
use crate::routes::{answer, apply, query_api};

/// `GET /cgi-bin/media/get?access_token&media_id`: a temporary medium. A
/// `media_id` of `big-{bytes}` is that many bytes of text, produced as they
/// are read (WeChat answers with a text type at times: a relay must not
/// hold such an answer whole); any other id is 40007.
pub(crate) async fn media_get(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let _in_flight = match binary_api(&s, MEDIA_GET, &q).await {
        Ok(guard) => guard,
        Err(refused) => return refused,
    };
    let Some(size) = q
        .get("media_id")
        .and_then(|m| m.strip_prefix("big-"))
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n <= 1 << 30)
    else {
        return answer(json!({"errcode": 40007, "errmsg": "invalid media_id"}));
    };
    let body = Repeat {
        left: size,
        chunk: axum::body::Bytes::from(vec![b'w'; 64 << 10]),
    };
    ([("content-type", "text/plain")], axum::body::Body::new(body)).into_response()
}

/// `left` bytes of `chunk`s, made as they are asked for.
struct Repeat {
    left: u64,
    chunk: axum::body::Bytes,
}

impl axum::body::HttpBody for Repeat {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<axum::body::Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        let data = self.chunk.slice(..n as usize);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }
}

/// `POST /cgi-bin/media/upload?access_token&type`: the media_id is the
/// SHA-1 of the body received, so a test can tell it arrived unchanged.
/// The body is hashed as it streams in (WeCom takes files of 20 MB): the
/// simulator holds none of it.
pub(crate) async fn media_upload(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> Response {
    use http_body_util::BodyExt;
    use sha1::Digest;
    let mut hash = sha1::Sha1::new();
    let mut len = 0u64;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return (StatusCode::BAD_REQUEST, "the body did not arrive whole").into_response();
        };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            hash.update(&data);
        }
    }
    let media_id = hex::encode(hash.finalize());
    query_api(&s, MEDIA_UPLOAD, &q, |w, p, now| {
        match w.business(p.get("access_token"), now) {
            Ok(()) => json!({
                "type": p.get("type").unwrap_or("image"),
                "media_id": media_id,
                "created_at": now / 1000,
                "size": len,
            }),
            Err(e) => e,
        }
    })
    .await
}

/// `POST /wxa/getwxacode?access_token`: a Mini Program code as an image
/// (binary, `image/jpeg`) on success; WeChat's JSON error otherwise.
pub(crate) async fn getwxacode(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let _in_flight = match binary_api(&s, GETWXACODE, &q).await {
        Ok(guard) => guard,
        Err(refused) => return refused,
    };
    // A stand-in picture: a JPEG header, then the request's SHA-1
    // repeated, so a test can check the bytes came back unchanged.
    let mut img = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let digest = sha1_hex(&body);
    for _ in 0..2048 {
        img.extend_from_slice(digest.as_bytes());
    }
    img.extend_from_slice(&[0xFF, 0xD9]);
    ([(axum::http::header::CONTENT_TYPE, "image/jpeg")], img).into_response()
}

/// The start of an API that answers data, not JSON: count the call, apply
/// a fault, check the token (WeChat's JSON error if it is not valid). The
/// guard counts the call in flight while it is held.
async fn binary_api(
    s: &Arc<Shared>,
    name: &'static str,
    q: &HashMap<String, String>,
) -> Result<crate::InFlight, Response> {
    let (fault, in_flight) = s.enter(name);
    if let Some(r) = apply(fault).await {
        return Err(r);
    }
    let checked = s
        .world
        .lock()
        .unwrap()
        .business(q.get("access_token").map(String::as_str), s.now());
    checked.map(|()| in_flight).map_err(answer)
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(bytes))
}
