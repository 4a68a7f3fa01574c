//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `warn`).
//!
//! Colour escape codes are written only to a terminal, and never when
//! `NO_COLOR` is set (<https://no-color.org>), so redirected logs stay plain.

use std::io::IsTerminal;

/// Whether log lines may carry colour escape codes.
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Install the global subscriber once; later calls are no-ops.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr)
        .try_init();
}
