//! The `Sim` handle's side of users signing in: what their phones do
//! (`wx.login`, consenting on the web authorization page), what WeChat
//! holds for them, and the simulator's clock.

use super::*;

impl Sim {
    /// `wx.login` by `user` in the Mini Program `appid`: a code (five
    /// minutes, single use).
    pub fn login(&self, appid: &str, user: &str) -> String {
        let now = self.shared.now();
        self.shared.world.lock().unwrap().login(appid, user, now)
    }

    /// `user` consents on `appid`'s web authorization page for `scope`:
    /// the code the page redirects with.
    pub fn web_code(&self, appid: &str, user: &str, scope: &str) -> String {
        let now = self.shared.now();
        self.shared
            .world
            .lock()
            .unwrap()
            .oauth_code(appid, None, user, scope, now)
    }

    /// The same on a page a component opened for its authorizer `appid`.
    pub fn component_web_code(&self, component: &str, appid: &str, user: &str, scope: &str) -> String {
        let now = self.shared.now();
        self.shared
            .world
            .lock()
            .unwrap()
            .oauth_code(appid, Some(component), user, scope, now)
    }

    /// Binds `appid` to an Open Platform account: its users get unionids.
    pub fn bind_unionid(&self, appid: &str, open_account: &str) {
        self.shared.world.lock().unwrap().bind_unionid(appid, open_account);
    }

    /// Marks `user` of `appid` as one who only saw the snapshot page.
    pub fn snapshot_user(&self, appid: &str, user: &str) {
        self.shared.world.lock().unwrap().snapshot_user(appid, user);
    }

    /// `user`'s openid in `appid`.
    pub fn openid(&self, appid: &str, user: &str) -> String {
        rules::openid(appid, user)
    }

    /// The session key WeChat holds now for `user` of `appid`.
    pub fn session_key(&self, appid: &str, user: &str) -> Option<String> {
        self.shared
            .world
            .lock()
            .unwrap()
            .session_key(appid, &rules::openid(appid, user))
    }

    /// What the Mini Program gets to send its server for decryption:
    /// `data` with WeChat's watermark, sealed under the user's session key,
    /// as `(encrypted_data, iv)`. `None` before the user's first login.
    pub fn encrypted_user_data(&self, appid: &str, user: &str, data: &Value) -> Option<(String, String)> {
        let now = self.shared.now();
        self.shared
            .world
            .lock()
            .unwrap()
            .encrypted_user_data(appid, user, data, now)
    }

    /// Moves the simulator's clock ahead (codes, tokens and limits age).
    pub fn advance(&self, by: Duration) {
        self.shared.ahead_ms.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}
