//! An environment's loopback endpoint (`AWS_LAMBDA_RUNTIME_API`): requests routed to the Runtime
//! API (2018-06-01), the Extensions API (2020-01-01) and the Telemetry API (2022-07-01).

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::sandbox::{RuntimeAnswer, Sandbox};
use super::{extensions_api, runtime_api, telemetry_api};
use crate::http_util::{self, header, Body};

/// Serves the endpoint until the environment aborts it.
pub(super) async fn serve(listener: TcpListener, sandbox: Arc<Sandbox>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let sandbox = Arc::clone(&sandbox);
        tokio::spawn(async move {
            let service = service_fn(move |req| route(Arc::clone(&sandbox), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Routes a request to the environment's Runtime, Extensions or Telemetry API.
async fn route(sandbox: Arc<Sandbox>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    // A response's transfer: from its request's head to its whole body (runtimeDone's spans).
    let received = std::time::Instant::now();
    let (parts, body) = http_util::read_body(req).await;
    let timing = (received, std::time::Instant::now());
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let extension_id = header(&parts, "lambda-extension-identifier");
    let response = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => runtime_api::next(sandbox).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            runtime_api::respond(&sandbox, id, RuntimeAnswer::Response(body.clone()), body.len(), timing)
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let answer = runtime_api::error_answer(header(&parts, "lambda-runtime-function-error-type"), body.clone());
            runtime_api::respond(&sandbox, id, answer, body.len(), timing)
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            runtime_api::init_error(&sandbox, header(&parts, "lambda-runtime-function-error-type"), &body)
        }
        (&Method::POST, ["2020-01-01", "extension", "register"]) => {
            let features = header(&parts, "lambda-extension-accept-feature");
            extensions_api::register(&sandbox, header(&parts, "lambda-extension-name"), features, &body)
        }
        (&Method::GET, ["2020-01-01", "extension", "event", "next"]) => {
            let id = extension_id.map(str::to_owned);
            extensions_api::next(sandbox, id.as_deref()).await
        }
        (&Method::POST, ["2020-01-01", "extension", kind @ ("init" | "exit"), "error"]) => extensions_api::error(
            &sandbox,
            extension_id,
            header(&parts, "lambda-extension-function-error-type"),
            &body,
            *kind == "init",
        ),
        (&Method::PUT, ["2022-07-01", "telemetry"]) => subscribe(&sandbox, extension_id, &body),
        _ => http_util::lambda_error(StatusCode::NOT_FOUND, "NotFound", &format!("{} {path}", parts.method)),
    };
    Ok(response)
}

fn subscribe(sandbox: &Sandbox, extension_id: Option<&str>, body: &[u8]) -> Response<Body> {
    let known = extension_id
        .is_some_and(|id| sandbox.state.lock().map(|s| s.extensions.iter().any(|e| e.id == id)).unwrap_or(false));
    if !known {
        return http_util::lambda_error(
            StatusCode::FORBIDDEN,
            "Telemetry.UnknownExtensionIdentifier",
            "unknown extension id",
        );
    }
    match telemetry_api::Subscription::parse(body) {
        Ok(subscription) => {
            let name = sandbox
                .state
                .lock()
                .ok()
                .and_then(|s| s.extensions.iter().find(|e| Some(e.id.as_str()) == extension_id).map(|e| e.name.clone()))
                .unwrap_or_default();
            let types = subscription.types.clone();
            sandbox.update(|s| {
                if let Some(extension) = s.extensions.iter_mut().find(|e| Some(e.id.as_str()) == extension_id) {
                    extension.subscribed_at.get_or_insert_with(std::time::Instant::now);
                }
            });
            let subscriber = telemetry_api::Subscriber::start(subscription, sandbox.client.clone());
            sandbox.subscribe(subscriber);
            sandbox.emit_platform(telemetry_schema::Platform::TelemetrySubscription(
                telemetry_schema::TelemetrySubscription {
                    name,
                    state: "Subscribed".into(),
                    types,
                    other: serde_json::Map::new(),
                },
            ));
            http_util::response(StatusCode::OK, "OK")
        }
        Err(error) => http_util::lambda_error(StatusCode::BAD_REQUEST, "ValidationError", &error.to_string()),
    }
}
