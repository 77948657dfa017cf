//! `install-schema`, `account`, `key`, `token`, `rekey`, `webhook`,
//! `events`: the same operations as the HTTP API, straight on the database.

use std::collections::HashMap;
use std::io::Write;

use wetoken_core::account::NewAccount;
use wetoken_core::domain::{AccountId, AccountKind, Credential, ParseError};
use wetoken_core::events::TypePattern;
use wetoken_core::keys::Pattern;
use wetoken_core::service::events::{EventFilter, WebhookRequest};
use wetoken_core::service::{AccountFilter, AccountView};
use wetoken_http::render;

use wetoken::server::{CliError, Settings, app};

use crate::{AccountCommand, AddArgs, KeyCommand, TokenCommand, WebhookCommand};
use wetoken::backend;

fn parse_id(s: &str) -> Result<AccountId, CliError> {
    s.parse()
        .map_err(|e: wetoken_core::domain::ParseError| CliError::Usage(e.0))
}

pub async fn install_schema(mut settings: Settings, url: Option<String>, print: bool) -> Result<(), CliError> {
    if let Some(url) = url {
        settings.database_url = url;
    }
    if print {
        print!(
            "{}",
            backend::schema_sql(&settings.database_url).map_err(CliError::Usage)?
        );
        return Ok(());
    }
    let store = backend::open(&settings.database_url).await.map_err(CliError::Runtime)?;
    store
        .migrate()
        .await
        .map_err(|e| CliError::Runtime(format!("cannot install the schema: {e}")))?;
    eprintln!("schema installed");
    Ok(())
}

impl AddArgs {
    /// The flags given, as the fields the one account parser reads (a flag
    /// the kind does not take is refused there).
    fn fields(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        for (k, v) in [
            ("appid", &self.appid),
            ("secret", &self.secret),
            ("token_api", &self.token_api),
            ("corpid", &self.corpid),
            ("agentid", &self.agentid),
            ("token", &self.token),
            ("aes_key", &self.aes_key),
            ("suite_id", &self.suite_id),
            ("component_appid", &self.component_appid),
            ("refresh_token", &self.refresh_token),
            ("permanent_code", &self.permanent_code),
        ] {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.clone());
            }
        }
        m
    }
}

pub async fn account(settings: Settings, cmd: AccountCommand) -> Result<(), CliError> {
    match cmd {
        AccountCommand::Add(args) => {
            let kind: AccountKind = args.kind.parse().map_err(|e: ParseError| CliError::Usage(e.0))?;
            let new = NewAccount::parse(kind, &args.fields(), &[]).map_err(|e| CliError::Usage(e.0))?;
            let service = app::service(&settings).await?;
            let account = service.accounts.create_account(new).await?;
            println!("{}", account.id);
        }
        AccountCommand::List => {
            // Every page in turn: memory stays bounded however many accounts.
            let service = app::service(&settings).await?;
            let mut out = std::io::stdout();
            let mut cursor: Option<String> = None;
            loop {
                let page = service
                    .accounts
                    .list_accounts(&AccountFilter::default(), cursor.as_deref(), 1000)
                    .await?;
                for a in &page.items {
                    if writeln!(out, "{}", summary(a)).is_err() {
                        return Ok(());
                    }
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        AccountCommand::Show { id } => {
            let id = parse_id(&id)?;
            let service = app::service(&settings).await?;
            let a = service.accounts.show_account(&id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&render::account(&a)).unwrap_or_default()
            );
        }
        AccountCommand::Rm { id } => {
            let id = parse_id(&id)?;
            let service = app::service(&settings).await?;
            service.accounts.delete_account(&id).await?;
        }
    }
    Ok(())
}

/// `id  kind  status  cred=expires_at …`
fn summary(a: &AccountView) -> String {
    let mut line = format!("{}\t{}\t{}", a.id, a.id.kind(), a.status.as_str());
    for c in &a.credentials {
        let state = match (&c.expires_at, &c.last_error) {
            (_, Some(e)) => format!("error {}", e.errcode),
            (Some(exp), _) => format!("until {}", render::rfc3339(*exp)),
            _ => "-".into(),
        };
        line.push_str(&format!("\t{}={state}", c.credential));
    }
    line
}

pub async fn key(settings: Settings, cmd: KeyCommand) -> Result<(), CliError> {
    match cmd {
        KeyCommand::Create {
            name,
            accounts,
            no_tokens,
            paths,
        } => {
            // Validate before touching the database: bad input changes nothing.
            wetoken_core::keys::check_name(&name).map_err(|e| CliError::Usage(e.0))?;
            let patterns = accounts
                .iter()
                .map(|p| Pattern::parse(p.trim()).map_err(|e| CliError::Usage(e.0)))
                .collect::<Result<Vec<_>, _>>()?;
            let service = app::service(&settings).await?;
            let paths = paths
                .map(|l| {
                    l.iter()
                        .map(|p| wetoken_core::keys::PathPattern::parse(p.trim()).map_err(|e| CliError::Usage(e.0)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            println!(
                "{}",
                service.custody.create_key(&name, &patterns, !no_tokens, paths).await?
            );
        }
        KeyCommand::List => {
            let service = app::service(&settings).await?;
            let mut cursor: Option<String> = None;
            loop {
                let page = service.custody.list_keys(cursor.as_deref(), 1000).await?;
                for k in &page.items {
                    let patterns: Vec<String> = k.accounts.iter().map(ToString::to_string).collect();
                    println!("{}\t{}\t{}", k.name, patterns.join(","), render::rfc3339(k.created_at));
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        KeyCommand::Rm { name } => app::service(&settings).await?.custody.delete_key(&name).await?,
    }
    Ok(())
}

pub async fn token(settings: Settings, cmd: TokenCommand) -> Result<(), CliError> {
    let TokenCommand::Get { id, cred, json } = cmd;
    let id = parse_id(&id)?;
    let cred: Credential = match cred {
        Some(c) => c
            .parse()
            .map_err(|e: wetoken_core::domain::ParseError| CliError::Usage(e.0))?,
        None => Credential::AccessToken,
    };
    if !id.owns(cred) {
        return Err(CliError::Usage(format!("{} accounts have no {cred}", id.kind())));
    }
    let service = app::service(&settings).await?;
    let issued = service.engine.get(&id, cred).await?;
    if json {
        let body = render::credential(cred, issued, service.engine.now_ms()).to_bytes();
        println!("{}", String::from_utf8_lossy(&body));
    } else {
        println!("{}", issued.value);
    }
    Ok(())
}

/// `wetoken rekey`: re-seals everything under the current key and says how
/// many values it re-sealed. Values that changed meanwhile or did not open
/// are left for the next run (exit 1 then, so a script notices).
pub async fn rekey(settings: Settings) -> Result<(), CliError> {
    let service = app::service(&settings).await?;
    let r = service.custody.rekey().await?;
    println!(
        "re-sealed {} values under master key {} ({} already were, {} left for another run)",
        r.resealed,
        service.custody.master_key_id(),
        r.current,
        r.skipped
    );
    if !r.retired.is_empty() {
        println!(
            "master keys no longer needed by this database: {} (they may be removed from WETOKEN_OLD_MASTER_KEYS)",
            r.retired.join(", ")
        );
    }
    if r.skipped > 0 {
        return Err(CliError::Runtime(format!(
            "{} values were not re-sealed (changed meanwhile, or sealed with a key not given): run `wetoken rekey` again",
            r.skipped
        )));
    }
    Ok(())
}

/// `wetoken webhook add|list|rm`.
pub async fn webhook(settings: Settings, cmd: WebhookCommand) -> Result<(), CliError> {
    match cmd {
        WebhookCommand::Add {
            name,
            url,
            events,
            accounts,
            format,
            reply,
        } => {
            let req = WebhookRequest {
                name,
                url,
                events: events.iter().map(|e| e.trim().to_owned()).collect(),
                accounts: accounts.map(|a| a.iter().map(|p| p.trim().to_owned()).collect()),
                format: Some(format),
                reply,
            };
            let service = app::service(&settings).await?;
            let (_, secret) = service.events.create_webhook(&req).await?;
            println!("{}", secret.expose());
        }
        WebhookCommand::List => {
            for w in app::service(&settings).await?.events.webhooks().await? {
                let events: Vec<&str> = w.events.iter().map(|p| p.as_str()).collect();
                let accounts: Vec<String> = w.accounts.iter().map(ToString::to_string).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    w.name,
                    w.format.as_str(),
                    w.url,
                    events.join(","),
                    accounts.join(",")
                );
            }
        }
        WebhookCommand::Rm { name } => app::service(&settings).await?.events.delete_webhook(&name).await?,
    }
    Ok(())
}

/// `wetoken events [--after ID] [--type P] [--follow]`: one event record a
/// line, oldest first; with `--follow`, new events as they are committed.
pub async fn events(
    settings: Settings,
    after: Option<i64>,
    kind: Option<String>,
    follow: bool,
) -> Result<(), CliError> {
    let kind = kind
        .map(|k| TypePattern::parse(&k).map_err(|e| CliError::Usage(format!("--type: {}", e.0))))
        .transpose()?;
    if after.is_some_and(|a| a < 0) {
        return Err(CliError::Usage("--after must be an event id".into()));
    }
    let service = app::service(&settings).await?;
    let mut filter = EventFilter {
        after: after.unwrap_or(0),
        kind,
        account: None,
        limit: 1000,
    };
    let mut out = std::io::stdout();
    loop {
        let page = service.events.events(&filter, |_| true).await?;
        for e in &page.events {
            // A closed pipe (`| head`) ends the command quietly.
            if writeln!(out, "{}", e.record()).is_err() {
                return Ok(());
            }
            filter.after = filter.after.max(e.id);
        }
        if out.flush().is_err() {
            return Ok(());
        }
        match page.next_cursor {
            Some(c) => filter.after = c,
            None if follow => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            None => return Ok(()),
        }
    }
}
