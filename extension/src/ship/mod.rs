//! Shipping to CloudWatch Logs with `PutLogEvents`: batches within the service limits, the log
//! stream created on first use, retries with jittered exponential backoff on throttling and
//! server errors, and the EMF header so CloudWatch extracts the metrics. A destination CloudWatch
//! refuses outright (access denied, log group deleted) is a [`Refusal`], not an error to retry.
//!
//! Metrics travel as EMF log events, not `PutMetricData` (`aws-sdk-cloudwatch`): one call
//! carries logs and metrics, CloudWatch extracts the metrics asynchronously, and the function's
//! role needs no `cloudwatch:PutMetricData` on `*` (that action cannot be scoped to a resource).

pub mod batch;
pub(crate) mod environment;
pub(crate) mod freeze_aware;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatchlogs::operation::create_log_stream::CreateLogStreamError;
use aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsError;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;
use tokio::time::Instant;

use crate::buffer::{EventKind, LogEvent};

/// What one `ship` call achieved.
#[derive(Debug, Default)]
pub struct Shipment {
    /// Events CloudWatch stored.
    pub sent: usize,
    /// Events CloudWatch refused for good (too old, too new, malformed): counted, not retried.
    pub rejected: usize,
    /// Log lines dropped because CloudWatch refused the destination itself (`refusal`): the
    /// caller counts them as dropped. Retrying them would hold them, and everything behind
    /// them, until someone fixes a permission or re-creates a log group.
    pub dropped: usize,
    /// Why the destination was refused, when it was: then nothing more was tried.
    pub refusal: Option<Refusal>,
    /// Events not sent because CloudWatch could not be reached in time, and the metric documents
    /// of a refused shipment (small, and carrying the `LogsDropped` count): the caller keeps them.
    pub unsent: Vec<LogEvent>,
    /// The last error, when there are unsent or dropped events.
    pub error: Option<String>,
}

/// Why CloudWatch Logs refuses the destination as a whole: no batch will go until someone
/// changes something outside the extension, so retrying at once would only keep events waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The function's role may not write to the log group (`AccessDeniedException`), or its
    /// credentials are not accepted (unrecognised, expired, badly signed).
    AccessDenied,
    /// The log group does not exist (deleted): `CreateLogStream` answered `ResourceNotFound`.
    LogGroupMissing,
}

impl Refusal {
    /// A short name for diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "access denied",
            Self::LogGroupMissing => "log group missing",
        }
    }
}

/// Error codes of the AWS JSON protocol that mean the caller may not do this, or is not
/// believed to be who it says: a permission or credentials problem, not a passing one.
const DENIED_CODES: [&str; 8] = [
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
];

fn denied(code: Option<&str>) -> bool {
    code.is_some_and(|code| DENIED_CODES.contains(&code))
}

/// Where and how to ship.
pub struct Shipper {
    client: Client,
    log_group: String,
    log_stream: String,
    stream_ready: AtomicBool,
    /// A deadline every shipment obeys, set at SHUTDOWN: one already in flight (a background
    /// flush) stops there too, handing its events back to be counted, not lost.
    cutoff: tokio::sync::watch::Sender<Option<Instant>>,
}

enum PutError {
    /// Worth another try later (throttling, server errors, network, deadline, missing stream).
    Retryable(String),
    /// CloudWatch will never accept this batch.
    Rejected(String),
    /// CloudWatch refuses the destination itself; the message says how.
    Refused(Refusal, String),
}

/// The HTTPS client of every AWS call: rustls on ring, a lighter TLS stack than the SDK's
/// default (aws-lc) for a binary that must load fast.
pub(crate) fn https_client() -> aws_sdk_cloudwatchlogs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

impl Shipper {
    /// A client whose retry policy is the SDK's standard one (exponential backoff with full
    /// jitter on throttling, 5xx and network errors), tuned to stay short inside a Lambda, on
    /// `settings` (region, credentials, endpoint: from Lambda's environment variables in the
    /// extension).
    pub fn new(settings: aws_sdk_cloudwatchlogs::config::Builder, log_group: String, log_stream: String) -> Self {
        let config = settings
            .http_client(https_client())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(50))
                    .with_max_backoff(Duration::from_secs(1)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            )
            // Timeouts and backoff count only the time the extension runs: a call frozen with
            // its environment is not failed (and retried, storing its batch twice) at the thaw.
            .sleep_impl(freeze_aware::FreezeAwareSleep)
            .build();
        Self {
            client: Client::from_conf(config),
            log_group,
            log_stream,
            stream_ready: AtomicBool::new(false),
            cutoff: tokio::sync::watch::Sender::new(None),
        }
    }

    /// From now on no shipment, not even one in flight, runs past `at` (SHUTDOWN's deadline).
    pub fn cut_off_at(&self, at: Instant) {
        self.cutoff.send_replace(Some(at));
    }

    /// The log group it ships to.
    pub fn log_group(&self) -> &str {
        &self.log_group
    }

    /// The log stream it ships to.
    pub fn log_stream(&self) -> &str {
        &self.log_stream
    }

    /// Ships the events in as few calls as the limits allow, in time order. Stops at the first
    /// batch that cannot be delivered (or at `deadline`) and hands the rest back.
    pub async fn ship(&self, events: Vec<LogEvent>, deadline: Option<Instant>) -> Shipment {
        let mut shipment = Shipment::default();
        let batches = batch::into_batches(events.into_iter().map(batch::fit).collect());
        let mut batches = batches.into_iter();
        while let Some(batch) = batches.next() {
            match self.put(&batch, deadline).await {
                Ok(rejected) => {
                    shipment.sent += batch.len() - rejected;
                    shipment.rejected += rejected;
                }
                Err(PutError::Rejected(error)) => {
                    tracing::error!(events = batch.len(), %error, "CloudWatch Logs refused a batch");
                    shipment.rejected += batch.len();
                }
                Err(PutError::Retryable(error)) => {
                    shipment.unsent.extend(batch);
                    shipment.unsent.extend(batches.by_ref().flatten());
                    shipment.error = Some(error);
                }
                Err(PutError::Refused(refusal, error)) => {
                    // Every later batch goes to the same place: none is tried.
                    for event in batch.into_iter().chain(batches.by_ref().flatten()) {
                        match event.kind {
                            EventKind::Log => shipment.dropped += 1,
                            EventKind::Metrics => shipment.unsent.push(event),
                        }
                    }
                    shipment.refusal = Some(refusal);
                    shipment.error = Some(error);
                }
            }
        }
        shipment
    }

    async fn put(&self, batch: &[LogEvent], deadline: Option<Instant>) -> Result<usize, PutError> {
        if !self.stream_ready.load(Ordering::Acquire) {
            within(deadline, &self.cutoff, self.create_stream()).await??;
        }
        match within(deadline, &self.cutoff, self.put_once(batch)).await? {
            Err(PutError::Retryable(error)) if !self.stream_ready.load(Ordering::Acquire) => {
                // The stream vanished (deleted by hand, or a retention sweep): create it again.
                // If its group went with it, that is where the refusal comes from.
                within(deadline, &self.cutoff, self.create_stream()).await??;
                within(deadline, &self.cutoff, self.put_once(batch)).await?.map_err(|again| match again {
                    PutError::Retryable(_) => PutError::Retryable(error),
                    other => other,
                })
            }
            other => other,
        }
    }

    async fn put_once(&self, batch: &[LogEvent]) -> Result<usize, PutError> {
        let events = batch
            .iter()
            .map(|e| InputLogEvent::builder().timestamp(e.timestamp_ms).message(e.message.clone()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PutError::Rejected(e.to_string()))?;
        let result = self
            .client
            .put_log_events()
            .log_group_name(&self.log_group)
            .log_stream_name(&self.log_stream)
            .set_log_events(Some(events))
            .customize()
            .mutate_request(|request| {
                // Tells CloudWatch to extract metrics from the EMF documents in the batch.
                request.headers_mut().insert("x-amzn-logs-format", "json/emf");
            })
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.rejected_log_events_info().map_or(0, |info| {
                let len = batch.len() as i64;
                let too_old = info.too_old_log_event_end_index().map_or(-1, i64::from);
                let expired = info.expired_log_event_end_index().map_or(-1, i64::from);
                let too_new = info.too_new_log_event_start_index().map_or(len, i64::from);
                let old_end = too_old.max(expired) + 1;
                let rejected = (old_end.clamp(0, len) + (len - too_new.clamp(old_end.clamp(0, len), len))) as usize;
                tracing::warn!(rejected, too_old, expired, too_new, "CloudWatch Logs rejected events by time");
                rejected
            })),
            Err(error) => {
                let service = error.as_service_error();
                if service.is_some_and(PutLogEventsError::is_resource_not_found_exception) {
                    // The stream or its group: creating the stream tells which.
                    self.stream_ready.store(false, Ordering::Release);
                    return Err(PutError::Retryable("log stream not found".into()));
                }
                let message = format!("{}", DisplayErrorContext(&error));
                if service.is_some_and(PutLogEventsError::is_invalid_parameter_exception) {
                    return Err(PutError::Rejected(message));
                }
                if denied(service.and_then(ProvideErrorMetadata::code)) {
                    return Err(PutError::Refused(Refusal::AccessDenied, message));
                }
                Err(PutError::Retryable(message))
            }
        }
    }

    async fn create_stream(&self) -> Result<(), PutError> {
        let result = self
            .client
            .create_log_stream()
            .log_group_name(&self.log_group)
            .log_stream_name(&self.log_stream)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(error)
                if error.as_service_error().is_some_and(CreateLogStreamError::is_resource_already_exists_exception) => {
            }
            Err(error) => {
                let message = format!(
                    "cannot create log stream {} in {}: {}",
                    self.log_stream,
                    self.log_group,
                    DisplayErrorContext(&error)
                );
                let service = error.as_service_error();
                return Err(if service.is_some_and(CreateLogStreamError::is_resource_not_found_exception) {
                    PutError::Refused(Refusal::LogGroupMissing, message)
                } else if denied(service.and_then(ProvideErrorMetadata::code)) {
                    PutError::Refused(Refusal::AccessDenied, message)
                } else {
                    PutError::Retryable(message)
                });
            }
        }
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }
}

/// Runs `work` until `deadline` or the shipper's cutoff, whichever comes first.
async fn within<T>(
    deadline: Option<Instant>,
    cutoff: &tokio::sync::watch::Sender<Option<Instant>>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, PutError> {
    let mut cutoff = cutoff.subscribe();
    let cut = async move {
        loop {
            let at = *cutoff.borrow_and_update();
            if let Some(at) = at {
                tokio::time::sleep_until(at).await;
                return;
            }
            if cutoff.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let deadline = async move {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = work => Ok(result),
        () = deadline => Err(PutError::Retryable("deadline reached".into())),
        () = cut => Err(PutError::Retryable("shutdown deadline reached".into())),
    }
}
