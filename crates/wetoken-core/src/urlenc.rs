//! Percent-decoding as WeChat's callbacks need it: `%XX` becomes its byte,
//! and `+` stays `+`. (Form decoding turns `+` into a space, which breaks a
//! base64 `echostr` — WeCom's URL verification — and its signature.)

use std::collections::HashMap;

/// Decodes `%XX` escapes; anything else, `+` included, is kept as is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string's parameters, percent-decoded, `+` kept.
pub fn query_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_is_not_a_space() {
        assert_eq!(percent_decode("P9nA%2FqY%2B4R+x%3D%3D"), "P9nA/qY+4R+x==");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        let q = query_params("echostr=a%2Bb+c&nonce=1&empty=&flag");
        assert_eq!(q["echostr"], "a+b+c");
        assert_eq!((q["empty"].as_str(), q["flag"].as_str()), ("", ""));
    }
}
