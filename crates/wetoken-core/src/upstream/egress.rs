//! What WeChat's refusals of wetoken itself say (SPEC §16, contract-2 §D.3,
//! §D.4): the address it saw when the caller's IP is not whitelisted, a
//! secret that is frozen, wrong or missing, and an administrator's
//! confirmation of a risky call — so that each becomes one event an operator
//! can act on instead of a line in a log.

/// What kind of refusal an errcode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 40164 (Official Account / Mini Program), 61004 (Open Platform),
    /// 60020 (WeCom): the caller's address is not in the whitelist.
    IpNotWhitelisted,
    /// 40243 (frozen AppSecret), 40125 (wrong), 41004 (missing): only a
    /// change to the account helps.
    Misconfigured,
    /// 89501–89507: an administrator must confirm the call; the wait
    /// WeChat names, in seconds (0: retry later).
    NeedsConfirmation { wait_secs: i64 },
}

/// The refusal `errcode` is, if it is one of these.
pub fn refusal(errcode: i64) -> Option<Refusal> {
    match errcode {
        40164 | 61004 | 60020 => Some(Refusal::IpNotWhitelisted),
        40243 | 40125 | 41004 => Some(Refusal::Misconfigured),
        89506 => Some(Refusal::NeedsConfirmation { wait_secs: 86_400 }),
        89507 => Some(Refusal::NeedsConfirmation { wait_secs: 3_600 }),
        89501..=89505 => Some(Refusal::NeedsConfirmation { wait_secs: 0 }),
        _ => None,
    }
}

/// The address WeChat saw, from a whitelist refusal's errmsg:
/// `invalid ip 120.244.112.8 ipv6 ::ffff:120.244.112.8, not in whitelist`
/// (40164), `… requestIP: 49.73.28.245` (61004), `… from ip:
/// 115.227.127.185, more info …` (60020). Only text that reads as an IPv4
/// or IPv6 address is taken.
pub fn address_in(errmsg: &str) -> Option<String> {
    let after = |marker: &str| {
        errmsg
            .find(marker)
            .map(|i| errmsg[i + marker.len()..].trim_start())
            .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == ',').next())
    };
    ["invalid ip ", "requestIP:", "from ip:"]
        .iter()
        .filter_map(|m| after(m))
        .find_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_wechat_saw() {
        assert_eq!(
            address_in(
                "invalid ip 120.244.112.8 ipv6 ::ffff:120.244.112.8, not in whitelist rid: 5fa26c60-1a0ebdd5-32fd1cd0"
            )
            .as_deref(),
            Some("120.244.112.8")
        );
        assert_eq!(
            address_in("access clientip is not registered tips: requestIP: 49.73.28.245").as_deref(),
            Some("49.73.28.245")
        );
        assert_eq!(
            address_in(
                "not allow to access from your ip, hint: [1658286717354964018506079], from ip: 115.227.127.185, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
            )
            .as_deref(),
            Some("115.227.127.185")
        );
        assert_eq!(address_in("access clientip is not registered"), None);
        assert_eq!(address_in("invalid ip <script> ipv6 x, not in whitelist"), None);
    }

    #[test]
    fn which_refusals() {
        assert_eq!(refusal(40164), Some(Refusal::IpNotWhitelisted));
        assert_eq!(refusal(60020), Some(Refusal::IpNotWhitelisted));
        assert_eq!(refusal(40243), Some(Refusal::Misconfigured));
        assert_eq!(refusal(89506), Some(Refusal::NeedsConfirmation { wait_secs: 86_400 }));
        assert_eq!(refusal(89503), Some(Refusal::NeedsConfirmation { wait_secs: 0 }));
        assert_eq!(refusal(40001), None);
    }
}
