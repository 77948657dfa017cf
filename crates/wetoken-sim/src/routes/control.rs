//! The `/__sim` control API: what tests and the sandbox change while the
//! simulator runs (apps, components, faults, expiries) and what they read
//! (call counts, whether a token is valid).

use super::*;

#[derive(Deserialize)]
pub(super) struct ComponentBody {
    appid: String,
    secret: String,
    token: String,
    aes_key: String,
}

pub(super) async fn ctl_add_component(State(s): State<Arc<Shared>>, Json(b): Json<ComponentBody>) -> StatusCode {
    s.world
        .lock()
        .unwrap()
        .add_component(&b.appid, &b.secret, &b.token, &b.aes_key);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub(super) struct ActionBody {
    appid: Option<String>,
    callback_url: Option<String>,
}

pub(super) async fn ctl_component_action(
    State(s): State<Arc<Shared>>,
    axum::extract::Path((c, action)): axum::extract::Path<(String, String)>,
    Json(b): Json<ActionBody>,
) -> Response {
    let result = match (action.as_str(), b.appid.as_deref(), b.callback_url.as_deref()) {
        ("push_ticket", _, Some(url)) => push_verify_ticket(&s, &c, url).await.map(|(t, _)| json!({"ticket": t})),
        ("authorize", Some(appid), url) => authorize(&s, &c, appid, url)
            .await
            .map(|code| json!({"auth_code": code})),
        ("unauthorize", Some(appid), Some(url)) => unauthorize(&s, &c, appid, url)
            .await
            .map(|status| json!({"status": status})),
        _ => Err(
            "push_ticket needs callback_url; authorize needs appid; unauthorize needs appid and callback_url".into(),
        ),
    };
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct AppBody {
    appid: String,
    secret: String,
}

pub(super) async fn ctl_add_app(State(s): State<Arc<Shared>>, Json(b): Json<AppBody>) -> StatusCode {
    s.world.lock().unwrap().add_app(&b.appid, &b.secret);
    StatusCode::NO_CONTENT
}

pub(super) async fn ctl_calls(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(*s.calls.lock().unwrap()))
}

#[derive(Deserialize)]
pub(super) struct FaultBody {
    endpoint: String,
    fault: String,
    ms: Option<u64>,
    errcode: Option<i64>,
    times: Option<u32>,
}

pub(super) async fn ctl_fault(State(s): State<Arc<Shared>>, Json(b): Json<FaultBody>) -> Response {
    let fault = match b.fault.as_str() {
        "latency" => Fault::Latency(Duration::from_millis(b.ms.unwrap_or(1000))),
        "http500" => Fault::Http500,
        "errcode" => Fault::Errcode(b.errcode.unwrap_or(-1)),
        "hang" => Fault::Hang,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "fault must be latency, http500, errcode or hang",
            )
                .into_response();
        }
    };
    s.faults
        .lock()
        .unwrap()
        .entry(b.endpoint)
        .or_default()
        .push_back((fault, b.times));
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn ctl_clear_faults(State(s): State<Arc<Shared>>) -> StatusCode {
    s.faults.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

pub(super) async fn ctl_valid(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let now = s.now();
    let token = q.get("access_token").map(String::as_str).unwrap_or_default();
    let valid = s.world.lock().unwrap().token_state(token, now) == TokenState::Valid;
    Json(json!({ "valid": valid }))
}

#[derive(Deserialize)]
pub(super) struct ExpireBody {
    appid: String,
    secs: i64,
}

pub(super) async fn ctl_expire(State(s): State<Arc<Shared>>, Json(b): Json<ExpireBody>) -> StatusCode {
    let now = s.now();
    s.world.lock().unwrap().expire_tokens_in(&b.appid, b.secs, now);
    StatusCode::NO_CONTENT
}
