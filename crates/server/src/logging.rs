//! Structured log output on stderr: human-readable lines or JSON, per `[log]`.
//!
//! `RUST_LOG`, when set, overrides the configured level. Nothing here ever sees a
//! secret: secrets are `Secret<T>` and print as `[redacted]`.

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber; a second call is a no-op.
pub fn init(log: &Log) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
