//! The extension's life: register for INVOKE and SHUTDOWN with the `lambda-extension` crate,
//! subscribe to the Telemetry API ourselves (the crate subscribes at schema 2022-07-01, where
//! function records must be strings, and fails a whole batch on one unknown record), then hand
//! each lifecycle event to the flusher.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{Method, Request};
use http_body_util::BodyExt;
use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{build_request, Client};
use telemetry_schema::subscription::{
    Buffering, Destination, Protocol, SubscribeRequest, API_VERSION, MAX_BYTES, MAX_ITEMS,
};
use telemetry_schema::StreamType;
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::flush::Flusher;
use crate::pipeline::Pipeline;
use crate::ship::Shipper;
use crate::telemetry::{listener, SCHEMA_VERSION};

/// An error of the Extensions API client (the `lambda-extension` crate's).
type ApiError = lambda_extension::Error;

/// Why the extension stopped before SHUTDOWN.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Telemetry API listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The Extensions API refused or failed (registration, next event).
    #[error("Extensions API: {0}")]
    ExtensionsApi(ApiError),
    /// The Telemetry API listener stopped.
    #[error("the telemetry listener stopped")]
    ListenerStopped,
    /// The pipeline's consumer stopped (a panic, or its queue closed): nothing would be shipped
    /// any more, so the extension ends and Lambda starts a fresh environment.
    #[error("the telemetry pipeline stopped{}", if *.panicked { " on a panic" } else { "" })]
    PipelineStopped {
        /// Whether it panicked.
        panicked: bool,
    },
}

impl Error {
    /// The `errorType` reported to the Extensions API (`Extension.<Reason>`).
    fn error_type(&self) -> &'static str {
        match self {
            Self::Listen { .. } => "Extension.Listen",
            Self::ExtensionsApi(_) => "Extension.ExtensionsApi",
            Self::ListenerStopped => "Extension.ListenerStopped",
            Self::PipelineStopped { .. } => "Extension.PipelineStopped",
        }
    }
}

/// How long the extension may try to ship what it holds when its pipeline stopped.
const LAST_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits until one of the extension's long-lived tasks ends (neither ever should) and says
/// which. Their handles are kept for this: a task whose handle is dropped dies silently.
async fn stopped(serving: JoinHandle<()>, consuming: JoinHandle<()>) -> Error {
    tokio::select! {
        _ = serving => Error::ListenerStopped,
        ended = consuming => Error::PipelineStopped { panicked: ended.is_err_and(|e| e.is_panic()) },
    }
}

/// The Telemetry API streams we take.
pub(crate) const TELEMETRY_TYPES: [StreamType; 3] = [StreamType::Platform, StreamType::Function, StreamType::Extension];

/// The flusher, made once by whoever needs it first: building the CloudWatch Logs client
/// (credentials, TLS roots) takes milliseconds, which Lambda would add to every cold start if
/// it came before registration (the runtime starts once every extension has registered).
struct LateFlusher {
    cell: OnceCell<Arc<Flusher>>,
    pipeline: Arc<Pipeline>,
    config: Config,
}

impl LateFlusher {
    async fn get(&self) -> Arc<Flusher> {
        let made = self.cell.get_or_init(|| async {
            let (group, stream) = (self.config.log_group.clone(), self.config.log_stream.clone());
            let shipper = move || {
                let settings = crate::ship::environment::client_settings(|name| std::env::var(name).ok());
                Shipper::new(settings, group.clone(), stream.clone())
            };
            // On a thread of its own: the HTTPS client reads the system's TLS roots, and the
            // extension's one thread must stay free to subscribe and wait for its first event.
            let shipper = match tokio::task::spawn_blocking(shipper.clone()).await {
                Ok(shipper) => shipper,
                Err(_) => shipper(),
            };
            Arc::new(Flusher::new(Arc::clone(&self.pipeline), shipper, &self.config))
        });
        Arc::clone(made.await)
    }
}

/// Runs the extension until SHUTDOWN has been handled.
pub async fn run(config: Config) -> Result<(), Error> {
    let pipeline = Arc::new(Pipeline::new(&config));
    let listen = |source| Error::Listen { address: config.listen, source };
    let listener = listener::bind(config.listen).await.map_err(listen)?;
    let port = listener.local_addr().map_err(listen)?.port();
    let (deliveries, incoming) = listener::queue();
    let serving = tokio::spawn(listener::serve(listener, deliveries));
    let consuming = tokio::spawn(Arc::clone(&pipeline).consume(incoming));

    let flusher = Arc::new(LateFlusher { cell: OnceCell::new(), pipeline, config: config.clone() });
    let finished = Arc::new(Notify::new());
    let subscribed = Arc::new(AtomicBool::new(false));
    let processor = {
        let (flusher, finished, subscribed) = (Arc::clone(&flusher), Arc::clone(&finished), Arc::clone(&subscribed));
        service_fn(move |event: LambdaEvent| {
            let (flusher, finished) = (Arc::clone(&flusher), Arc::clone(&finished));
            let subscribed = subscribed.load(Ordering::Acquire);
            async move {
                match event.next {
                    NextEvent::Invoke(invoke) if subscribed => {
                        flusher.get().await.on_invoke(invoke.request_id, invoke.deadline_ms).await;
                    }
                    NextEvent::Invoke(_) => {}
                    NextEvent::Shutdown(shutdown) => {
                        if subscribed {
                            flusher.get().await.on_shutdown(shutdown.deadline_ms).await;
                        }
                        finished.notify_one();
                    }
                }
                Ok::<(), ApiError>(())
            }
        })
    };
    let extension = Extension::new()
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(processor)
        .register()
        .await
        .map_err(Error::ExtensionsApi)?;
    // Registered: the runtime may start. The client is made meanwhile, off the critical path.
    tokio::spawn({
        let flusher = Arc::clone(&flusher);
        async move { flusher.get().await }
    });
    let client = Client::builder().build().map_err(|e| Error::ExtensionsApi(e.into()))?;
    match subscribe(&client, &extension.extension_id, port, config.delivery_timeout_ms).await {
        Ok(()) => {
            subscribed.store(true, Ordering::Release);
            tracing::info!(port, log_group = %config.log_group, log_stream = %config.log_stream, "subscribed");
        }
        // Without telemetry there is nothing to ship; failing the init would take the function
        // down with us, so say it on stderr and stay out of the way.
        Err(error) => {
            tracing::error!(%error, "books-telemetry is disabled: the Telemetry API refused the subscription");
        }
    }
    let extension_id = extension.extension_id.clone();
    tokio::select! {
        biased;
        _ = finished.notified() => Ok(()),
        result = extension.run() => result.map_err(Error::ExtensionsApi),
        error = stopped(serving, consuming) => {
            if matches!(error, Error::PipelineStopped { .. }) {
                // What the buffer already holds can still go out; the records in the pipeline's
                // hands are lost with it.
                let until = tokio::time::Instant::now() + LAST_FLUSH;
                let _ = tokio::time::timeout_at(until, async { flusher.get().await.flush(Some(until)).await }).await;
            }
            report_error(&client, &extension_id, "exit", error.error_type(), &error).await;
            Err(error)
        }
    }
}

/// Why the Telemetry API subscription failed.
#[derive(Debug, thiserror::Error)]
enum SubscribeError {
    #[error("cannot reach the Telemetry API: {0}")]
    Call(ApiError),
    #[error("the Telemetry API refused the subscription ({status}): {body}")]
    Refused { status: http::StatusCode, body: String },
}

/// Subscribes the listener to the platform, function and extension streams.
async fn subscribe(client: &Client, extension_id: &str, port: u16, timeout_ms: u32) -> Result<(), SubscribeError> {
    let body = SubscribeRequest {
        schema_version: SCHEMA_VERSION,
        destination: Destination { protocol: Protocol::Http, uri: format!("http://sandbox.localdomain:{port}") },
        types: TELEMETRY_TYPES.to_vec(),
        buffering: Buffering {
            max_items: Some(MAX_ITEMS.default),
            max_bytes: Some(MAX_BYTES.default),
            timeout_ms: Some(timeout_ms.into()),
        },
    };
    let body = serde_json::to_vec(&body).map_err(|e| SubscribeError::Call(e.into()))?;
    let request: Request<Body> = build_request()
        .method(Method::PUT)
        .uri(format!("/{API_VERSION}/telemetry"))
        .header("Lambda-Extension-Identifier", extension_id)
        .header("Content-Type", "application/json")
        .body(Body::from(body))
        .map_err(|e| SubscribeError::Call(e.into()))?;
    let response = client.call(request).await.map_err(SubscribeError::Call)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    Err(SubscribeError::Refused { status, body: String::from_utf8_lossy(&text).into_owned() })
}

/// Tells Lambda about a fatal error (`phase` is `init` or `exit`), as the Extensions API asks.
async fn report_error(client: &Client, extension_id: &str, phase: &str, error_type: &str, error: &Error) {
    tracing::error!(%error, error_type, "fatal");
    let message = error.to_string();
    let body =
        lambda_extension::requests::ErrorRequest { error_message: &message, error_type, stack_trace: Vec::new() };
    let request = match phase {
        "init" => lambda_extension::requests::init_error(extension_id, error_type, Some(body)),
        _ => lambda_extension::requests::exit_error(extension_id, error_type, Some(body)),
    };
    match request {
        Ok(request) => {
            if let Err(e) = client.call(request).await {
                tracing::error!(error = %e, "could not report the error to the Extensions API");
            }
        }
        Err(e) => tracing::error!(error = %e, "could not build the error report"),
    }
}

/// Misconfigured: say so on stderr (it reaches the function's own log) and stay out of the way,
/// so the function keeps serving. A telemetry gap is better than an outage.
pub async fn run_disabled(error: ConfigError) -> Result<(), Error> {
    tracing::error!(%error, "books-telemetry is disabled until its configuration (BOOKS_TELEMETRY_*) is fixed");
    let finished = Arc::new(Notify::new());
    let processor = {
        let finished = Arc::clone(&finished);
        service_fn(move |event: LambdaEvent| {
            let finished = Arc::clone(&finished);
            async move {
                if let NextEvent::Shutdown(_) = event.next {
                    finished.notify_one();
                }
                Ok::<(), ApiError>(())
            }
        })
    };
    let extension = Extension::new()
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(processor)
        .register()
        .await
        .map_err(Error::ExtensionsApi)?;
    tokio::select! {
        biased;
        _ = finished.notified() => Ok(()),
        result = extension.run() => result.map_err(Error::ExtensionsApi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forever() -> JoinHandle<()> {
        tokio::spawn(std::future::pending())
    }

    #[tokio::test]
    async fn a_panic_in_the_pipeline_s_consumer_ends_the_extension() {
        let consuming = tokio::spawn(async { panic!("planted") });
        let error = stopped(forever(), consuming).await;
        assert!(matches!(error, Error::PipelineStopped { panicked: true }), "{error}");
        assert_eq!(error.to_string(), "the telemetry pipeline stopped on a panic");
        assert_eq!(error.error_type(), "Extension.PipelineStopped");
    }

    #[tokio::test]
    async fn a_consumer_whose_queue_closed_ends_the_extension() {
        let config = Config::from_lookup(|name| (name == "BOOKS_TELEMETRY_LOG_GROUP").then(|| "g".into())).unwrap();
        let pipeline = Arc::new(Pipeline::new(&config));
        let (deliveries, incoming) = listener::queue();
        let consuming = tokio::spawn(pipeline.consume(incoming));
        drop(deliveries);
        let error = stopped(forever(), consuming).await;
        assert!(matches!(error, Error::PipelineStopped { panicked: false }), "{error}");
    }

    #[tokio::test]
    async fn a_stopped_listener_ends_the_extension() {
        let error = stopped(tokio::spawn(async {}), forever()).await;
        assert!(matches!(error, Error::ListenerStopped), "{error}");
    }
}
