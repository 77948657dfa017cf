//! The console's two languages. Templates write English and call `c.t(…)`;
//! [`ZH`] holds the Chinese of every such text (a test reads the templates
//! and the code's labels and fails on any text without its translation).
//! The language is the `wetoken_lang` cookie (set by the switch in the
//! header), else the best of `Accept-Language`, else English.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;

use super::{LANG_COOKIE, cookie};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// The `lang` attribute of the page.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The cookie's value for this language.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The language a request asks for.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
            return l;
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map_or(Lang::En, from_accept_language)
    }

    /// `en` in this language (English itself when no translation exists).
    pub fn t(self, en: &str) -> &str {
        match self {
            Lang::En => en,
            Lang::Zh => ZH_MAP.get(en).copied().unwrap_or(en),
        }
    }
}

/// The highest-weighted of Chinese and English in an `Accept-Language`
/// value (`zh-CN,zh;q=0.9,en;q=0.8`); English on a tie or neither.
fn from_accept_language(v: &str) -> Lang {
    let mut best = (0.0f32, Lang::En);
    for item in v.split(',').take(32) {
        let mut it = item.split(';');
        let tag = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("zh") => Lang::Zh,
            Some("en") => Lang::En,
            _ => continue,
        };
        if q > best.0 {
            best = (q, lang);
        }
    }
    best.1
}

static ZH_MAP: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| ZH.iter().copied().collect());

/// English → Chinese.
pub const ZH: &[(&str, &str)] = &[
    ("Overview", "概览"),
    ("Accounts", "账号"),
    ("Open Platform & WeCom", "开放平台与企业微信"),
    ("Keys", "API 密钥"),
    ("Webhooks", "Webhook"),
    ("Events", "事件"),
    ("Diagnostics", "诊断"),
    ("Sign in", "登录"),
    ("Sign out", "退出登录"),
    ("Admin key", "管理员密钥"),
    (
        "The admin key is WETOKEN_ADMIN_KEY, or the admin.key file in the data directory.",
        "管理员密钥即 WETOKEN_ADMIN_KEY，或数据目录中的 admin.key 文件。",
    ),
    (
        "Keys are off (WETOKEN_AUTH=off): sign in without a key.",
        "密钥认证已关闭（WETOKEN_AUTH=off）：无需密钥即可登录。",
    ),
    ("Error", "错误"),
    ("That is not the admin key.", "这不是管理员密钥。"),
    (
        "This sign-in link was used already or has expired: sign in with the admin key.",
        "此登录链接已被使用或已过期：请使用管理员密钥登录。",
    ),
    ("WeChat answered", "微信返回"),
    ("Back", "返回"),
    ("Invalid request", "请求无效"),
    ("Refused", "已拒绝"),
    ("Not found", "未找到"),
    ("Conflict", "冲突"),
    ("Too soon", "操作过于频繁"),
    ("WeChat refused", "微信拒绝了请求"),
    ("Unavailable", "暂不可用"),
    ("Failing or blocked credentials", "刷新失败或被封禁的凭证"),
    ("None: every refresh succeeded.", "无：所有刷新均成功。"),
    ("Expiring without a refresh", "即将过期但尚未刷新"),
    ("None: the refresher is on time.", "无：刷新均按时进行。"),
    ("Stale tickets", "过期未推送的票据"),
    ("None: WeChat pushes tickets on time.", "无：微信按时推送票据。"),
    ("Recent events", "最近事件"),
    ("No events yet.", "暂无事件。"),
    ("All events", "全部事件"),
    ("Account", "账号"),
    ("Credential", "凭证"),
    ("Credentials", "凭证"),
    ("State", "状态"),
    ("Expires in", "剩余有效期"),
    ("Refreshed at", "获取时间"),
    ("Last error", "最近错误"),
    ("Blocked until", "封禁至"),
    ("Type", "类型"),
    ("At", "时间"),
    ("Data", "数据"),
    ("Kind", "类型"),
    ("All", "全部"),
    ("Status", "状态"),
    ("Id starts with", "ID 前缀"),
    ("Filter", "筛选"),
    ("Add an account", "添加账号"),
    ("No accounts match.", "没有符合条件的账号。"),
    ("Next page", "下一页"),
    ("Add", "添加"),
    ("default", "默认"),
    ("Created", "创建时间"),
    ("Refresh now", "立即刷新"),
    ("pushed by WeChat", "由微信推送"),
    (
        "A refresh without a stale value is a force refresh: at most one per credential per WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS.",
        "手动刷新即强制刷新：每个凭证在 WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS 内至多一次。",
    ),
    ("Authorizers", "授权方"),
    ("Authorize an account", "授权新账号"),
    ("Installed corps", "已安装的企业"),
    ("Quota, rid lookup, clear quota", "接口额度、rid 查询、额度清零"),
    ("Receiving URLs", "接收地址"),
    ("Last push", "最近一次推送"),
    (
        "Add this address to the account's IP whitelist:",
        "请将此地址加入该账号的 IP 白名单：",
    ),
    ("API security", "API 安全"),
    ("Symmetric key sn", "对称密钥编号"),
    ("Private key sn", "非对称密钥编号"),
    ("Signed calls", "签名的调用"),
    ("every call", "全部调用"),
    ("those WeChat requires (intracity)", "微信要求签名的调用（同城配送）"),
    ("Platform certificate", "平台证书"),
    (
        "The keys themselves are sealed and never shown.",
        "密钥本身加密保存，从不显示。",
    ),
    ("nothing yet", "尚无"),
    ("Message URL", "消息接收 URL"),
    ("Authorization event URL", "授权事件接收 URL"),
    ("Instruction URL", "指令回调 URL"),
    ("Data URL", "数据回调 URL"),
    (
        "Set these at WeChat; what WeChat pushes there is checked and opened with this account's token and aes_key.",
        "在微信后台填写以上地址；推送的内容用本账号的 token 与 aes_key 校验并解密。",
    ),
    ("Rotate a secret", "更换密钥"),
    (
        "Only the fields you fill are changed. Secrets are never shown.",
        "只修改填写了的字段。密钥永不显示。",
    ),
    ("unchanged", "不变"),
    ("Save", "保存"),
    ("Delete this account", "删除此账号"),
    (
        "Its credentials, and its authorizers or corps, are deleted too. Type the account id to confirm.",
        "其凭证及其授权方或企业也会一并删除。请输入账号 ID 以确认。",
    ),
    ("Delete", "删除"),
    ("Search", "搜索"),
    ("None yet.", "暂无。"),
    ("Added", "添加时间"),
    (
        "An administrator of the Official Account or Mini Program opens the link (PC) or scans the QR code with WeChat (H5). WeChat then sends them back to this server, which stores the authorizer.",
        "公众号或小程序的管理员打开链接（PC）或用微信扫描二维码（H5）。微信随后将其带回本服务器，由本服务器保存授权方。",
    ),
    ("Official Accounts and Mini Programs", "公众号和小程序"),
    ("Official Accounts only", "仅公众号"),
    ("Mini Programs only", "仅小程序"),
    ("optional: only this account may authorize", "可选：仅允许此账号授权"),
    ("optional: ids separated by |", "可选：以 | 分隔的类目 ID"),
    ("Generate links", "生成授权链接"),
    ("Authorization links", "授权链接"),
    (
        "Each link holds a fresh pre_auth_code: it works once, within 10 minutes.",
        "每个链接含一个新的 pre_auth_code：10 分钟内有效，仅能使用一次。",
    ),
    ("Copy", "复制"),
    ("QR code (H5 link): scan with WeChat", "二维码（H5 链接）：用微信扫描"),
    ("Third-party platforms (Open Platform)", "第三方平台（开放平台）"),
    ("WeCom third-party suites", "企业微信第三方应用"),
    ("New key", "新密钥"),
    (
        "This is the only time the key is shown. Copy it now: wetoken keeps only its hash.",
        "密钥仅显示这一次，请立即复制：wetoken 只保存其哈希。",
    ),
    ("Covers", "可访问"),
    ("Create a key", "创建密钥"),
    ("Name", "名称"),
    ("Accounts it covers", "可访问的账号"),
    (
        "one pattern a line or comma-separated: *, mp:wx1, component:wxc/*",
        "每行一个或以逗号分隔：*、mp:wx1、component:wxc/*",
    ),
    ("Create", "创建"),
    (
        "It may read tokens and tickets (untick for a key that only makes token-free calls)",
        "可读取 token 与 ticket（仅用于免 token 调用的密钥请取消勾选）",
    ),
    ("Reads tokens", "可读取 token"),
    ("Paths", "可调用的接口"),
    (
        "WeChat paths it may call through /proxy/ (optional, comma-separated: /cgi-bin/message/*, /wxa/*)",
        "可经 /proxy/ 调用的微信接口路径（可选，以逗号分隔：/cgi-bin/message/*、/wxa/*）",
    ),
    ("yes", "是"),
    ("no", "否"),
    ("confirm", "确认"),
    ("No client keys yet.", "暂无客户端密钥。"),
    ("New webhook", "新 Webhook"),
    (
        "This is the only time the signing secret is shown. Copy it now.",
        "签名密钥仅显示这一次，请立即复制。",
    ),
    ("Add a webhook", "添加 Webhook"),
    ("Event types", "事件类型"),
    (
        "comma-separated patterns: component.*, wetoken.*",
        "以逗号分隔的模式：component.*、wetoken.*",
    ),
    ("optional, comma-separated patterns", "可选，以逗号分隔的模式"),
    ("Format", "格式"),
    ("Deliveries", "投递记录"),
    ("No webhooks yet.", "暂无 Webhook。"),
    ("Event", "事件"),
    ("Attempts", "尝试次数"),
    ("Next attempt", "下次尝试"),
    ("Last answer", "最近响应"),
    ("Updated", "更新时间"),
    ("Retry", "重试"),
    ("No deliveries.", "暂无投递记录。"),
    ("After id", "起始 ID 之后"),
    (
        "Oldest first. Without an id to start after, the list starts at the latest events.",
        "按时间先后排列。未指定起始 ID 时，从最新的事件开始。",
    ),
    ("No events.", "暂无事件。"),
    (
        "Account (an Official Account / Mini Program, or an authorizer)",
        "账号（公众号/小程序，或授权方）",
    ),
    ("Open", "打开"),
    ("Quota of an API", "接口调用额度"),
    ("Ask WeChat", "向微信查询"),
    ("Look up a rid", "查询 rid"),
    (
        "WeChat ends an error message with rid: …; paste it to see the failed request.",
        "微信的错误信息以 rid: … 结尾；粘贴它即可查看失败的请求。",
    ),
    ("Look up", "查询"),
    ("Clear the daily quota", "接口调用次数清零"),
    (
        "WeChat allows 10 clears a month per account.",
        "微信允许每个账号每月清零 10 次。",
    ),
    ("Used this month", "本月已用"),
    (
        "I want to use one of this month's clears",
        "我确认使用本月的一次清零机会",
    ),
    ("Clear quota", "清零"),
    // flashes
    ("Created.", "已创建。"),
    ("Refreshed.", "已刷新。"),
    (
        "Saved. Credentials derived from the old secret were dropped.",
        "已保存。由旧密钥获取的凭证已丢弃。",
    ),
    ("Deleted.", "已删除。"),
    ("The delivery will be attempted again.", "将重新尝试投递。"),
    ("The quota was cleared.", "额度已清零。"),
    ("Signed out.", "已退出登录。"),
    // kinds
    ("Official Accounts & Mini Programs", "公众号与小程序"),
    ("WeCom apps", "企业微信自建应用"),
    ("Third-party platforms", "第三方平台"),
    ("Authorized accounts", "授权方账号"),
    ("WeCom suites", "企业微信第三方应用"),
    ("WeCom service providers", "企业微信服务商"),
    ("Corps of suites", "授权企业"),
    // statuses and states
    ("active", "正常"),
    ("needs_reauthorization", "需重新授权"),
    ("revoked", "已取消授权"),
    ("pending", "待投递"),
    ("delivered", "已投递"),
    ("failed", "失败"),
    ("healthy", "正常"),
    ("expiring", "即将过期"),
    ("expired", "已过期"),
    ("failing", "刷新失败"),
    ("blocked", "已封禁"),
    ("not fetched yet", "尚未获取"),
    ("not pushed yet", "尚未推送"),
    ("stale", "已过时"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_of_the_two() {
        assert_eq!(from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Lang::En);
        assert_eq!(from_accept_language("fr-FR, zh-TW;q=0.5"), Lang::Zh);
        assert_eq!(from_accept_language("fr-FR"), Lang::En);
        assert_eq!(from_accept_language(""), Lang::En);
        assert_eq!(from_accept_language("zh;q=abc"), Lang::Zh, "a bad weight counts as 1");
    }

    #[test]
    fn every_text_has_its_chinese() {
        let mut seen = std::collections::HashSet::new();
        for (en, zh) in ZH {
            assert!(seen.insert(*en), "{en:?} twice");
            assert!(!zh.is_empty());
        }
        // Every `c.t("…")` in the templates, and the labels the code passes.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/console");
        let mut texts: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for part in text.split("c.t(\"").skip(1) {
                texts.push(part.split("\")").next().unwrap().to_owned());
            }
        }
        assert!(texts.len() > 50, "the templates were read");
        texts.extend(super::super::view::LABELS.iter().map(|s| (*s).to_owned()));
        texts.extend(super::super::FLASHES.iter().map(|(_, m)| (*m).to_owned()));
        for t in texts {
            assert_ne!(Lang::Zh.t(&t), t, "no Chinese for {t:?}");
        }
    }
}
