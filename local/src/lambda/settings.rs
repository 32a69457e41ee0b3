//! How the emulated service runs functions: the region, credentials and endpoint it hands them,
//! idle spin-down, default concurrency, and who observes the platform.

use std::time::Duration;

use super::observe;

/// How the emulated service runs functions.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// AWS endpoint handed to functions as AWS_ENDPOINT_URL (the local moto server), if any.
    pub aws_endpoint_url: Option<String>,
    /// `AWS_REGION` of the functions.
    pub region: String,
    /// The credentials handed to functions (Lambda hands its role's).
    pub access_key_id: String,
    /// Their secret.
    pub secret_access_key: String,
    /// Their session token.
    pub session_token: String,
    /// An environment idle this long is spun down (SHUTDOWN reason SPINDOWN).
    pub idle_timeout: Duration,
    /// Concurrency when a function has no reserved concurrency.
    pub default_concurrency: u32,
    /// The account of the functions' ARNs.
    pub account_id: String,
    /// Freeze each environment between invocations, as Lambda does (SIGSTOP of every process
    /// group, SIGCONT for the next event). On by default; off to compare.
    pub freeze: bool,
    /// How long an init phase may take before it is retried inside the first invocation
    /// (Lambda's 10 s, [`super::INIT_LIMIT`]; shorter in tests).
    pub init_limit: Duration,
    /// How long the runtime has after its SIGTERM before it is killed, when extensions are
    /// registered (Lambda's 300 ms, [`super::SHUTDOWN_RUNTIME_GRACE`]; a test whose runtime must
    /// be seen answering its SIGTERM on a loaded machine gives it longer).
    pub shutdown_runtime_grace: Duration,
    /// Receives the platform's timelines of inits and invocations (the benchmark listens).
    pub observer: Option<observe::Observer>,
    /// Where the `AWS/Lambda` metrics go (Invocations, Errors, Throttles, Duration,
    /// ConcurrentExecutions per function); none are recorded without it.
    pub metrics: Option<crate::cloudwatch::MetricSink>,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        Self {
            aws_endpoint_url: None,
            region: "us-east-1".into(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: "testing".into(),
            idle_timeout: Duration::from_secs(300),
            default_concurrency: 10,
            account_id: "123456789012".into(),
            freeze: true,
            init_limit: super::INIT_LIMIT,
            shutdown_runtime_grace: super::SHUTDOWN_RUNTIME_GRACE,
            observer: None,
            metrics: None,
        }
    }
}
