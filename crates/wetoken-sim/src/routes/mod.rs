//! The simulator's HTTP surface: WeChat's endpoints (each one a thin
//! handler over [`crate::rules`], with fault injection and counters) and the
//! `/__sim` control API.

use super::*;
use crate::media;

mod apisec;
mod control;
mod signin;

pub use apisec::{INTRACITY, RISK_RANK};

use control::*;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/cgi-bin/token", get(classic))
        .route("/cgi-bin/stable_token", post(stable))
        .route("/cgi-bin/ticket/getticket", get(getticket))
        .route("/cgi-bin/component/{endpoint}", post(component_api))
        .route("/cgi-bin/gettoken", get(work_gettoken))
        .route("/cgi-bin/get_jsapi_ticket", get(work_corp_ticket))
        .route("/cgi-bin/ticket/get", get(work_agent_ticket))
        .route("/cgi-bin/service/{endpoint}", post(service_api))
        .route("/cgi-bin/getcallbackip", get(getcallbackip))
        .route("/cgi-bin/get_api_domain_ip", get(get_api_domain_ip))
        .route("/cgi-bin/media/get", get(media::media_get))
        .route("/cgi-bin/media/upload", post(media::media_upload))
        .route("/cgi-bin/user/get", get(user_get))
        .route("/cgi-bin/menu/create", post(menu_create))
        .route("/cgi-bin/message/custom/send", post(custom_send))
        .route("/wxa/getwxacode", post(media::getwxacode))
        .route("/cgi-bin/openapi/quota/get", post(quota_get))
        .route("/cgi-bin/openapi/rid/get", post(rid_get))
        .route("/cgi-bin/clear_quota", post(clear_quota))
        .route("/cgi-bin/component/clear_quota/v2", post(component_clear_quota))
        .route("/cgi-bin/componentloginpage", get(authorization_page))
        .route("/wxaopen/safe/bindcomponent", get(authorization_page))
        .route("/__sim/authorization/confirm", get(authorization_confirm))
        .route("/__sim/apps", post(ctl_add_app))
        .route("/__sim/calls", get(ctl_calls))
        .route("/__sim/faults", post(ctl_fault).delete(ctl_clear_faults))
        .route("/__sim/valid", get(ctl_valid))
        .route("/__sim/expire", post(ctl_expire))
        .route("/__sim/components", post(ctl_add_component))
        .route("/__sim/components/{c}/{action}", post(ctl_component_action))
        .merge(signin::routes())
        .merge(apisec::routes())
        .with_state(shared)
        .layer(axum::middleware::from_fn(remember_url))
}

tokio::task_local! {
    /// The path and query of the request being answered: WeChat's record of
    /// a call (`openapi/rid/get`) carries the URL it was called with.
    static REQUEST_URL: String;
}

async fn remember_url(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let url = req
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    REQUEST_URL.scope(url, next.run(req)).await
}

/// The URL of the request being answered (`name` outside a request).
fn request_url(name: &str) -> String {
    REQUEST_URL.try_with(Clone::clone).unwrap_or_else(|_| name.to_owned())
}

/// Applies a fault; `Some(response)` when the fault replaces the answer.
pub(crate) async fn apply(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::Latency(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::Http500 => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html><body>500 Internal Server Error</body></html>",
            )
                .into_response(),
        ),
        Fault::Errcode(c) => Some(Json(json!({"errcode": c, "errmsg": errmsg_of(c)})).into_response()),
        Fault::Hang => {
            std::future::pending::<()>().await;
            None
        }
    }
}

/// WeChat's errmsg for an errcode a fault answers (contract-2 §D.3, §D.4):
/// the whitelist refusals name the address WeChat saw — here the loopback
/// address every caller of the simulator comes from.
fn errmsg_of(errcode: i64) -> String {
    let rid = format!("rid: {}-{}", rules::random_text(8), rules::random_text(8));
    match errcode {
        40164 => format!("invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist {rid}"),
        61004 => format!("access clientip is not registered tips: requestIP: 127.0.0.1 {rid}"),
        60020 => "not allow to access from your ip, hint: [1658286717354964018506079], from ip: 127.0.0.1, \
                  more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
            .to_owned(),
        40243 => format!("appsecret is frozen {rid}"),
        40125 => format!("invalid appsecret {rid}"),
        89503 => format!("此次调用需要管理员确认，请耐心等候 {rid}"),
        89506 => format!("该IP调用请求已被公众号管理员拒绝，请24小时后再试，建议调用前与管理员沟通确认 {rid}"),
        _ => "system error".to_owned(),
    }
}

/// WeChat answers JSON with a text/plain content type at times; keep
/// clients honest about not relying on it.
pub(crate) fn answer(v: Value) -> Response {
    ([("content-type", "application/json; encoding=utf-8")], v.to_string()).into_response()
}

/// The shape of WeChat's GET APIs: count the call, apply a fault, answer by
/// the rules from the query.
pub(crate) async fn query_api(
    s: &Arc<Shared>,
    name: &'static str,
    q: &HashMap<String, String>,
    rule: impl FnOnce(&mut World, Params<'_>, i64) -> Answer,
) -> Response {
    let (fault, _in_flight) = s.enter(name);
    if let Some(t) = q.get("access_token") {
        s.last_tokens.lock().unwrap().insert(name.to_owned(), t.clone());
    }
    if let Some(r) = apply(fault).await {
        return r;
    }
    let now = s.now();
    let mut w = s.world.lock().unwrap();
    let a = rule(&mut w, Params(q), now);
    w.record_rid(&a, &request_url(name), "", now);
    answer(a)
}

/// A request's query parameters.
#[derive(Clone, Copy)]
pub(crate) struct Params<'a>(pub(crate) &'a HashMap<String, String>);

impl<'a> Params<'a> {
    pub(crate) fn get(self, k: &str) -> Option<&'a str> {
        self.0.get(k).map(String::as_str)
    }
}

async fn classic(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    query_api(&s, TOKEN, &q, |w, p, now| {
        w.classic(p.get("grant_type"), p.get("appid"), p.get("secret"), now)
    })
    .await
}

async fn stable(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    json_api(&s, STABLE_TOKEN, &body, |w, v, now| {
        w.stable(
            v["grant_type"].as_str(),
            v["appid"].as_str(),
            v["secret"].as_str(),
            v["force_refresh"].as_bool().unwrap_or(false),
            now,
        )
    })
    .await
}

async fn getticket(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    query_api(&s, GETTICKET, &q, |w, p, now| {
        w.ticket(p.get("access_token"), p.get("type"), now)
    })
    .await
}

/// The shape of WeChat's JSON POST APIs: count the call, apply a fault,
/// parse the body (47001 if it is not JSON), answer by the rules.
async fn json_api(
    s: &Arc<Shared>,
    name: &'static str,
    body: &[u8],
    rule: impl FnOnce(&mut World, &Value, i64) -> Answer,
) -> Response {
    let (fault, _in_flight) = s.enter(name);
    if let Some(r) = apply(fault).await {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return answer(json!({"errcode": 47001, "errmsg": "data format error"}));
    };
    let now = s.now();
    let mut w = s.world.lock().unwrap();
    let a = rule(&mut w, &v, now);
    w.record_rid(&a, &request_url(name), &String::from_utf8_lossy(body), now);
    answer(a)
}

/// Diagnostics (SPEC §3): the account's own token in `access_token`.
async fn quota_get(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let token = q.get("access_token").map(String::as_str);
    json_api(&s, QUOTA_GET, &body, |w, v, now| w.quota_get(token, v, now)).await
}

async fn rid_get(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let token = q.get("access_token").map(String::as_str);
    json_api(&s, RID_GET, &body, |w, v, now| w.rid_get(token, v, now)).await
}

async fn clear_quota(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let token = q.get("access_token").map(String::as_str);
    json_api(&s, CLEAR_QUOTA, &body, |w, v, now| w.clear_quota(token, v, now)).await
}

async fn component_clear_quota(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    json_api(&s, COMPONENT_CLEAR_QUOTA, &body, |w, v, now| {
        w.component_clear_quota(v, now)
    })
    .await
}

fn unknown_api() -> Response {
    answer(json!({"errcode": 48001, "errmsg": "api unauthorized"}))
}

/// `POST /cgi-bin/component/{api_component_token|api_create_preauthcode|api_query_auth|api_authorizer_token}`.
async fn component_api(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(endpoint): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    // The component token may come as component_access_token (classic) or access_token (newer docs).
    let token = q
        .get("component_access_token")
        .or_else(|| q.get("access_token"))
        .map(String::as_str);
    match endpoint.as_str() {
        "api_component_token" => json_api(&s, COMPONENT_TOKEN, &body, |w, v, now| w.component_token(v, now)).await,
        "api_create_preauthcode" => {
            json_api(&s, PRE_AUTH_CODE, &body, |w, v, now| w.pre_auth_code(token, v, now)).await
        }
        "api_query_auth" => json_api(&s, QUERY_AUTH, &body, |w, v, now| w.query_auth(token, v, now)).await,
        "api_authorizer_token" => {
            json_api(&s, AUTHORIZER_TOKEN, &body, |w, v, now| {
                w.authorizer_token(token, v, now)
            })
            .await
        }
        _ => unknown_api(),
    }
}

async fn work_gettoken(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    query_api(&s, GETTOKEN, &q, |w, p, now| {
        w.work_token(p.get("corpid"), p.get("corpsecret"), now)
    })
    .await
}

async fn work_ticket(s: Arc<Shared>, q: HashMap<String, String>, agent: bool) -> Response {
    let name = if agent { AGENT_TICKET } else { GET_JSAPI_TICKET };
    query_api(&s, name, &q, |w, p, now| {
        if agent && p.get("type") != Some("agent_config") {
            return json!({"errcode": 40097, "errmsg": "invalid args"});
        }
        w.work_ticket(p.get("access_token"), agent, now)
    })
    .await
}

async fn work_corp_ticket(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    work_ticket(s, q, false).await
}

async fn work_agent_ticket(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    work_ticket(s, q, true).await
}

/// `POST /cgi-bin/service/{get_provider_token|get_suite_token|get_permanent_code|get_auth_info|get_corp_token}`.
async fn service_api(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(endpoint): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let token = q.get("suite_access_token").map(String::as_str);
    match endpoint.as_str() {
        "get_provider_token" => json_api(&s, PROVIDER_TOKEN, &body, |w, v, now| w.provider_token(v, now)).await,
        "get_suite_token" => json_api(&s, SUITE_TOKEN, &body, |w, v, now| w.suite_token(v, now)).await,
        "get_permanent_code" => json_api(&s, PERMANENT_CODE, &body, |w, v, now| w.permanent_code(token, v, now)).await,
        "get_auth_info" => json_api(&s, AUTH_INFO, &body, |w, v, now| w.auth_info(token, v, now)).await,
        "get_corp_token" => json_api(&s, CORP_TOKEN, &body, |w, v, now| w.corp_token(token, v, now)).await,
        _ => unknown_api(),
    }
}

async fn getcallbackip(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    query_api(&s, GETCALLBACKIP, &q, |w, p, now| {
        match w.business(p.get("access_token"), now) {
            Ok(()) => json!({"ip_list": ["127.0.0.1", "101.226.103.0/25"]}),
            Err(e) => e,
        }
    })
    .await
}

async fn get_api_domain_ip(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    query_api(&s, GET_API_DOMAIN_IP, &q, |w, p, now| {
        w.api_domain_ip(p.get("access_token"), now)
    })
    .await
}

async fn user_get(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    query_api(&s, USER_GET, &q, |w, p, now| match w.business(p.get("access_token"), now) {
        Ok(()) => json!({"errcode": 0, "errmsg": "ok", "userid": p.get("userid").unwrap_or_default(), "name": "Zhang San"}),
        Err(e) => e,
    })
    .await
}

/// An ordinary business API that takes a JSON body: the token checked,
/// the body's JSON checked (47001 otherwise), `{"errcode":0,"errmsg":"ok"}`.
async fn json_business(s: &Arc<Shared>, name: &'static str, q: &HashMap<String, String>, body: &[u8]) -> Response {
    let parsed = serde_json::from_slice::<Value>(body).is_ok();
    query_api(s, name, q, |w, p, now| match w.business(p.get("access_token"), now) {
        Ok(()) if parsed => json!({"errcode": 0, "errmsg": "ok"}),
        Ok(()) => json!({"errcode": 47001, "errmsg": "data format error"}),
        Err(e) => e,
    })
    .await
}

/// `POST /cgi-bin/menu/create?access_token`.
async fn menu_create(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    json_business(&s, MENU_CREATE, &q, &body).await
}

/// `POST /cgi-bin/message/custom/send?access_token`.
async fn custom_send(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    query_api(&s, CUSTOM_SEND, &q, |w, p, now| {
        w.custom_send(p.get("access_token"), &body, now)
    })
    .await
}

/// HTML-escapes a value for an attribute or text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// WeChat's authorization page (PC `componentloginpage`, H5
/// `bindcomponent`): the administrator names the account to authorize
/// (here typed, in WeChat chosen by scanning) and confirms.
async fn authorization_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| esc(q.get(k).map_or("", String::as_str));
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>授权 · WeChat simulator</title></head><body>\
         <h1>授权给第三方平台 {c}</h1>\
         <form method=\"get\" action=\"/__sim/authorization/confirm\">\
         <input type=\"hidden\" name=\"component_appid\" value=\"{c}\">\
         <input type=\"hidden\" name=\"pre_auth_code\" value=\"{p}\">\
         <input type=\"hidden\" name=\"redirect_uri\" value=\"{r}\">\
         <label>AppID <input id=\"sim-appid\" name=\"appid\" value=\"wxsimauthorized01\"></label>\
         <button id=\"sim-authorize\" type=\"submit\">授权</button></form></body></html>",
        c = get("component_appid"),
        p = get("pre_auth_code"),
        r = get("redirect_uri"),
    );
    ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The administrator confirmed: the pre_auth_code is used, an
/// authorization code issued, the browser sent to `redirect_uri` with it.
async fn authorization_confirm(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let (component, appid, redirect) = (get("component_appid"), get("appid"), get("redirect_uri"));
    if appid.is_empty() || !(redirect.starts_with("http://") || redirect.starts_with("https://")) {
        return (StatusCode::BAD_REQUEST, "appid and an http(s) redirect_uri are needed").into_response();
    }
    let now = s.now();
    let code = {
        let mut w = s.world.lock().unwrap();
        if let Err(e) = w.use_pre_auth_code(component, get("pre_auth_code"), now) {
            return (StatusCode::BAD_REQUEST, e).into_response();
        }
        w.new_auth_code(component, appid, now)
    };
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let code: String = form_urlencoded::byte_serialize(code.as_bytes()).collect();
    let location = format!("{redirect}{sep}auth_code={code}&expires_in=600");
    (StatusCode::FOUND, [(axum::http::header::LOCATION, location)]).into_response()
}
