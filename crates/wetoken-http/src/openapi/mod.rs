//! `GET /openapi.json`: the HTTP API described as OpenAPI 3.0 (SPEC §3).
//! Built here rather than derived, so that it names exactly the routes of
//! this crate; a test checks every route appears, and another validates
//! the answers of a running server against the schemas (`schemas`) both
//! ways.

use axum::Json;
use serde_json::{Map, Value, json};

mod routes;
mod schemas;
mod signin;

use routes::routes;
use schemas::{answer_of, schemas};

fn op(summary: &str, tag: &str, secured: bool, body: Option<Value>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok: {"description": "success"},
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"},
        },
    });
    if secured {
        o["security"] = json!([{"bearer": []}, {"basic": []}]);
    }
    if let Some(schema) = body {
        o["requestBody"] = json!({"content": {"application/json": {"schema": schema}}});
    }
    o
}

fn params(path: &str) -> Value {
    Value::Array(
        path.split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect(),
    )
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (path, tag, methods) in routes() {
        let secured = path.starts_with("/v1/") || path.contains("/wechat/");
        let mut item = Map::new();
        item.insert("parameters".into(), params(path));
        for (method, summary, body, ok) in methods {
            let mut o = op(summary, tag, secured, body, ok);
            if let Some(schema) = answer_of(path, method) {
                o["responses"][ok]["content"] =
                    json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
            }
            item.insert(method.into(), o);
        }
        paths.insert(path.into(), Value::Object(item));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "wetoken",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "WeChat credential central-control server: one place that fetches, stores, refreshes and serves WeChat and WeCom credentials.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "the key as the username, or as the password with an empty username"}
            },
            "responses": {"Error": {
                "description": "an error",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "enum": ["invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "payload_too_large", "rate_limited", "upstream_error", "upstream_timeout", "unavailable"]},
                        "message": {"type": "string"},
                        "upstream": {"type": "object", "additionalProperties": false, "required": ["errcode", "errmsg"], "properties": {"errcode": {"type": "integer"}, "errmsg": {"type": "string"}}},
                        "used_this_month": {"type": "integer", "description": "clear_quota's refusal: quota clears used this month"},
                    },
                }}},
            }},
        },
    })
}

pub async fn openapi() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/v1` route added without naming its answer's schema fails here,
    /// not silently in the document; every schema named exists.
    #[test]
    fn every_v1_answer_with_a_body_names_a_schema() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for (method, op) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
                let (status, answer) = op["responses"].as_object().unwrap().iter().next().unwrap();
                if status == "204" {
                    continue;
                }
                let r = answer["content"]["application/json"]["schema"]["$ref"].as_str();
                let name = r.and_then(|r| r.strip_prefix("#/components/schemas/"));
                assert!(
                    name.is_some_and(|n| schemas.contains_key(n)),
                    "{method} {path}: {status} names no schema ({r:?})"
                );
            }
        }
    }
}
