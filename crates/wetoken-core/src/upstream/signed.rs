//! Signed calls (SPEC §15): a Mini Program API call sealed and signed for
//! the URL actually called, over the one transport's failover.

use super::{Api, Attempt, Upstream, UpstreamError, switches};

/// A signed call's answer (SPEC §15): the URL called (what its signature
/// covers), the answer's headers (lower case) and body.
#[derive(Debug)]
pub struct Signed {
    pub urlpath: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Upstream {
    /// A signed call (SPEC §15) of `path` with the token: `seal` makes the
    /// headers and body for the URL actually called (the signature covers
    /// its host, so a failover seals again); the URL called, the answer's
    /// headers (lower case) and body, read at most `limit` bytes. Counted
    /// like every upstream call.
    pub async fn signed_post(
        &self,
        path: &str,
        access_token: &str,
        seal: impl Fn(&str) -> (Vec<(&'static str, String)>, Vec<u8>),
        limit: usize,
    ) -> Result<Signed, UpstreamError> {
        let started = std::time::Instant::now();
        let answer = self
            .t
            .failover(
                Api::Mp,
                false,
                |a: Attempt| {
                    let urlpath = format!("{}{path}", a.base);
                    let (headers, body) = seal(&urlpath);
                    let mut req = self
                        .t
                        .client()
                        .post(&urlpath)
                        .timeout(a.remaining)
                        .query(&[("access_token", access_token)])
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body);
                    for (k, v) in headers {
                        req = req.header(k, v);
                    }
                    self.signed_answer(urlpath, req, limit)
                },
                switches,
                |_| Err(UpstreamError::Timeout(self.t.config().timeout)),
            )
            .await;
        let (result, errcode) = match &answer {
            Ok(_) => ("ok", "0".to_owned()),
            Err(e) => ("error", e.errcode().to_string()),
        };
        metrics::counter!("wetoken_upstream_calls_total", "endpoint" => "signed", "result" => result, "errcode" => errcode)
            .increment(1);
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "signed call answered");
        answer
    }

    async fn signed_answer(
        &self,
        urlpath: String,
        req: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Signed, UpstreamError> {
        let mut resp = req.send().await.map_err(|e| self.t.error(e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.t.error(e))? {
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(UpstreamError::Malformed(format!("an answer over {limit} bytes")));
            }
        }
        Ok(Signed { urlpath, headers, body })
    }
}
