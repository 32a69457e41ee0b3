//! Configuration of the functions, read once at start-up from environment variables (the
//! names Terraform sets), with errors that say which variable is missing.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::{GetSecretValueError, GetSecretValueOutput};

use crate::http::{CursorKey, CursorKeyring, CursorKeys, RefreshPolicy};

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
    /// The Secrets Manager secret (ARN or name) holding the HMAC key of list cursors (query).
    pub const BOOKS_CURSOR_KEY_SECRET: &str = "BOOKS_CURSOR_KEY_SECRET";
    /// Service name in logs and metrics.
    pub const BOOKS_SERVICE: &str = "BOOKS_SERVICE";
    /// Log filter in `tracing_subscriber::EnvFilter` syntax, e.g. `info` or `books=debug`.
    pub const BOOKS_LOG: &str = "BOOKS_LOG";
}

/// How long one attempt of an AWS call may take before the SDK gives it up and retries it
/// (standard retries: three attempts; a transaction keeps its idempotency token across them).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// How long an AWS call may take with its retries: below the functions' 10 s timeout, so a
/// stalled dependency is answered as a 5xx problem, not by Lambda ending the invocation.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// The shared AWS configuration. Like every AWS SDK it honours `AWS_REGION`,
/// `AWS_ENDPOINT_URL` and the credential chain, so the local cloud needs no special path.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .load()
        .await
}

/// The timeouts of every AWS call the functions make: [`ATTEMPT_TIMEOUT`], [`OPERATION_TIMEOUT`].
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
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

/// The keys of list cursors in the Secrets Manager secret named by `BOOKS_CURSOR_KEY_SECRET`,
/// read when a list first needs them and again as [`RefreshPolicy::DEFAULT`] says
/// ([`read_cursor_keys`]). Only the variable is checked here: start-up makes no call.
pub fn cursor_keyring(aws: &aws_config::SdkConfig) -> Result<CursorKeyring, ConfigError> {
    Ok(secret_keyring(aws, required(vars::BOOKS_CURSOR_KEY_SECRET)?, RefreshPolicy::DEFAULT))
}

/// A keyring reading the secret `secret_id` as `policy` says.
pub fn secret_keyring(aws: &aws_config::SdkConfig, secret_id: String, policy: RefreshPolicy) -> CursorKeyring {
    let aws = aws.clone();
    let secret_id = std::sync::Arc::<str>::from(secret_id);
    CursorKeyring::new(policy, move || {
        let (aws, secret_id) = (aws.clone(), std::sync::Arc::clone(&secret_id));
        Box::pin(async move { read_cursor_keys(&aws, &secret_id).await })
    })
}

/// The keys of list cursors in a Secrets Manager secret: its `AWSCURRENT` version signs, its
/// `AWSPREVIOUS` version (the one the last rotation replaced; absent before the first) still
/// verifies. The values never pass through the environment, Terraform's state or a log; only
/// the keys' ids are logged.
pub async fn read_cursor_keys(aws: &aws_config::SdkConfig, secret_id: &str) -> Result<CursorKeys, ConfigError> {
    let problem = |problem: String| ConfigError { name: vars::BOOKS_CURSOR_KEY_SECRET, problem };
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let read = |stage: &'static str| client.get_secret_value().secret_id(secret_id).version_stage(stage).send();
    let (current, previous) = tokio::join!(read("AWSCURRENT"), read("AWSPREVIOUS"));
    let key = |output: GetSecretValueOutput, stage: &str| {
        let secret = match (output.secret_string(), output.secret_binary()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(binary)) => binary.as_ref().to_vec(),
            (None, None) => Vec::new(),
        };
        CursorKey::new(&secret).map_err(|err| problem(format!("the secret's {stage} value: {err}")))
    };
    let current = current.map_err(|err| {
        problem(format!("could not read the secret's AWSCURRENT value: {}", DisplayErrorContext(&err)))
    })?;
    let current = key(current, "AWSCURRENT")?;
    let previous = match previous.map_err(SdkError::into_service_error) {
        Ok(output) => Some(key(output, "AWSPREVIOUS")?),
        Err(GetSecretValueError::ResourceNotFoundException(_)) => None,
        Err(err) => {
            return Err(problem(format!(
                "could not read the secret's AWSPREVIOUS value: {}",
                DisplayErrorContext(&err)
            )))
        }
    };
    Ok(CursorKeys::new(current, previous))
}
