//! Sign-in with the admin key, sign-out, the language switch.

use super::*;

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SigninPage {
    c: Chrome,
    error: Option<String>,
    keys_off: bool,
    next: String,
}

fn signin_form(st: &AppState, c: Chrome, status: StatusCode, error: Option<String>, next: String) -> Response {
    let keys_off = !st.auth.enabled();
    html(
        status,
        &SigninPage {
            c,
            error,
            keys_off,
            next,
        },
    )
}

/// `GET /console/signin[?next=][&link=]`: the form, or a one-time link
/// redeemed.
pub async fn signin_page(State(st): State<AppState>, Anon(c): Anon, RawQuery(q): RawQuery) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    if let Some(l) = q.get("link") {
        return match st.service.console.redeem_sign_in_link(l).await {
            Ok(Some(s)) => see_with_cookies(&next, &[session_cookie(&st, &s.token, s.max_age_secs)]),
            Ok(None) => {
                let msg = c.t("This sign-in link was used already or has expired: sign in with the admin key.");
                let msg = msg.to_owned();
                signin_form(&st, c, StatusCode::FORBIDDEN, Some(msg), next)
            }
            Err(e) => error_page(c, e.into()),
        };
    }
    signin_form(&st, c, StatusCode::OK, None, next)
}

/// `POST /console/signin`: the admin key (any key with keys off) starts a
/// session.
pub async fn signin(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let c = Chrome::new(&parts, None);
    let form = match read_form(&parts, body, &st).await {
        Ok(f) => f,
        Err(e) => return error_page(c, e),
    };
    let next = safe_next(form.get("next").map(String::as_str));
    let key = form.get("key").map_or("", |k| k.trim());
    let admin = match st.auth.authenticate_key(key).await {
        Ok(p) => p.is_admin(),
        Err(wetoken_core::auth::AuthError::Unauthorized) => false,
        Err(e) => return error_page(c, e.into()),
    };
    if !admin {
        // A wrong sign-in counts against its source (SPEC §4).
        let source = parts.extensions.get::<crate::serve::Peer>().map(|p| p.0);
        if let e @ wetoken_core::auth::AuthError::Throttled { .. } = st.auth.failed(source) {
            return error_page(c, e.into());
        }
        let msg = c.t("That is not the admin key.").to_owned();
        return signin_form(&st, c, StatusCode::FORBIDDEN, Some(msg), next);
    }
    match st.service.console.start_session().await {
        Ok(s) => {
            tracing::info!("console: signed in");
            see_with_cookies(&next, &[session_cookie(&st, &s.token, s.max_age_secs)])
        }
        Err(e) => error_page(c, e.into()),
    }
}

/// `POST /console/signout`: the session ends everywhere.
pub async fn signout(State(st): State<AppState>, p: Posted) -> Response {
    if let Err(e) = st.service.console.end_session(&p.token).await {
        return error_page(p.c, e.into());
    }
    see_with_cookies("/console/signin?done=signed_out", &[session_cookie(&st, "", 0)])
}

/// `GET /console/lang/{en|zh}?back=`: remembers the choice in a cookie.
pub async fn set_lang(
    State(st): State<AppState>,
    Anon(c): Anon,
    Path(lang): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return error_page(c, ApiError::not_found("languages are en and zh"));
    };
    let secure = secure(&st);
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/console; SameSite=Lax; Max-Age=31536000{secure}",
        lang.code()
    );
    see_with_cookies(&safe_next(q.get("back").map(String::as_str)), &[cookie])
}
