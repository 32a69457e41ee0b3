//! Configuration of the functions, read once at start-up from environment variables (the
//! names Terraform sets), with errors that say which variable is missing.

/// A required variable is missing or unusable; the process cannot start.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    /// The variable, one of [`vars`].
    pub name: &'static str,
    /// What is wrong with it ("is not set", "is empty", or a check of its value).
    pub problem: String,
}

/// The value of a required environment variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) => Err(ConfigError { name, problem: "is empty".to_owned() }),
        Err(_) => Err(ConfigError { name, problem: "is not set".to_owned() }),
    }
}

/// Names of the variables the functions read.
pub mod vars {
    /// Write model table (command).
    pub const BOOKS_TABLE: &str = "BOOKS_TABLE";
    /// Read model table (query, projector).
    pub const BOOKS_VIEW_TABLE: &str = "BOOKS_VIEW_TABLE";
    /// HMAC key of list cursors (query), at least 32 bytes.
    pub const BOOKS_CURSOR_KEY: &str = "BOOKS_CURSOR_KEY";
    /// Service name in logs and metrics.
    pub const BOOKS_SERVICE: &str = "BOOKS_SERVICE";
    /// Log filter in `tracing_subscriber::EnvFilter` syntax, e.g. `info` or `books=debug`.
    pub const BOOKS_LOG: &str = "BOOKS_LOG";
}

/// The shared AWS configuration. Like every AWS SDK it honours `AWS_REGION`,
/// `AWS_ENDPOINT_URL` and the credential chain, so the local cloud needs no special path.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).load().await
}

/// The SDK's HTTPS client on rustls with ring, the workspace's one TLS stack (see the
/// workspace manifest: the SDK's default, aws-lc, is not built).
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// A DynamoDB client on the shared configuration; build it once per process.
pub fn dynamodb(aws: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(aws)
}
