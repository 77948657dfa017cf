//! What WeChat and WeCom push to a callback URL: encrypted, signed
//! messages (verify and suite tickets, authorization and install events).

use super::*;

pub(crate) fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Encrypts, signs and POSTs a message to a component's callback URL, as the
/// Open Platform does (`<AppId>` envelope, `signature` and `encrypt_type` too).
pub(crate) async fn push(shared: &Shared, component: &str, callback_url: &str, message: &str) -> Result<u16, String> {
    let app = shared.component(component)?;
    send_push(
        shared,
        (&app.token, &app.aes_key, component),
        "AppId",
        callback_url,
        message,
        true,
    )
    .await
}

/// Encrypts, signs and POSTs a message to a suite's callback URL, as WeCom
/// does (`<ToUserName>` envelope, msg_signature only).
pub(crate) async fn push_to_suite(
    shared: &Shared,
    suite_id: &str,
    callback_url: &str,
    message: &str,
) -> Result<u16, String> {
    let app = shared.suite(suite_id)?;
    send_push(
        shared,
        (&app.token, &app.aes_key, suite_id),
        "ToUserName",
        callback_url,
        message,
        false,
    )
    .await
}

pub(crate) async fn send_push(
    shared: &Shared,
    (token, aes_key, receive_id): (&str, &str, &str),
    outer: &str,
    callback_url: &str,
    message: &str,
    open_platform: bool,
) -> Result<u16, String> {
    let crypt = wetoken_core::msgcrypt::MsgCrypt::new(token, aes_key, receive_id).map_err(|e| e.to_string())?;
    let timestamp = (shared.now() / 1000).to_string();
    let nonce = rand::random::<u32>().to_string();
    let (msg_signature, body) = crypt.seal_push(outer, message, &timestamp, &nonce);
    let mut query = vec![
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
        ("msg_signature", msg_signature),
    ];
    if open_platform {
        query.push((
            "signature",
            wetoken_core::msgcrypt::sha1_sorted(&[token, &timestamp, &nonce]),
        ));
        query.push(("encrypt_type", "aes".into()));
    }
    let resp = http()
        .post(callback_url)
        .query(&query)
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status == 200 && text != "success" {
        return Err(format!("the callback answered {text:?} instead of success"));
    }
    Ok(status)
}

pub(crate) async fn push_verify_ticket(
    shared: &Shared,
    component: &str,
    callback_url: &str,
) -> Result<(String, u16), String> {
    let now = shared.now();
    let ticket = shared
        .world
        .lock()
        .unwrap()
        .new_verify_ticket(component, now)
        .ok_or("unknown component")?;
    let msg = format!(
        "<xml><AppId><![CDATA[{component}]]></AppId><CreateTime>{}</CreateTime>\
         <InfoType><![CDATA[component_verify_ticket]]></InfoType>\
         <ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>",
        now / 1000
    );
    let status = push(shared, component, callback_url, &msg).await?;
    Ok((ticket, status))
}

pub(crate) async fn unauthorize(
    shared: &Shared,
    component: &str,
    authorizer: &str,
    callback_url: &str,
) -> Result<u16, String> {
    let msg = format!(
        "<xml><AppId><![CDATA[{component}]]></AppId><CreateTime>{}</CreateTime>\
         <InfoType><![CDATA[unauthorized]]></InfoType><AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid></xml>",
        shared.now() / 1000
    );
    push(shared, component, callback_url, &msg).await
}

pub(crate) async fn authorize(
    shared: &Shared,
    component: &str,
    authorizer: &str,
    callback_url: Option<&str>,
) -> Result<String, String> {
    let now = shared.now();
    let code = shared.world.lock().unwrap().new_auth_code(component, authorizer, now);
    if let Some(url) = callback_url {
        let msg = format!(
            "<xml><AppId><![CDATA[{component}]]></AppId><CreateTime>{}</CreateTime>\
             <InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid>\
             <AuthorizationCode><![CDATA[{code}]]></AuthorizationCode>\
             <AuthorizationCodeExpiredTime>{}</AuthorizationCodeExpiredTime>\
             <PreAuthCode><![CDATA[preauthcode@@@sim]]></PreAuthCode></xml>",
            now / 1000,
            now / 1000 + 600
        );
        push(shared, component, url, &msg).await?;
    }
    Ok(code)
}
