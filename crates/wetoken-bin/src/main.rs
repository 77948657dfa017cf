//! `wetoken`: the WeChat credential central-control server (SPEC §8).
//!
//! Exit status: 0 success, 1 runtime error, 2 bad usage. Errors go to stderr
//! as one line starting with `error:`.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use wetoken::server::{self, CliError, Settings};

#[derive(Parser)]
#[command(
    name = "wetoken",
    version,
    about = "WeChat credential central-control server (中控服务器)"
)]
struct Cli {
    /// Settings file (wetoken.toml); WETOKEN_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and keep every credential fresh.
    Serve {
        /// Run against an in-process WeChat simulator with a demo account.
        #[arg(long)]
        sandbox: bool,
    },
    /// Install or upgrade the database schema (idempotent).
    InstallSchema {
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print the DDL instead of applying it.
        #[arg(long)]
        print: bool,
    },
    /// Manage accounts.
    #[command(subcommand)]
    Account(Box<AccountCommand>),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Read credentials.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Re-seal every stored secret and value under WETOKEN_MASTER_KEY (after
    /// a rotation, with the previous key in WETOKEN_OLD_MASTER_KEYS). Safe to
    /// interrupt and run again.
    Rekey,
    /// Manage webhooks.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Print events, one JSON record a line, oldest first.
    Events {
        /// Start after this event id.
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        /// Only events of this type pattern, e.g. component.* or wetoken.*
        #[arg(long = "type", value_name = "PATTERN")]
        kind: Option<String>,
        /// Keep printing new events as they come (until interrupted).
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Add a webhook; prints its signing secret alone (shown this once).
    Add {
        #[arg(long)]
        name: String,
        /// http or https URL events are posted to.
        #[arg(long)]
        url: String,
        /// Event type patterns, comma-separated (default: every event).
        #[arg(long, value_delimiter = ',', default_value = "*")]
        events: Vec<String>,
        /// Account patterns, comma-separated (default: every account).
        #[arg(long, value_delimiter = ',')]
        accounts: Option<Vec<String>>,
        /// json (signed event records), wechat (the original callback
        /// re-posted), wechat_plain (a user's message as WeChat posts it in
        /// plaintext mode, signed with the webhook's secret as the token) or
        /// wecom_bot (a WeCom group-robot message).
        #[arg(long, default_value = "json")]
        format: String,
        /// The one webhook that answers users' messages while WeChat waits
        /// (SPEC §14): at most one covers any account.
        #[arg(long)]
        reply: bool,
    },
    /// One webhook per line: name, format, url, events, accounts.
    List,
    /// Delete a webhook and its deliveries.
    Rm { name: String },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add an account: account add mp --appid … --secret …
    Add(Box<AddArgs>),
    /// One account per line, starting with its id.
    List,
    /// One account as JSON.
    Show { id: String },
    /// Delete an account and its credentials.
    Rm { id: String },
}

/// The fields of POST /v1/accounts, as flags.
#[derive(Args)]
pub struct AddArgs {
    /// mp, work, component, authorizer, suite, provider or corp.
    pub kind: String,
    #[arg(long)]
    pub appid: Option<String>,
    #[arg(long)]
    pub secret: Option<String>,
    /// stable (default) or classic.
    #[arg(long)]
    pub token_api: Option<String>,
    #[arg(long)]
    pub corpid: Option<String>,
    #[arg(long)]
    pub agentid: Option<String>,
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long)]
    pub aes_key: Option<String>,
    #[arg(long)]
    pub suite_id: Option<String>,
    #[arg(long)]
    pub component_appid: Option<String>,
    #[arg(long)]
    pub refresh_token: Option<String>,
    #[arg(long)]
    pub permanent_code: Option<String>,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a client key; prints the key alone.
    Create {
        #[arg(long)]
        name: String,
        /// Account patterns, comma-separated: *, mp:wx1, component:wxc/*
        #[arg(long, value_delimiter = ',', required = true)]
        accounts: Vec<String>,
        /// A key that cannot read tokens or tickets (SPEC §6 token-free calls).
        #[arg(long)]
        no_tokens: bool,
        /// WeChat paths it may call through /proxy/, comma-separated:
        /// /cgi-bin/message/*,/wxa/* (default: every path).
        #[arg(long, value_delimiter = ',')]
        paths: Option<Vec<String>>,
    },
    /// One key per line: name and patterns.
    List,
    /// Delete a key.
    Rm { name: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a credential, refreshing it if needed.
    Get {
        id: String,
        /// access_token (default), jsapi_ticket, wx_card_ticket, agent_ticket…
        cred: Option<String>,
        /// Print the JSON of the HTTP API instead of the bare value.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    let settings = match Settings::load(cli.config.as_deref(), |n| std::env::var(n).ok()) {
        Ok(s) => s,
        Err(e) => return fail(CliError::Usage(e)),
    };
    init_tracing(&settings.log);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(CliError::Runtime(e.to_string())),
    };
    match rt.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), CliError> {
    match command {
        Command::Serve { sandbox } => {
            let listening = |s: &server::Serving| {
                println!("wetoken listening on http://{}", s.addr);
                println!("console: {}/console/", s.public_url);
            };
            server::run(settings, sandbox, listening, server::serve::signalled()).await
        }
        Command::InstallSchema { database_url, print } => commands::install_schema(settings, database_url, print).await,
        Command::Account(c) => commands::account(settings, *c).await,
        Command::Key(c) => commands::key(settings, c).await,
        Command::Token(c) => commands::token(settings, c).await,
        Command::Rekey => commands::rekey(settings).await,
        Command::Webhook(c) => commands::webhook(settings, c).await,
        Command::Events { after, kind, follow } => commands::events(settings, after, kind, follow).await,
    }
}

fn fail(e: CliError) -> ExitCode {
    let (msg, code) = match e {
        CliError::Usage(m) => (m, 2),
        CliError::Runtime(m) => (m, 1),
    };
    eprintln!("error: {}", msg.lines().next().unwrap_or_default());
    ExitCode::from(code)
}

/// Help and version go to stdout with status 0; any other parse error is
/// one line on stderr and status 2.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => fail(CliError::Usage(
            "a command is required (serve, install-schema, account, key, token, rekey, webhook, events); see wetoken --help".into(),
        )),
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            fail(CliError::Usage(format!(
                "{}; see wetoken --help",
                first.trim_start_matches("error: ")
            )))
        }
    }
}

/// Logs to stderr by `WETOKEN_LOG`; the database driver's own notices
/// (PostgreSQL's "relation … already exists, skipping" and the like) only
/// at warn and above, unless the filter names `sqlx` itself.
fn init_tracing(filter: &str) {
    let filter = if filter.contains("sqlx") {
        filter.to_owned()
    } else {
        format!("{filter},sqlx=warn")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
