//! The answers of the `/v1` routes as OpenAPI schemas.

use serde_json::{Value, json};

/// The schema of each `/v1` answer: the types of `crate::render`, written
/// as OpenAPI schemas. A test validates real answers against them, both
/// ways (no field missing from the document, none the answers never have).
pub(super) fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let time_or_null = json!({"type": "string", "format": "date-time", "nullable": true});
    let string = json!({"type": "string"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let page = |name: &str, item: &str| {
        json!({"type": "object", "additionalProperties": false, "required": [name, "next_cursor"], "properties": {
            name: {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next_cursor": {"type": "string", "nullable": true},
        }})
    };
    let jssdk_config = json!({"type": "object", "additionalProperties": false,
        "required": ["timestamp", "nonceStr", "signature"], "properties": {
        "appId": string, "corpid": string, "agentid": string,
        "timestamp": {"type": "integer"}, "nonceStr": string, "signature": string,
    }});
    let mut all = json!({
        "Credential": {"type": "object", "additionalProperties": false, "required": ["expires_in", "expires_at"], "properties": {
            "access_token": string, "ticket": string,
            "expires_in": {"type": "integer", "description": "seconds left"},
            "expires_at": time,
            "verified_at": {"type": "string", "format": "date-time", "description": "when WeChat last said this value is alive (a verified refresh)"},
        }},
        "Account": {"type": "object", "additionalProperties": false,
            "required": ["id", "kind", "status", "created_at", "updated_at", "credentials"], "properties": {
            "id": string,
            "kind": {"type": "string", "enum": ["mp", "work", "component", "authorizer", "suite", "corp", "provider"]},
            "appid": string, "corpid": string, "agentid": string, "suite_id": string, "component_appid": string,
            "token_api": {"type": "string", "enum": ["stable", "classic"]},
            "status": {"type": "string", "enum": ["active", "needs_reauthorization", "revoked"]},
            "quota_clears": {"type": "object", "additionalProperties": false, "required": ["month", "used"], "properties": {
                "month": string, "used": {"type": "integer"},
            }},
            "created_at": time, "updated_at": time,
            "credentials": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/CredentialState"}},
            "api_security": {"type": "object", "additionalProperties": false,
                "description": "what may be shown of the API-security keys (SPEC §15): never a key",
                "required": ["sym_sn", "private_sn", "sign", "platform_certs"], "properties": {
                "sym_sn": string, "private_sn": string, "sign": {"type": "string", "enum": ["required", "all"]},
                "platform_certs": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "required": ["sn", "not_before", "not_after"], "properties": {"sn": string, "not_before": time, "not_after": time}}},
            }},
        }},
        "CredentialState": {"type": "object", "additionalProperties": false,
            "required": ["expires_at", "refreshed_at", "last_error", "blocked_until"], "properties": {
            "expires_at": time_or_null, "refreshed_at": time_or_null, "blocked_until": time_or_null,
            "last_error": {"type": "object", "nullable": true, "additionalProperties": false,
                "required": ["errcode", "errmsg", "at"], "properties": {
                "errcode": {"type": "integer"}, "errmsg": string, "at": time,
            }},
        }},
        "AccountPage": page("accounts", "Account"),
        "Key": {"type": "object", "additionalProperties": false, "required": ["name", "accounts", "tokens", "created_at"], "properties": {
            "name": string, "accounts": strings, "tokens": {"type": "boolean"}, "created_at": time, "paths": strings,
        }},
        "NewKey": {"type": "object", "additionalProperties": false, "required": ["name", "key", "accounts", "tokens"], "properties": {
            "name": string, "key": {"type": "string", "description": "shown this once"}, "accounts": strings,
            "tokens": {"type": "boolean"}, "paths": strings,
        }},
        "KeyPage": page("keys", "Key"),
        "Authorizer": {"type": "object", "additionalProperties": false, "required": ["appid", "authorized_at", "status", "func_info"], "properties": {
            "appid": string, "authorized_at": time,
            "status": {"type": "string", "enum": ["authorized", "needs_reauthorization"]},
            "func_info": {"type": "array", "nullable": true, "description": "WeChat's func_info: the permission sets granted, each with what else WeChat says of it",
                "items": {"type": "object", "required": ["funcscope_category"], "properties": {
                    "funcscope_category": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
                }}},
        }},
        "AuthorizerPage": page("authorizers", "Authorizer"),
        "Corp": {"type": "object", "additionalProperties": false, "required": ["corpid", "agentid", "authorized_at", "status"], "properties": {
            "corpid": string, "agentid": {"type": "string", "nullable": true}, "authorized_at": time,
            "status": {"type": "string", "enum": ["authorized", "needs_reauthorization"]},
        }},
        "CorpPage": page("corps", "Corp"),
        "PreAuthCode": {"type": "object", "additionalProperties": false, "required": ["pre_auth_code", "expires_in"], "properties": {
            "pre_auth_code": string, "expires_in": {"type": "integer"},
        }},
        "Url": {"type": "object", "additionalProperties": false, "required": ["url"], "properties": {"url": string}},
        "JssdkConfig": jssdk_config,
        "Jssdk": {"type": "object", "additionalProperties": false, "properties": {
            "appId": string,
            "timestamp": {"type": "integer"}, "nonceStr": string, "signature": string,
            "config": {"$ref": "#/components/schemas/JssdkConfig"},
            "agent_config": {"$ref": "#/components/schemas/JssdkConfig"},
        }, "description": "a page's wx.config; for WeCom, {config, agent_config}"},
        "Quota": {"type": "object", "additionalProperties": false, "required": ["daily_limit", "used", "remain"], "properties": {
            "daily_limit": {"type": "integer"}, "used": {"type": "integer"}, "remain": {"type": "integer"},
            "rate_limit": {"type": "object"}, "component_rate_limit": {"type": "object"},
        }},
        "Cleared": {"type": "object", "additionalProperties": false, "required": ["used_this_month"], "properties": {
            "used_this_month": {"type": "integer"},
        }},
        "Rid": {"type": "object", "description": "WeChat's record of the request, every credential in it redacted", "properties": {
            "invoke_time": {"type": "integer"}, "cost_in_ms": {"type": "integer"},
            "request_url": string, "request_body": string, "response_body": string, "client_ip": string,
        }},
        "Event": {"type": "object", "additionalProperties": false, "required": ["id", "type", "account", "at", "data"], "properties": {
            "id": string, "type": string, "account": string, "at": time, "data": {"type": "object"},
        }},
        "EventPage": page("events", "Event"),
        "Webhook": {"type": "object", "additionalProperties": false,
            "required": ["name", "url", "events", "accounts", "format", "created_at", "reply"], "properties": {
            "name": string, "url": {"type": "string", "description": "its query and userinfo redacted"},
            "events": strings, "accounts": strings,
            "format": {"type": "string", "enum": ["json", "wechat", "wechat_plain", "wecom_bot"]},
            "reply": {"type": "boolean", "description": "answers pushed messages while WeChat waits (SPEC §14)"},
            "created_at": time,
            "secret": {"type": "string", "description": "the signing secret, only in the answer that created it"},
        }},
        "WebhookPage": page("webhooks", "Webhook"),
        "Delivery": {"type": "object", "additionalProperties": false,
            "required": ["event_id", "status", "attempts", "next_attempt_at", "created_at", "updated_at", "last_status", "last_error", "reply", "reply_ms"], "properties": {
            "event_id": string,
            "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer"}, "next_attempt_at": time_or_null,
            "created_at": time, "updated_at": time,
            "last_status": {"type": "integer", "nullable": true}, "last_error": {"type": "string", "nullable": true},
            "reply": {"type": "string", "nullable": true, "description": "what a reply webhook answered that was given to WeChat"},
            "reply_ms": {"type": "integer", "nullable": true, "description": "how long a reply webhook's call took"},
        }},
        "DeliveryPage": page("deliveries", "Delivery"),
        "Audit": {"type": "object", "additionalProperties": false,
            "required": ["id", "at", "key", "account", "method", "path", "status", "errcode", "rid"], "properties": {
            "id": string, "at": time, "key": string, "account": string, "method": string, "path": string,
            "status": {"type": "integer"}, "errcode": {"type": "integer", "nullable": true}, "rid": {"type": "string", "nullable": true},
        }},
        "AuditPage": page("entries", "Audit"),
    });
    // Sign-in (SPEC §13), apart: one json! of everything is too deep.
    let signin = json!({
        "Login": {"type": "object", "additionalProperties": false, "required": ["openid"], "properties": {
            "openid": string, "unionid": string,
            "session_key": {"type": "string", "description": "only for a key that sees values; wetoken keeps it either way"},
        }},
        "UserToken": {"type": "object", "additionalProperties": false,
            "required": ["openid", "scope", "access_token", "refresh_token", "expires_in"], "properties": {
            "openid": string, "unionid": string, "scope": string,
            "access_token": {"type": "string", "description": "the user's token (sns/userinfo, sns/auth), not the account's"},
            "refresh_token": string, "expires_in": {"type": "integer"},
            "is_snapshotuser": {"type": "integer", "description": "1 for a user who only saw the snapshot page"},
        }},
        "CheckSession": {"type": "object", "additionalProperties": false, "required": ["valid", "errcode", "errmsg"], "properties": {
            "valid": {"type": "boolean"}, "errcode": {"type": "integer"}, "errmsg": string,
        }},
        "UserData": {"type": "object", "additionalProperties": true, "required": ["watermark"], "properties": {
            "watermark": {"type": "object", "additionalProperties": true, "required": ["appid"], "properties": {"appid": string, "timestamp": {"type": "integer"}}},
        }},
    });
    if let (Some(all), Value::Object(signin)) = (all.as_object_mut(), signin) {
        all.extend(signin);
    }
    all
}

/// The schema of a route's success answer, by (path, method).
pub(super) fn answer_of(path: &str, method: &str) -> Option<&'static str> {
    let last = path.rsplit('/').next().unwrap_or_default();
    Some(match (method, last) {
        _ if !path.starts_with("/v1/") => return None,
        ("post", "refresh") => "Credential",
        ("post", "jssdk_config") => "Jssdk",
        ("post", "pre_auth_code") => "PreAuthCode",
        ("get", "auth_url") => "Url",
        ("get", "authorizers") => "AuthorizerPage",
        ("get", "corps") => "CorpPage",
        ("get", "quota") => "Quota",
        ("post", "clear_quota") => "Cleared",
        ("get", "{rid}") => "Rid",
        ("get", "accounts") => "AccountPage",
        ("post", "accounts") | ("get" | "patch", "{id}") => "Account",
        ("get", "keys") => "KeyPage",
        ("post", "keys") => "NewKey",
        ("get", "audit") => "AuditPage",
        ("get", "events") => "EventPage",
        ("get", "webhooks") => "WebhookPage",
        ("post", "webhooks") => "Webhook",
        ("get", "deliveries") => "DeliveryPage",
        ("post", "retry") => "Delivery",
        ("post", "jscode2session") => "Login",
        ("post", "decrypt") => "UserData",
        ("post", "checksession") => "CheckSession",
        ("get", "authorize_url") => "Url",
        ("post", "access_token" | "refresh_token") if path.contains("/oauth2/") => "UserToken",
        ("get", "{cred}" | "access_token") => "Credential",
        _ => return None,
    })
}
