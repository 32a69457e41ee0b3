//! The extension binary: read the configuration, run until SHUTDOWN.

use books_telemetry::{config, lifecycle};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = config::Config::from_env();
    let level = config.as_ref().map(|c| c.log_level).unwrap_or(tracing::Level::WARN);
    // Diagnostics go to stderr as JSON lines (stdout is not ours to fill).
    tracing_subscriber::fmt().json().with_max_level(level).with_writer(std::io::stderr).with_current_span(false).init();
    let result = match config {
        Ok(config) => lifecycle::run(config).await,
        Err(error) => lifecycle::run_disabled(error).await,
    };
    if let Err(error) = result {
        tracing::error!(%error, "books-telemetry stopped");
        std::process::exit(1);
    }
}
