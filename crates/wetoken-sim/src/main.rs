//! `wetoken-sim`: the WeChat simulator as a standalone server.

use clap::Parser;
use wetoken_sim::{Sim, SimConfig};

#[derive(Parser)]
#[command(about = "A faithful WeChat API simulator (token rotation, grace, stable_token, tickets, quotas, faults)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: std::net::SocketAddr,
    /// An app as APPID:SECRET; repeatable.
    #[arg(long = "app")]
    apps: Vec<String>,
    /// Seconds a replaced token keeps working.
    #[arg(long, default_value_t = 300)]
    grace_secs: i64,
    /// expires_in of new tokens.
    #[arg(long, default_value_t = 7200)]
    token_ttl_secs: i64,
    /// Token calls per appid per endpoint before 45009.
    #[arg(long, default_value_t = 2000)]
    daily_quota: u32,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let cfg = SimConfig {
        grace_secs: args.grace_secs,
        token_ttl_secs: args.token_ttl_secs,
        daily_quota: args.daily_quota,
        ..SimConfig::default()
    };
    let sim = match Sim::start_on(args.listen, cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    for app in &args.apps {
        let Some((appid, secret)) = app.split_once(':') else {
            eprintln!("error: --app takes APPID:SECRET");
            std::process::exit(2);
        };
        sim.add_app(appid, secret);
    }
    println!("wetoken-sim listening on {}", sim.url());
    let _ = tokio::signal::ctrl_c().await;
}
