//! Logging set-up shared by the functions: one JSON object per line on stdout, which Lambda
//! hands to the Telemetry API (and so to the `books-telemetry` extension).

use tracing_subscriber::EnvFilter;

use crate::config::vars;

/// Installs the JSON subscriber. The level filter comes from `BOOKS_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_env(vars::BOOKS_LOG).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(true)
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .init();
}
