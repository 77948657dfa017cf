//! Every route of the API, with its methods, summaries and request bodies.

use serde_json::{Value, json};

/// One method of a route: (method, summary, body schema, success status).
pub(super) type Method = (&'static str, &'static str, Option<Value>, &'static str);

/// Every route: (path, tag, methods).
pub(super) fn routes() -> Vec<(&'static str, &'static str, Vec<Method>)> {
    let stale = Some(json!({"type": "object", "properties": {"stale": {"type": "string"}}}));
    let url = Some(json!({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}));
    let read = |what: &'static str| vec![("get", what, None, "200")];
    let refresh = || {
        vec![(
            "post",
            "refresh (with the rejected value as stale, or a rate-limited force refresh)",
            stale.clone(),
            "200",
        )]
    };
    let jssdk = || vec![("post", "JS-SDK config for a page URL", url.clone(), "200")];
    let mut all = super::signin::routes();
    all.extend(vec![
        (
            "/v1/mp/{appid}/{cred}",
            "credentials",
            read("an Official Account / Mini Program credential"),
        ),
        ("/v1/mp/{appid}/{cred}/refresh", "credentials", refresh()),
        ("/v1/mp/{appid}/jssdk_config", "credentials", jssdk()),
        (
            "/v1/work/{corpid}/{agentid}/{cred}",
            "credentials",
            read("a WeCom app credential"),
        ),
        ("/v1/work/{corpid}/{agentid}/{cred}/refresh", "credentials", refresh()),
        ("/v1/work/{corpid}/{agentid}/jssdk_config", "credentials", jssdk()),
        (
            "/v1/component/{component_appid}/access_token",
            "open platform",
            read("the component_access_token"),
        ),
        (
            "/v1/component/{component_appid}/access_token/refresh",
            "open platform",
            refresh(),
        ),
        (
            "/v1/component/{component_appid}/authorizers/{appid}/{cred}",
            "open platform",
            read("an authorizer credential"),
        ),
        (
            "/v1/component/{component_appid}/authorizers/{appid}/{cred}/refresh",
            "open platform",
            refresh(),
        ),
        (
            "/v1/component/{component_appid}/authorizers/{appid}/jssdk_config",
            "open platform",
            jssdk(),
        ),
        (
            "/v1/component/{component_appid}/pre_auth_code",
            "open platform",
            vec![("post", "a fresh pre_auth_code", None, "200")],
        ),
        (
            "/v1/component/{component_appid}/auth_url",
            "open platform",
            read("an authorization URL (PC or H5)"),
        ),
        (
            "/v1/component/{component_appid}/authorizers",
            "open platform",
            read("the component's authorizers"),
        ),
        (
            "/v1/suite/{suite_id}/access_token",
            "wecom",
            read("the suite_access_token"),
        ),
        ("/v1/suite/{suite_id}/access_token/refresh", "wecom", refresh()),
        (
            "/v1/suite/{suite_id}/corps",
            "wecom",
            read("the corps that installed the suite"),
        ),
        (
            "/v1/suite/{suite_id}/corps/{corpid}/{cred}",
            "wecom",
            read("an installed corp's credential"),
        ),
        ("/v1/suite/{suite_id}/corps/{corpid}/{cred}/refresh", "wecom", refresh()),
        ("/v1/suite/{suite_id}/corps/{corpid}/jssdk_config", "wecom", jssdk()),
        (
            "/v1/provider/{corpid}/access_token",
            "wecom",
            read("the provider_access_token"),
        ),
        ("/v1/provider/{corpid}/access_token/refresh", "wecom", refresh()),
        (
            "/v1/accounts",
            "admin",
            vec![
                ("get", "list accounts", None, "200"),
                (
                    "post",
                    "create an account",
                    Some(json!({"type": "object", "required": ["kind"]})),
                    "201",
                ),
            ],
        ),
        (
            "/v1/accounts/{id}",
            "admin",
            vec![
                ("get", "one account", None, "200"),
                (
                    "patch",
                    "change secrets or settings (drops cached credentials when a secret changes)",
                    Some(json!({"type": "object"})),
                    "200",
                ),
                ("delete", "delete an account and its credentials", None, "204"),
            ],
        ),
        (
            "/v1/keys",
            "admin",
            vec![
                ("get", "list API keys (never the key)", None, "200"),
                (
                    "post",
                    "create a client key (shown once); \"tokens\": false reads no token, \"paths\" limits token-free calls",
                    Some(
                        json!({"type": "object", "required": ["name", "accounts"], "properties": {
                            "name": {"type": "string"},
                            "accounts": {"type": "array", "items": {"type": "string"}},
                            "tokens": {"type": "boolean", "default": true},
                            "paths": {"type": "array", "items": {"type": "string"}},
                        }}),
                    ),
                    "201",
                ),
            ],
        ),
        (
            "/v1/keys/{name}",
            "admin",
            vec![("delete", "delete an API key", None, "204")],
        ),
        (
            "/v1/mp/{appid}/quota",
            "diagnostics",
            read("WeChat's daily quota of an API (?cgi_path=)"),
        ),
        (
            "/v1/mp/{appid}/rid/{rid}",
            "diagnostics",
            vec![(
                "get",
                "the failed request a rid names, every credential in it redacted (admin key)",
                None,
                "200",
            )],
        ),
        (
            "/v1/mp/{appid}/clear_quota",
            "diagnostics",
            vec![("post", "clear the day's quota (10 a month; admin key)", None, "200")],
        ),
        (
            "/v1/component/{component_appid}/authorizers/{appid}/quota",
            "diagnostics",
            read("an authorizer's daily quota of an API (?cgi_path=)"),
        ),
        (
            "/v1/component/{component_appid}/authorizers/{appid}/rid/{rid}",
            "diagnostics",
            vec![(
                "get",
                "the failed request a rid names, every credential in it redacted (admin key)",
                None,
                "200",
            )],
        ),
        (
            "/v1/component/{component_appid}/authorizers/{appid}/clear_quota",
            "diagnostics",
            vec![(
                "post",
                "clear an authorizer's quota through its component (10 a month; admin key)",
                None,
                "200",
            )],
        ),
        (
            "/v1/audit",
            "admin",
            read(
                "token-free calls, oldest first (?key=&account=&after=&limit=&cursor=): key, account, path, status, errcode, rid",
            ),
        ),
        (
            "/proxy/mp/{appid}/{path}",
            "token-free",
            vec![(
                "post",
                "call the WeChat API path (any method) without a token: wetoken adds the account's; WeChat's answer as it is, with X-Wetoken-Upstream-Ms",
                None,
                "200",
            )],
        ),
        (
            "/proxy/authorizer/{component_appid}/{appid}/{path}",
            "token-free",
            vec![(
                "post",
                "an authorizer's WeChat API call without a token (any method)",
                None,
                "200",
            )],
        ),
        (
            "/proxy/work/{corpid}/{agentid}/{path}",
            "token-free",
            vec![(
                "post",
                "a WeCom app's API call without a token (any method)",
                None,
                "200",
            )],
        ),
        (
            "/proxy/corp/{suite_id}/{corpid}/{path}",
            "token-free",
            vec![(
                "post",
                "an installed corp's WeCom API call without a token (any method)",
                None,
                "200",
            )],
        ),
        (
            "/v1/events",
            "events",
            read("events, oldest first (?after=&type=&account=&limit=&cursor=), within what the key covers"),
        ),
        (
            "/v1/webhooks",
            "events",
            vec![
                ("get", "list webhooks (never the secret)", None, "200"),
                (
                    "post",
                    "create a webhook (its signing secret is shown once)",
                    Some(
                        json!({"type": "object", "required": ["name", "url", "events"], "properties": {
                            "name": {"type": "string"}, "url": {"type": "string"},
                            "events": {"type": "array", "items": {"type": "string"}},
                            "accounts": {"type": "array", "items": {"type": "string"}},
                            "format": {"type": "string", "enum": ["json", "wechat", "wechat_plain", "wecom_bot"]},
                            "reply": {"type": "boolean"},
                        }}),
                    ),
                    "201",
                ),
            ],
        ),
        (
            "/v1/webhooks/{name}",
            "events",
            vec![("delete", "delete a webhook and its deliveries", None, "204")],
        ),
        (
            "/v1/webhooks/{name}/deliveries",
            "events",
            read("a webhook's deliveries (?status=pending|delivered|failed)"),
        ),
        (
            "/v1/webhooks/{name}/deliveries/{event_id}/retry",
            "events",
            vec![("post", "make a failed delivery pending again", None, "200")],
        ),
        (
            "/callback/component/{component_appid}",
            "callbacks",
            vec![(
                "post",
                "WeChat's encrypted authorization events and verify tickets",
                None,
                "200",
            )],
        ),
        (
            "/callback/mp/{appid}",
            "callbacks",
            vec![
                ("get", "WeChat's check of an account's message URL (plain signature, echostr back)", None, "200"),
                (
                    "post",
                    "users' messages and events of an account: plaintext, compatible or safe mode, XML or JSON; one event each",
                    None,
                    "200",
                ),
            ],
        ),
        (
            "/callback/component/{component_appid}/messages/{appid}",
            "callbacks",
            vec![("post", "an authorizer's users' messages and events, at the platform's message URL ($APPID$)", None, "200")],
        ),
        (
            "/callback/work/{corpid}/{agentid}",
            "callbacks",
            vec![
                ("get", "WeCom's check of an app's message URL", None, "200"),
                ("post", "a WeCom app's users' messages and events (encrypted)", None, "200"),
            ],
        ),
        (
            "/callback/suite/{suite_id}/data",
            "callbacks",
            vec![
                ("get", "WeCom's check of a suite's data callback URL", None, "200"),
                ("post", "the users' messages and events of the corps that installed the suite", None, "200"),
            ],
        ),
        (
            "/callback/component/{component_appid}/authorized",
            "callbacks",
            read("the landing page after authorization"),
        ),
        (
            "/callback/suite/{suite_id}",
            "callbacks",
            vec![
                ("get", "WeCom's URL verification", None, "200"),
                (
                    "post",
                    "WeCom's encrypted suite tickets and install events",
                    None,
                    "200",
                ),
            ],
        ),
        (
            "/cgi-bin/token",
            "wechat-compatible",
            read("WeChat's getAccessToken (by appid + secret)"),
        ),
        (
            "/cgi-bin/stable_token",
            "wechat-compatible",
            vec![("post", "WeChat's getStableAccessToken", None, "200")],
        ),
        (
            "/cgi-bin/ticket/getticket",
            "wechat-compatible",
            read("WeChat's jsapi / wx_card ticket (by a managed token)"),
        ),
        (
            "/cgi-bin/gettoken",
            "wechat-compatible",
            read("WeCom's gettoken (by corpid + corpsecret)"),
        ),
        (
            "/cgi-bin/get_jsapi_ticket",
            "wechat-compatible",
            read("WeCom's corp ticket"),
        ),
        (
            "/cgi-bin/ticket/get",
            "wechat-compatible",
            read("WeCom's agent_config ticket"),
        ),
        (
            "/cgi-bin/component/api_component_token",
            "wechat-compatible",
            vec![("post", "the component token (by component_appsecret)", None, "200")],
        ),
        (
            "/cgi-bin/component/api_authorizer_token",
            "wechat-compatible",
            vec![(
                "post",
                "an authorizer token (by a managed component token)",
                None,
                "200",
            )],
        ),
        (
            "/cgi-bin/component/api_create_preauthcode",
            "wechat-compatible",
            vec![("post", "a pre_auth_code (by a managed component token)", None, "200")],
        ),
        (
            "/cgi-bin/service/get_suite_token",
            "wechat-compatible",
            vec![("post", "the suite token (by suite_secret)", None, "200")],
        ),
        (
            "/cgi-bin/service/get_corp_token",
            "wechat-compatible",
            vec![(
                "post",
                "an installed corp's token (by a managed suite token)",
                None,
                "200",
            )],
        ),
        (
            "/cgi-bin/service/get_provider_token",
            "wechat-compatible",
            vec![("post", "the provider token (by provider_secret)", None, "200")],
        ),
        (
            "/wechat/app/create",
            "go wetoken",
            vec![
                ("get", "add an Official Account (admin key)", None, "200"),
                ("post", "add an Official Account (admin key)", None, "200"),
            ],
        ),
        (
            "/{appid}/wechat/token/get",
            "go wetoken",
            read("the access token, in the Go project's shape"),
        ),
        (
            "/{appid}/wechat/ticket/get",
            "go wetoken",
            read("the jsapi ticket, in the Go project's shape"),
        ),
        ("/healthz", "operations", read("the process is up")),
        ("/readyz", "operations", read("the database answers")),
        ("/metrics", "operations", read("Prometheus metrics")),
        ("/openapi.json", "operations", read("this document")),
    ]);
    all
}
