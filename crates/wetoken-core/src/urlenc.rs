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

/// A query string's parameters, percent-decoded, `+` kept (the last of
/// a repeated name wins).
pub fn query_params(query: &str) -> HashMap<String, String> {
    Query::parse(query)
        .pairs
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect()
}

/// A query string read once, in order: each parameter's name and value
/// decoded as [`percent_decode`] does, beside its text as sent. What is
/// checked is what is rewritten: `acc%65ss_token` is `access_token` for
/// both.
pub struct Query<'a> {
    pairs: Vec<Param<'a>>,
}

struct Param<'a> {
    raw: &'a str,
    raw_name: &'a str,
    name: String,
    value: String,
}

impl<'a> Query<'a> {
    pub fn parse(query: &'a str) -> Self {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|raw| {
                let (raw_name, v) = raw.split_once('=').unwrap_or((raw, ""));
                Param {
                    raw,
                    raw_name,
                    name: percent_decode(raw_name),
                    value: percent_decode(v),
                }
            })
            .collect();
        Query { pairs }
    }

    /// Every (decoded) value of the parameters named (decoded) `name`.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The query as sent, with every parameter whose decoded name is in
    /// `names` set to `value` (percent-encoded); the rest byte for byte.
    pub fn with_values(&self, names: &[&str], value: &str) -> String {
        let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        self.pairs
            .iter()
            .map(|p| {
                if names.contains(&p.name.as_str()) {
                    format!("{}={encoded}", p.raw_name)
                } else {
                    p.raw.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A URL as logs, errors and answers may show it (SPEC §10, webhooks):
/// its userinfo and query as `***` (a WeCom robot's URL carries its key in
/// `?key=`), the rest exactly as given; text that is not a URL, `***` whole.
pub fn hide_secrets(url: &str) -> String {
    if reqwest::Url::parse(url).is_err() {
        return "***".into();
    }
    // On the text as given (no normalising): userinfo, then query.
    let (before_fragment, _) = url.split_once('#').unwrap_or((url, ""));
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, _)) => (b, Some("***")),
        None => (before_fragment, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secrets() {
        for (url, shown) in [
            (
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx",
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?***",
            ),
            (
                "https://user:pass@hooks.example.com/x#frag",
                "https://***@hooks.example.com/x",
            ),
            ("http://h.example.com/path", "http://h.example.com/path"),
            ("http://H.example.com", "http://H.example.com"),
            ("https://a:b@h.example.com", "https://***@h.example.com"),
            ("https://h.example.com?k=1#f", "https://h.example.com?***"),
            ("not a url ?key=1", "***"),
        ] {
            assert_eq!(hide_secrets(url), shown, "{url}");
        }
    }

    #[test]
    fn plus_is_not_a_space() {
        assert_eq!(percent_decode("P9nA%2FqY%2B4R+x%3D%3D"), "P9nA/qY+4R+x==");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        let q = query_params("echostr=a%2Bb+c&nonce=1&empty=&flag");
        assert_eq!(q["echostr"], "a+b+c");
        assert_eq!((q["empty"].as_str(), q["flag"].as_str()), ("", ""));
    }

    #[test]
    fn what_is_checked_is_what_is_rewritten() {
        let q = Query::parse("acc%65ss_token=OLD&type=image&x=%2B1&access_token=OLD2&&flag");
        assert_eq!(q.values("access_token").collect::<Vec<_>>(), ["OLD", "OLD2"]);
        assert_eq!(
            q.with_values(&["access_token"], "NEW+/="),
            "acc%65ss_token=NEW%2B%2F%3D&type=image&x=%2B1&access_token=NEW%2B%2F%3D&flag"
        );
        assert_eq!(q.values("type").collect::<Vec<_>>(), ["image"]);
    }
}
