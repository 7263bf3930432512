//! Logging flags and set-up, named like Thanos's (`--log.level`, `--log.format`).

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Logfmt,
    Json,
}

#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Log filtering level.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, global = true)]
    pub level: LogLevel,
    /// Log format to use.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub format: LogFormat,
}

impl Default for LogArgs {
    fn default() -> Self {
        LogArgs {
            level: LogLevel::Info,
            format: LogFormat::Logfmt,
        }
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `--log.level` so a user
/// can turn on one module's debug logs. Logs go to stderr, keeping stdout for tool output.
pub fn init_logging(args: &LogArgs) {
    let level = match args.level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling twice) is harmless; ignore the error.
    let _ = match args.format {
        LogFormat::Logfmt => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
