//! Users signing in: the `sns` exchanges, the user's web token, and the
//! web authorization page a user consents on (rules in `rules::signin`).

use super::*;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sns/jscode2session", get(jscode2session))
        .route("/sns/component/jscode2session", get(component_jscode2session))
        .route("/sns/oauth2/access_token", get(oauth_access_token))
        .route("/sns/oauth2/refresh_token", get(oauth_refresh))
        .route("/sns/oauth2/component/access_token", get(component_oauth_access_token))
        .route("/sns/oauth2/component/refresh_token", get(component_oauth_refresh))
        .route("/sns/userinfo", get(sns_userinfo))
        .route("/sns/auth", get(sns_auth))
        .route("/wxa/checksession", get(checksession))
        .route("/connect/oauth2/authorize", get(authorize_page))
}

type Q = Query<HashMap<String, String>>;

async fn jscode2session(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, JSCODE2SESSION, &q, |w, p, now| {
        w.jscode2session(
            p.get("appid"),
            p.get("secret"),
            p.get("js_code"),
            p.get("grant_type"),
            now,
        )
    })
    .await
}

async fn component_jscode2session(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, COMPONENT_JSCODE2SESSION, &q, |w, p, now| {
        w.component_jscode2session(p.0, now)
    })
    .await
}

async fn oauth_access_token(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, OAUTH2_ACCESS_TOKEN, &q, |w, p, now| w.oauth_access_token(p.0, now)).await
}

async fn oauth_refresh(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, OAUTH2_REFRESH_TOKEN, &q, |w, p, now| w.oauth_refresh(p.0, now)).await
}

async fn component_oauth_access_token(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, COMPONENT_OAUTH2_ACCESS_TOKEN, &q, |w, p, now| {
        w.component_oauth_access_token(p.0, now)
    })
    .await
}

async fn component_oauth_refresh(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, COMPONENT_OAUTH2_REFRESH_TOKEN, &q, |w, p, now| {
        w.component_oauth_refresh(p.0, now)
    })
    .await
}

/// `GET /sns/userinfo`: a user's web token; an account's token is not one
/// (40001).
async fn sns_userinfo(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, SNS_USERINFO, &q, |w, p, now| {
        w.userinfo(p.get("access_token"), p.get("openid"), now)
    })
    .await
}

async fn sns_auth(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, SNS_AUTH, &q, |w, p, now| {
        w.sns_auth(p.get("access_token"), p.get("openid"), now)
    })
    .await
}

async fn checksession(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    query_api(&s, CHECKSESSION, &q, |w, p, now| w.checksession(p.0, now)).await
}

/// `open.weixin.qq.com/connect/oauth2/authorize`, as the WeChat client
/// shows it: the user (`sim_user`, the simulator's stand-in for who holds
/// the phone; `user1` by default) consents at once and is sent to
/// `redirect_uri?code=…&state=…` (`&appid=…` too when a component asked).
/// A scope other than `snsapi_base` / `snsapi_userinfo` is 10005, a
/// missing redirect 10011, an unknown app 10016 (a page, not JSON).
async fn authorize_page(State(s): State<Arc<Shared>>, Query(q): Q) -> Response {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let (appid, redirect, scope, state) = (get("appid"), get("redirect_uri"), get("scope"), get("state"));
    let component = Some(get("component_appid")).filter(|c| !c.is_empty());
    let refuse = |code: u32, why: &str| (StatusCode::BAD_REQUEST, format!("{code}: {why}")).into_response();
    if get("response_type") != "code" {
        return refuse(10003, "response_type must be code");
    }
    if !(redirect.starts_with("http://") || redirect.starts_with("https://")) {
        return refuse(10011, "redirect_uri empty");
    }
    if scope.is_empty() || !scope.split(',').all(|s| s == "snsapi_base" || s == "snsapi_userinfo") {
        return refuse(10005, "no such scope");
    }
    let user = Some(get("sim_user")).filter(|u| !u.is_empty()).unwrap_or("user1");
    let now = s.now();
    let code = {
        let mut w = s.world.lock().unwrap();
        let known = match component {
            Some(c) => w.is_authorized(c, appid),
            None => w.has_app(appid),
        };
        if !known {
            return refuse(10016, "appid is not valid here");
        }
        w.oauth_code(appid, component, user, scope, now)
    };
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut location = format!("{redirect}{sep}code={}&state={}", enc(&code), enc(state));
    if component.is_some() {
        location.push_str(&format!("&appid={}", enc(appid)));
    }
    (StatusCode::FOUND, [(axum::http::header::LOCATION, location)]).into_response()
}
