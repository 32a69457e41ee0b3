//! The emulated Lambda service: per function a pool of execution environments, each with its
//! own Runtime, Extensions and Telemetry API endpoint, running the unchanged binaries.

mod environment;
mod extensions_api;
pub mod observe;
mod process;
mod runtime_api;
mod telemetry_api;

pub use environment::{ShutdownReason, HIDDEN_FROM_EXTENSIONS, INIT_LIMIT};
pub use telemetry_api::{Subscription, SCHEMA_VERSIONS};

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Method, StatusCode};
use hyper::{Request, Response};
use tokio::sync::Mutex;

use self::environment::{Environment, Sandbox};
use crate::http_util::{self, header, Body};
use crate::invoke::{FunctionSpec, InvokeOutcome, InvokeRequest, Invoker};

/// How the emulated service runs functions.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// AWS endpoint handed to functions as AWS_ENDPOINT_URL (the local moto server), if any.
    pub aws_endpoint_url: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// An environment idle this long is spun down (SHUTDOWN reason SPINDOWN).
    pub idle_timeout: Duration,
    /// Concurrency when a function has no reserved concurrency.
    pub default_concurrency: u32,
    pub account_id: String,
    /// Receives the platform's timelines of inits and invocations (the benchmark listens).
    pub observer: Option<observe::Observer>,
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
            observer: None,
        }
    }
}

/// The environments of one function.
struct Pool {
    spec: FunctionSpec,
    idle: Mutex<Vec<Environment>>,
    /// Environments that exist (idle or busy).
    count: std::sync::atomic::AtomicU32,
    limit: u32,
}

pub struct LambdaService {
    pools: HashMap<String, Arc<Pool>>,
    settings: Arc<LambdaSettings>,
}

impl LambdaService {
    pub fn new(functions: Vec<FunctionSpec>, settings: LambdaSettings) -> Arc<Self> {
        let pools = functions
            .into_iter()
            .map(|spec| {
                let limit = spec.reserved_concurrency.unwrap_or(settings.default_concurrency).max(1);
                let pool = Pool { spec: spec.clone(), idle: Mutex::new(Vec::new()), count: Default::default(), limit };
                (spec.name.clone(), Arc::new(pool))
            })
            .collect();
        let service = Arc::new(Self { pools, settings: Arc::new(settings) });
        tokio::spawn(Arc::clone(&service).spin_down_idle());
        service
    }

    /// Spins every environment down cleanly; busy ones first finish their invocation (their
    /// post-runtime phase included, bounded by the function's timeout).
    pub async fn shutdown(&self) {
        for pool in self.pools.values() {
            loop {
                let environments: Vec<Environment> = std::mem::take(&mut *pool.idle.lock().await);
                let stopped = environments.len() as u32;
                let shutdowns = environments.into_iter().map(|mut env| async move {
                    env.shutdown(ShutdownReason::Spindown).await;
                });
                futures::future::join_all(shutdowns).await;
                if pool.count.fetch_sub(stopped, std::sync::atomic::Ordering::SeqCst) == stopped {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Waits until no environment of `function` is busy (post-runtime phases included): the
    /// next invocation then finds a warm one, if any exists.
    pub async fn idle(&self, function: &str) {
        let Some(pool) = self.pools.get(function) else { return };
        while pool.idle.lock().await.len() < pool.count.load(std::sync::atomic::Ordering::SeqCst) as usize {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Environments of a function that exist right now.
    pub fn environments(&self, function: &str) -> u32 {
        self.pools.get(function).map_or(0, |p| p.count.load(std::sync::atomic::Ordering::SeqCst))
    }

    async fn spin_down_idle(self: Arc<Self>) {
        let period = (self.settings.idle_timeout / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            for pool in self.pools.values() {
                let expired: Vec<Environment> = {
                    let mut idle = pool.idle.lock().await;
                    let (old, fresh): (Vec<_>, Vec<_>) =
                        idle.drain(..).partition(|e| e.last_used.elapsed() >= self.settings.idle_timeout);
                    *idle = fresh;
                    old
                };
                for mut environment in expired {
                    environment.shutdown(ShutdownReason::Spindown).await;
                    pool.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }

    async fn run(&self, request: InvokeRequest) -> InvokeOutcome {
        let Some(pool) = self.pools.get(&request.function_name).cloned() else { return InvokeOutcome::NotFound };
        // The invocation runs to its end on its own task: a caller going away (a client hanging
        // up on API Gateway) does not stop the function or lose its environment, and the caller
        // gets the response while the extensions may still be busy with the invocation.
        let (respond, response) = tokio::sync::oneshot::channel();
        tokio::spawn(Self::run_in(pool, Arc::clone(&self.settings), request, respond));
        response.await.unwrap_or_else(|_| InvokeOutcome::Failed {
            error_type: "ServiceException".into(),
            message: "the invocation ended without an outcome".into(),
        })
    }

    async fn run_in(
        pool: Arc<Pool>,
        settings: Arc<LambdaSettings>,
        request: InvokeRequest,
        respond: tokio::sync::oneshot::Sender<InvokeOutcome>,
    ) {
        let reused = pool.idle.lock().await.pop();
        let mut environment = match reused {
            Some(environment) => environment,
            None => {
                // A cold start, if the function's concurrency allows another environment.
                let grown = pool.count.fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| (n < pool.limit).then_some(n + 1),
                );
                if grown.is_err() {
                    let _ = respond.send(InvokeOutcome::Throttled);
                    return;
                }
                match Environment::init(&pool.spec, &settings).await {
                    Ok(environment) => environment,
                    Err((error_type, message)) => {
                        pool.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = respond.send(InvokeOutcome::Failed { error_type, message });
                        return;
                    }
                }
            }
        };
        let mut respond = Some(respond);
        let outcome = environment.invoke(&request, &mut respond).await;
        if environment.healthy {
            pool.idle.lock().await.push(environment);
        } else {
            pool.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(respond) = respond {
            let _ = respond.send(outcome);
        }
    }
}

impl Invoker for LambdaService {
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome> {
        Box::pin(self.run(request))
    }
}

/// Routes a request to the environment's Runtime, Extensions or Telemetry API.
async fn route(sandbox: Arc<Sandbox>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = http_util::read_body(req).await;
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let extension_id = header(&parts, "lambda-extension-identifier");
    let response = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => runtime_api::next(sandbox).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            runtime_api::respond(&sandbox, id, environment::RuntimeAnswer::Response(body.clone()), body.len())
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let answer = runtime_api::error_answer(header(&parts, "lambda-runtime-function-error-type"), body.clone());
            runtime_api::respond(&sandbox, id, answer, body.len())
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            runtime_api::init_error(&sandbox, header(&parts, "lambda-runtime-function-error-type"), &body)
        }
        (&Method::POST, ["2020-01-01", "extension", "register"]) => {
            extensions_api::register(&sandbox, header(&parts, "lambda-extension-name"), &body)
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
    match Subscription::parse(body) {
        Ok(subscription) => {
            let name = sandbox
                .state
                .lock()
                .ok()
                .and_then(|s| s.extensions.iter().find(|e| Some(e.id.as_str()) == extension_id).map(|e| e.name.clone()))
                .unwrap_or_default();
            let types: Vec<&str> = subscription
                .types
                .iter()
                .map(|t| match t {
                    telemetry_api::Stream::Platform => "platform",
                    telemetry_api::Stream::Function => "function",
                    telemetry_api::Stream::Extension => "extension",
                })
                .collect();
            sandbox.update(|s| {
                if let Some(extension) = s.extensions.iter_mut().find(|e| Some(e.id.as_str()) == extension_id) {
                    extension.subscribed_at.get_or_insert_with(std::time::Instant::now);
                }
            });
            let subscriber = telemetry_api::Subscriber::start(subscription, sandbox.client.clone());
            sandbox.subscribe(subscriber);
            sandbox.emit_platform(
                "platform.telemetrySubscription",
                serde_json::json!({"name": name, "state": "Subscribed", "types": types}),
            );
            http_util::response(StatusCode::OK, "OK")
        }
        Err(message) => http_util::lambda_error(StatusCode::BAD_REQUEST, "ValidationError", &message),
    }
}
