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
use serde_json::json;
use tokio::sync::{mpsc, Notify, OnceCell};

use crate::config::Config;
use crate::flush::Flusher;
use crate::pipeline::Pipeline;
use crate::ship::Shipper;
use crate::telemetry::{listener, API_VERSION, SCHEMA_VERSION};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The Telemetry API streams we take.
pub const TELEMETRY_TYPES: [&str; 3] = ["platform", "function", "extension"];

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
            let load = || {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(crate::ship::https_client())
                    .load()
            };
            // On a thread of its own: reading TLS roots and configuration blocks, and the
            // extension's one thread must stay free to subscribe and wait for its first event.
            let runtime = tokio::runtime::Handle::current();
            let sdk = match tokio::task::spawn_blocking(move || runtime.block_on(load())).await {
                Ok(sdk) => sdk,
                Err(_) => load().await,
            };
            let shipper = Shipper::new(&sdk, self.config.log_group.clone(), self.config.log_stream.clone());
            Arc::new(Flusher::new(Arc::clone(&self.pipeline), shipper, &self.config))
        });
        Arc::clone(made.await)
    }
}

/// Runs the extension until SHUTDOWN has been handled.
pub async fn run(config: Config) -> Result<(), Error> {
    let pipeline = Arc::new(Pipeline::new(&config));
    let listener =
        listener::bind(config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let port = listener.local_addr()?.port();
    let (deliveries, incoming) = mpsc::unbounded_channel();
    let serving = tokio::spawn(listener::serve(listener, deliveries));
    tokio::spawn(Arc::clone(&pipeline).consume(incoming));

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
                        flusher.get().await.on_invoke(invoke.request_id, invoke.deadline_ms).await
                    }
                    NextEvent::Invoke(_) => {}
                    NextEvent::Shutdown(shutdown) => {
                        if subscribed {
                            flusher.get().await.on_shutdown(shutdown.deadline_ms).await;
                        }
                        finished.notify_one();
                    }
                }
                Ok::<(), Error>(())
            }
        })
    };
    let extension =
        Extension::new().with_events(&["INVOKE", "SHUTDOWN"]).with_events_processor(processor).register().await?;
    // Registered: the runtime may start. The client is made meanwhile, off the critical path.
    tokio::spawn(async move {
        flusher.get().await;
    });
    let client = Client::builder().build()?;
    match subscribe(&client, &extension.extension_id, port, config.delivery_timeout_ms).await {
        Ok(()) => {
            subscribed.store(true, Ordering::Release);
            tracing::info!(port, log_group = %config.log_group, log_stream = %config.log_stream, "subscribed");
        }
        // Without telemetry there is nothing to ship; failing the init would take the function
        // down with us, so say it on stderr and stay out of the way.
        Err(error) => {
            tracing::error!(%error, "books-telemetry is disabled: the Telemetry API refused the subscription")
        }
    }
    let extension_id = extension.extension_id.clone();
    tokio::select! {
        biased;
        _ = finished.notified() => Ok(()),
        result = extension.run() => result,
        _ = serving => {
            let error: Error = "the telemetry listener stopped".into();
            report_error(&client, &extension_id, "exit", "Extension.ListenerStopped", &error).await;
            Err(error)
        }
    }
}

/// Subscribes the listener to the platform, function and extension streams.
async fn subscribe(client: &Client, extension_id: &str, port: u16, timeout_ms: u32) -> Result<(), Error> {
    let body = json!({
        "schemaVersion": SCHEMA_VERSION,
        "types": TELEMETRY_TYPES,
        "buffering": {"maxItems": 1000, "maxBytes": 262_144, "timeoutMs": timeout_ms},
        "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}")},
    });
    let request: Request<Body> = build_request()
        .method(Method::PUT)
        .uri(format!("/{API_VERSION}/telemetry"))
        .header("Lambda-Extension-Identifier", extension_id)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))?;
    let response = client.call(request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Err(format!("Telemetry API subscription refused ({status}): {}", String::from_utf8_lossy(&text)).into())
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
pub async fn run_disabled(error: crate::config::ConfigError) -> Result<(), Error> {
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
                Ok::<(), Error>(())
            }
        })
    };
    let extension =
        Extension::new().with_events(&["INVOKE", "SHUTDOWN"]).with_events_processor(processor).register().await?;
    tokio::select! {
        biased;
        _ = finished.notified() => Ok(()),
        result = extension.run() => result,
    }
}
