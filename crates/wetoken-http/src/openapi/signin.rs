//! The sign-in routes (SPEC §13), the same for an account and an
//! authorizer.

use serde_json::json;

use super::routes::Method;

/// Every sign-in route: (path, tag, methods).
pub(super) fn routes() -> Vec<(&'static str, &'static str, Vec<Method>)> {
    let body =
        |field: &str| Some(json!({"type": "object", "required": [field], "properties": {field: {"type": "string"}}}));
    let decrypt = Some(
        json!({"type": "object", "required": ["openid", "encrypted_data", "iv"], "properties": {
        "openid": {"type": "string"}, "encrypted_data": {"type": "string"}, "iv": {"type": "string"}}}),
    );
    // Sign-in (SPEC §13), the same for an account and an authorizer.
    let signin = |base: &'static str| -> Vec<(&'static str, &'static str, Vec<Method>)> {
        let p = |tail: &str| -> &'static str { Box::leak(format!("{base}{tail}").into_boxed_str()) };
        vec![
            (
                p("/sns/jscode2session"),
                "sign-in",
                vec![(
                    "post",
                    "a Mini Program login code for the user's openid (and the session_key, for a key that sees values)",
                    body("js_code"),
                    "200",
                )],
            ),
            (
                p("/sns/decrypt"),
                "sign-in",
                vec![(
                    "post",
                    "data a Mini Program sent, decrypted with the user's kept session_key",
                    decrypt.clone(),
                    "200",
                )],
            ),
            (
                p("/sns/checksession"),
                "sign-in",
                vec![(
                    "post",
                    "whether WeChat still holds the user's kept session_key",
                    body("openid"),
                    "200",
                )],
            ),
            (
                p("/oauth2/authorize_url"),
                "sign-in",
                vec![(
                    "get",
                    "the web authorization page's URL (redirect_uri, scope, state)",
                    None,
                    "200",
                )],
            ),
            (
                p("/oauth2/access_token"),
                "sign-in",
                vec![(
                    "post",
                    "a web authorization code for the user's token",
                    body("code"),
                    "200",
                )],
            ),
            (
                p("/oauth2/refresh_token"),
                "sign-in",
                vec![("post", "the user's token refreshed", body("refresh_token"), "200")],
            ),
        ]
    };
    let mut all = signin("/v1/mp/{appid}");
    all.extend(signin("/v1/component/{component_appid}/authorizers/{appid}"));
    all
}
