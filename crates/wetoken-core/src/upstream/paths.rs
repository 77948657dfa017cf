//! WeChat API paths wetoken must know by name: the ones that hand out or
//! manage credentials (token-free calls never reach them, SPEC §6), and
//! the fixed families a path is counted under in metrics.

/// Paths that hand out or manage credentials, quota or WeChat's record of
/// calls: a token-free call to any of them is refused (they have native
/// routes with their own rules, SPEC §3). An entry ending in `*` covers
/// every path it starts (`/cgi-bin/clear_quota*` is also `…/v2`).
pub const CREDENTIAL_PATHS: &[&str] = &[
    "/cgi-bin/token",
    "/cgi-bin/stable_token",
    "/cgi-bin/ticket/getticket",
    "/cgi-bin/get_jsapi_ticket",
    "/cgi-bin/ticket/get",
    "/cgi-bin/gettoken",
    "/cgi-bin/component/api_component_token",
    "/cgi-bin/component/api_authorizer_token",
    "/cgi-bin/component/api_create_preauthcode",
    "/cgi-bin/component/api_query_auth",
    "/cgi-bin/component/clear_quota*",
    "/cgi-bin/service/get_suite_token",
    "/cgi-bin/service/get_provider_token",
    "/cgi-bin/service/get_corp_token",
    "/cgi-bin/service/get_pre_auth_code",
    "/cgi-bin/service/get_permanent_code",
    "/cgi-bin/service/v2/get_permanent_code",
    "/cgi-bin/clear_quota*",
    "/cgi-bin/openapi/rid/get",
    "/cgi-bin/openapi/quota/*",
];

/// Whether a WeChat API path (as sent, without its query) hands out or
/// manages credentials. Compared without letter case and trailing `/`, so
/// that no other spelling of a listed path gets through.
pub fn manages_credentials(path: &str) -> bool {
    let p = path.trim_end_matches('/').to_ascii_lowercase();
    CREDENTIAL_PATHS.iter().any(|listed| match listed.strip_suffix('*') {
        Some(prefix) => p.starts_with(prefix) || p == prefix.trim_end_matches('/'),
        None => p == *listed,
    })
}

/// The path families calls are counted under (`wetoken_proxy_calls_total`):
/// a fixed list, so that no request can add a series. `/cgi-bin/` paths by
/// their first two segments, others by their first.
const FAMILIES: &[&str] = &[
    "/cgi-bin/message",
    "/cgi-bin/menu",
    "/cgi-bin/media",
    "/cgi-bin/material",
    "/cgi-bin/user",
    "/cgi-bin/tags",
    "/cgi-bin/qrcode",
    "/cgi-bin/template",
    "/cgi-bin/customservice",
    "/cgi-bin/express",
    "/cgi-bin/getcallbackip",
    "/cgi-bin/get_api_domain_ip",
    "/cgi-bin/externalcontact",
    "/cgi-bin/department",
    "/cgi-bin/appchat",
    "/cgi-bin/agent",
    "/cgi-bin/kf",
    "/cgi-bin/oa",
    "/cgi-bin/component",
    "/cgi-bin/service",
    "/sns",
    "/wxa",
    "/wxaapi",
    "/datacube",
    "/card",
    "/merchant",
    "/customservice",
    "/semantic",
    "/shakearound",
    "/tcb",
    "/channels",
];

/// `/cgi-bin/message/custom/send` → `/cgi-bin/message`; a path of no listed
/// family → `other`.
pub fn family(path: &str) -> &'static str {
    let segments = if path.starts_with("/cgi-bin/") { 2 } else { 1 };
    let end = path
        .match_indices('/')
        .map(|(i, _)| i)
        .nth(segments)
        .unwrap_or(path.len());
    let head = &path[..end];
    FAMILIES.iter().find(|f| **f == head).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_credential_path_is_refused_in_every_spelling() {
        for listed in CREDENTIAL_PATHS {
            let path = listed.trim_end_matches('*');
            let path = if path.ends_with('/') {
                format!("{path}get")
            } else {
                path.to_owned()
            };
            for spelling in [path.clone(), path.to_uppercase(), format!("{path}/")] {
                assert!(manages_credentials(&spelling), "{spelling}");
            }
        }
        assert!(manages_credentials("/cgi-bin/clear_quota/v2"));
        assert!(manages_credentials("/cgi-bin/component/clear_quota/v2"));
        for business in [
            "/cgi-bin/message/custom/send",
            "/cgi-bin/user/get",
            "/cgi-bin/tokenize",
            "/cgi-bin/ticket/getticketx",
            "/wxa/getwxacode",
        ] {
            assert!(!manages_credentials(business), "{business}");
        }
    }

    #[test]
    fn families_are_a_fixed_list() {
        assert_eq!(family("/cgi-bin/message/custom/send"), "/cgi-bin/message");
        assert_eq!(family("/cgi-bin/menu/create"), "/cgi-bin/menu");
        assert_eq!(family("/cgi-bin/getcallbackip"), "/cgi-bin/getcallbackip");
        assert_eq!(family("/wxa/getwxacode"), "/wxa");
        assert_eq!(family("/sns/userinfo"), "/sns");
        let long = format!("/cgi-bin/{}/x", "a".repeat(30_000));
        assert_eq!(family(&long), "other");
        assert_eq!(family("/cgi-bin/unknown/thing"), "other");
        assert_eq!(family("/newfamily/x"), "other");
    }
}
