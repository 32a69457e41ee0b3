//! The extension binary: read the configuration, run until SHUTDOWN.

use books_telemetry::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = Config::from_env();
    let level = config.as_ref().map(|c| c.log_level).unwrap_or(tracing::Level::WARN);
    // Diagnostics go to stderr as JSON lines (stdout is not ours to fill).
    tracing_subscriber::fmt().json().with_max_level(level).with_writer(std::io::stderr).with_current_span(false).init();
    let result = match config {
        Ok(config) => books_telemetry::run(config).await,
        Err(error) => books_telemetry::run_disabled(error).await,
    };
    if let Err(error) = result {
        tracing::error!(%error, "books-telemetry stopped");
        std::process::exit(1);
    }
}
