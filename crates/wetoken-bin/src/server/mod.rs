//! The `wetoken` server as the binary runs it: settings (SPEC §7) read into
//! the library's [`crate::Builder`], and `serve` with its limits, scheduler,
//! deliveries and graceful stop. Here in the library so that the binary and
//! the tests that start a server in their own process run the same code.

pub mod app;
pub mod keyfiles;
pub mod serve;
pub mod settings;

pub use serve::{Serving, run};
pub use settings::Settings;

/// How a command failed: bad usage (exit 2) or at run time (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Runtime(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) => f.write_str(m),
        }
    }
}
