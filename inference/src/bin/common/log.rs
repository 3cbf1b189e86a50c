//! The binaries' one log format: the library's `tracing` events as plain lines on stderr
//! (the message alone: no time, level or target), so that they read like the tools' own
//! messages. Each binary chooses what shows; this file is how it looks.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// `RUST_LOG`'s level when it is one, else info.
pub fn env_level() -> LevelFilter {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// Installs the plain stderr format for the events `filter` lets through.
pub fn init(filter: Targets) {
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .log_internal_errors(false)
                .with_target(false)
                .without_time()
                .with_level(false),
        )
        .with(filter)
        .init();
}
