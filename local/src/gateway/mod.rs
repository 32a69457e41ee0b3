//! The emulated API Gateway REST stage: routes requests by the REST API's resources, enforces
//! `x-api-key` through usage plans, throttles and counts quotas, invokes the functions through
//! the Lambda proxy integration (payload 1.0), and answers as API Gateway itself would.

mod config;
mod limits;
mod policy;
pub(crate) use limits::QuotaUsage;
pub(crate) use policy::{Decision, ResourcePolicy};
pub(crate) mod proxy;
mod routing;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

pub use config::{
    ApiKey, GatewayConfig, Method, Quota, QuotaPeriod, Resource, Throttle, UsagePlan, INTEGRATION_TIMEOUT,
};
pub(crate) use routing::{route, Route};

use crate::cloudwatch::{Datum, MetricSink};
use crate::http_util;
use crate::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use limits::Limits;
use proxy::{IncomingRequest, RequestContext};

type Body = Full<Bytes>;

/// The answers API Gateway gives on its own behalf, with its `x-amzn-ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GatewayError {
    /// No resource or method matches (API Gateway does not say 404 here).
    MissingAuthenticationToken,
    /// No key, an unknown or disabled key, or a key in no usage plan of the stage.
    Forbidden,
    /// A token bucket (usage plan, then method) is empty.
    TooManyRequests,
    /// The key's quota for the period is spent.
    LimitExceeded,
    /// Lambda refused the invocation (throttled, no such function): API Gateway says 500.
    InvocationRejected,
    /// The function failed, crashed, timed out, or answered something that is no proxy response.
    BadGateway,
    /// The integration took longer than the integration timeout.
    IntegrationTimeout,
    /// The request's payload is over the REST API's 10 MB (`REQUEST_TOO_LARGE`).
    RequestTooLarge,
    /// The client did not send its body within [`ClientLimits::body_read`].
    RequestTimeout,
}

impl GatewayError {
    /// The status API Gateway answers with.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::MissingAuthenticationToken | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyRequests | Self::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::InvocationRejected => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::IntegrationTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The `message` of its JSON body.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "Missing Authentication Token",
            Self::Forbidden => "Forbidden",
            Self::TooManyRequests => "Too Many Requests",
            Self::LimitExceeded => "Limit Exceeded",
            Self::InvocationRejected | Self::BadGateway => "Internal server error",
            Self::IntegrationTimeout => "Endpoint request timed out",
            Self::RequestTooLarge => "Request Too Long",
            Self::RequestTimeout => "Request Timeout",
        }
    }

    /// `x-amzn-ErrorType`; API Gateway sends none with an integration timeout, and none is
    /// documented for a payload too large or a client too slow (so none is made up).
    pub(crate) fn error_type(self) -> Option<&'static str> {
        match self {
            Self::MissingAuthenticationToken => Some("MissingAuthenticationTokenException"),
            Self::Forbidden => Some("ForbiddenException"),
            Self::TooManyRequests => Some("TooManyRequestsException"),
            Self::LimitExceeded => Some("LimitExceededException"),
            Self::InvocationRejected | Self::BadGateway => Some("InternalServerErrorException"),
            Self::IntegrationTimeout | Self::RequestTooLarge | Self::RequestTimeout => None,
        }
    }
}

/// The wait after an accept that failed (out of descriptors, say), doubling from the first to
/// the last while failures go on.
const ACCEPT_BACKOFF: (std::time::Duration, std::time::Duration) =
    (std::time::Duration::from_millis(10), std::time::Duration::from_secs(1));

/// The REST API's payload limit: 10 MB.
pub const PAYLOAD_LIMIT: usize = 10 * 1024 * 1024;

/// What the gateway lets clients hold: a client that opens connections and sends slowly costs
/// a task and a descriptor each, so their number and the time they may take are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Connections served at once; past it, new ones wait in the listen backlog.
    pub connections: usize,
    /// Time to send a request's headers, and the longest an idle keep-alive connection stays.
    pub header_read: std::time::Duration,
    /// Time to send a request's body, once its headers were accepted (408 past it).
    pub body_read: std::time::Duration,
}

impl ClientLimits {
    /// 512 connections (well under a default limit of 1,024 descriptors), 30 s for headers
    /// and for a body: slower than any client on a local machine needs, and bounded.
    pub const DEFAULT: Self = Self {
        connections: 512,
        header_read: std::time::Duration::from_secs(30),
        body_read: std::time::Duration::from_secs(30),
    };
}

/// Whether the request says its payload is over [`PAYLOAD_LIMIT`]: refused before anything
/// else is looked at, since nothing needs to be read to know.
fn declared_too_large(parts: &http::request::Parts) -> bool {
    let declared = http_util::header(parts, "content-length").and_then(|length| length.parse::<u64>().ok());
    declared.is_some_and(|length| length > PAYLOAD_LIMIT as u64)
}

/// The request's payload, never more than [`PAYLOAD_LIMIT`] of it (refused as soon as the limit
/// is passed) and within `within`. A body that breaks off is an empty one (the client is gone).
async fn read_payload<B>(body: B, within: std::time::Duration) -> Result<Bytes, GatewayError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let read = http_body_util::Limited::new(body, PAYLOAD_LIMIT).collect();
    match tokio::time::timeout(within, read).await {
        Err(_) => Err(GatewayError::RequestTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(GatewayError::RequestTooLarge),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "gateway: reading the request body failed");
            Ok(Bytes::new())
        }
    }
}

/// A request the stage accepted before reading its body: routed, allowed by the resource
/// policy, its key valid and within its plan's limits.
struct Admitted<'a> {
    route: Route<'a>,
    method: &'a Method,
    api_key: Option<&'a ApiKey>,
}

/// Why a request was turned away before its body was read.
enum Refused {
    Error(GatewayError),
    /// The resource policy's answer for this execute-api resource.
    Denied {
        resource: String,
        decision: Decision,
    },
}

impl From<GatewayError> for Refused {
    fn from(error: GatewayError) -> Self {
        Self::Error(error)
    }
}

/// Ids API Gateway gives every request.
struct RequestIds {
    request_id: String,
    extended_request_id: String,
    trace_id: String,
}

impl RequestIds {
    fn new(incoming_trace: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Self {
        let random = ulid::Ulid::new().0.to_be_bytes();
        let extended_request_id = base64::engine::general_purpose::STANDARD.encode(&random[5..16]);
        // Continue the caller's trace when it sent one, as API Gateway does.
        let root = incoming_trace
            .and_then(|t| t.split(';').find_map(|part| part.trim().strip_prefix("Root=")))
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let hex: String = random[4..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("1-{:08x}-{hex}", now.timestamp())
            });
        Self { request_id: http_util::uuid(), extended_request_id, trace_id: format!("Root={root};Sampled=0") }
    }
}

/// One REST API stage being served.
pub struct Gateway {
    config: GatewayConfig,
    invoker: Arc<dyn Invoker>,
    limits: Limits,
    metrics: Option<MetricSink>,
    /// The API's OpenAPI document, served at [`DESCRIPTION_PATH`] (outside every stage: API
    /// Gateway has no such route, this is the local cloud's own convenience).
    description: Option<Bytes>,
    client_limits: ClientLimits,
}

/// Where the local gateway serves the API's description, when it has one.
pub const DESCRIPTION_PATH: &str = "/openapi.yaml";

/// What one request did, for its `AWS/ApiGateway` metrics.
#[derive(Default)]
struct Measured {
    /// The resource path and method it was routed to.
    route: Option<(String, String)>,
    /// How long the integration took, when it was called.
    integration: Option<std::time::Duration>,
}

/// Serves `config`'s stage on `listener`, holding clients to `limits`, until `shutdown` resolves,
/// then lets the requests in flight finish.
pub async fn serve_limited(
    config: GatewayConfig,
    invoker: Arc<dyn Invoker>,
    limits: ClientLimits,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    Gateway::with_client_limits(config, invoker, limits).serve(listener, shutdown).await;
}

impl Gateway {
    /// A gateway serving `config`'s stage, invoking functions through `invoker`.
    pub fn new(config: GatewayConfig, invoker: Arc<dyn Invoker>) -> Arc<Self> {
        Self::with_client_limits(config, invoker, ClientLimits::DEFAULT)
    }

    /// A gateway holding its clients to `client_limits` (tests: small ones).
    pub(crate) fn with_client_limits(
        config: GatewayConfig,
        invoker: Arc<dyn Invoker>,
        client_limits: ClientLimits,
    ) -> Arc<Self> {
        let limits = Limits::default();
        Arc::new(Self { config, invoker, limits, metrics: None, description: None, client_limits })
    }

    /// The same, recording the `AWS/ApiGateway` metrics of every request into `metrics`, and
    /// serving `description` (the API's OpenAPI document) at [`DESCRIPTION_PATH`].
    pub fn with_metrics(
        config: GatewayConfig,
        invoker: Arc<dyn Invoker>,
        metrics: MetricSink,
        description: Option<Bytes>,
    ) -> Arc<Self> {
        let (limits, client_limits) = (Limits::default(), ClientLimits::DEFAULT);
        Arc::new(Self { config, invoker, limits, metrics: Some(metrics), description, client_limits })
    }

    /// Each API key's use of its usage plan's quota so far (by key id).
    pub fn quota_usage(&self) -> std::collections::BTreeMap<String, QuotaUsage> {
        self.limits.quota_usage()
    }

    /// Goes on counting the quotas from an earlier run's [`Gateway::quota_usage`].
    pub fn resume_quota_usage(&self, usage: &std::collections::BTreeMap<String, QuotaUsage>) {
        self.limits.resume_quota_usage(usage);
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits for open connections to
    /// finish their current request. At most [`ClientLimits::connections`] are served at once.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
        let permits = Arc::new(tokio::sync::Semaphore::new(self.client_limits.connections));
        let mut connections = tokio::task::JoinSet::new();
        let mut backoff = ACCEPT_BACKOFF.0;
        'serving: loop {
            // A place first, then a connection: past the limit, clients wait in the backlog.
            let permit = tokio::select! {
                _ = &mut shutdown => break 'serving,
                permit = Arc::clone(&permits).acquire_owned() => permit,
            };
            let Ok(permit) = permit else { break };
            let (stream, peer) = loop {
                tokio::select! {
                    _ = &mut shutdown => break 'serving,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => {
                            backoff = ACCEPT_BACKOFF.0;
                            break accepted;
                        }
                        Err(err) => {
                            // Out of descriptors, say: retrying at once would spin.
                            tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "gateway: accept failed");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                        }
                    },
                }
            };
            let gateway = Arc::clone(&self);
            let mut closing = closing_rx.clone();
            connections.spawn(async move {
                let _permit = permit;
                let header_read = gateway.client_limits.header_read;
                let service = service_fn(move |req| {
                    let gateway = Arc::clone(&gateway);
                    async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_read)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                let closed = async move {
                    let _ = closing.wait_for(|closing| *closing).await;
                };
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = closed => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            });
        }
        let _ = closing_tx.send(true);
        while connections.join_next().await.is_some() {}
    }

    /// Answers one request as the stage would.
    pub async fn handle<B>(&self, request: Request<B>, peer: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let (Some(description), &http::Method::GET, DESCRIPTION_PATH) =
            (&self.description, request.method(), request.uri().path())
        {
            let mut response = Response::new(Body::new(description.clone()));
            response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
            return response;
        }
        let received = chrono::Utc::now();
        let started = std::time::Instant::now();
        let (mut parts, body) = request.into_parts();
        let ids = RequestIds::new(http_util::header(&parts, "x-amzn-trace-id"), received);
        let mut measured = Measured::default();
        // Everything that needs no body comes before it is read: a client without a key or a
        // route cannot make the stage read (and hold) up to 10 MB.
        let admitted = if declared_too_large(&parts) {
            Err(Refused::Error(GatewayError::RequestTooLarge))
        } else {
            self.admit_request(&parts, peer, &mut measured)
        };
        let response = match admitted {
            Err(Refused::Denied { resource, decision }) => {
                access_denied(&resource, &self.config.account_id, decision, &ids)
            }
            Err(Refused::Error(error)) => error_response(error, &ids),
            Ok(admitted) => match read_payload(body, self.client_limits.body_read).await {
                Err(error) => error_response(error, &ids),
                Ok(body) => {
                    match self.integrate(admitted, &mut parts, &body, peer, &ids, received, &mut measured).await {
                        Ok(response) => response,
                        Err(error) => error_response(error, &ids),
                    }
                }
            },
        };
        let latency = started.elapsed();
        tracing::info!(method = %parts.method, path = %parts.uri.path(), status = response.status().as_u16(),
            request_id = %ids.request_id, latency_ms = latency.as_millis() as u64, "gateway");
        self.record(response.status(), latency, &measured);
        response
    }

    /// What API Gateway publishes for a request: `Count`, `4XXError`, `5XXError` (0 or 1),
    /// `Latency` and, when the integration was called, `IntegrationLatency`; per API and stage,
    /// and per method and resource too with detailed metrics.
    fn record(&self, status: StatusCode, latency: std::time::Duration, measured: &Measured) {
        let Some(sink) = &self.metrics else { return };
        let api = self.config.rest_api_name.as_str();
        let stage = self.config.stage.as_str();
        let mut sets = vec![vec![("ApiName", api), ("Stage", stage)]];
        if let (true, Some((resource, method))) = (self.config.detailed_metrics, &measured.route) {
            sets.push(vec![
                ("ApiName", api),
                ("Method", method.as_str()),
                ("Resource", resource.as_str()),
                ("Stage", stage),
            ]);
        }
        let client_error = f64::from(u8::from(status.is_client_error()));
        let server_error = f64::from(u8::from(status.is_server_error()));
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        for dimensions in &sets {
            let datum =
                |name: &str, unit: &str, value: f64| Datum::now("AWS/ApiGateway", name, dimensions, unit, value);
            sink.record(datum("Count", "Count", 1.0));
            sink.record(datum("4XXError", "Count", client_error));
            sink.record(datum("5XXError", "Count", server_error));
            sink.record(datum("Latency", "Milliseconds", ms(latency)));
            if let Some(integration) = measured.integration {
                sink.record(datum("IntegrationLatency", "Milliseconds", ms(integration)));
            }
        }
    }

    /// Route, resource policy, key, throttles and quota: what API Gateway decides from the
    /// request line and headers alone.
    fn admit_request(
        &self,
        parts: &http::request::Parts,
        peer: SocketAddr,
        measured: &mut Measured,
    ) -> Result<Admitted<'_>, Refused> {
        let below_stage = parts
            .uri
            .path()
            .strip_prefix(&format!("/{}", self.config.stage))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .ok_or(GatewayError::MissingAuthenticationToken)?;
        let route = route(&self.config.resources, below_stage).ok_or(GatewayError::MissingAuthenticationToken)?;
        let method = route.method(parts.method.as_str()).ok_or(GatewayError::MissingAuthenticationToken)?;
        measured.route = Some((route.resource.path.clone(), method.http_method.clone()));

        // The resource policy comes first, before the key is looked at.
        if let Some(policy) = &self.config.resource_policy {
            let config = &self.config;
            let resource = format!(
                "arn:aws:execute-api:{}:{}:{}/{}/{}{}",
                config.region, config.account_id, config.rest_api_id, config.stage, parts.method, below_stage
            );
            match policy.decide(&resource, peer.ip()) {
                Decision::Allowed => {}
                decision => return Err(Refused::Denied { resource, decision }),
            }
        }

        let api_key = if method.api_key_required {
            let presented = http_util::header(parts, "x-api-key").ok_or(GatewayError::Forbidden)?;
            // Compared in constant time: how long a refusal takes says nothing of the keys.
            let key = self
                .config
                .usable_keys()
                .find(|k| bool::from(k.value.as_bytes().ct_eq(presented.as_bytes())))
                .ok_or(GatewayError::Forbidden)?;
            Some(key)
        } else {
            None
        };
        self.admit(api_key, &route, method)?;
        Ok(Admitted { route, method, api_key })
    }

    #[allow(clippy::too_many_arguments)]
    async fn integrate(
        &self,
        admitted: Admitted<'_>,
        parts: &mut http::request::Parts,
        body: &Bytes,
        peer: SocketAddr,
        ids: &RequestIds,
        received: chrono::DateTime<chrono::Utc>,
        measured: &mut Measured,
    ) -> Result<Response<Body>, GatewayError> {
        let Admitted { route, method, api_key } = admitted;
        let path = parts.uri.path().to_owned();
        // API Gateway adds these before calling the integration.
        let forwarded_for = match http_util::header(parts, "x-forwarded-for") {
            Some(chain) => format!("{chain}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        for (name, value) in [
            ("x-forwarded-for", forwarded_for),
            ("x-forwarded-port", peer.port().to_string()),
            ("x-forwarded-proto", "http".to_owned()),
            ("x-amzn-trace-id", ids.trace_id.clone()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                parts.headers.insert(name, value);
            }
        }
        let incoming = IncomingRequest {
            method: parts.method.as_str(),
            path: &path,
            query: parts.uri.query(),
            headers: &parts.headers,
            body,
        };
        let source_ip = peer.ip().to_string();
        let context = RequestContext {
            request_id: &ids.request_id,
            extended_request_id: &ids.extended_request_id,
            received,
            source_ip: &source_ip,
            api_key,
        };
        let event = proxy::event(&self.config, &incoming, &route, &context);
        let invocation = InvokeRequest {
            function_name: method.function_name.clone(),
            qualifier: method.qualifier.clone(),
            payload: event.to_string().into_bytes(),
            trace_id: Some(ids.trace_id.clone()),
            client_context: None,
            cognito_identity: None,
        };
        let timeout =
            method.timeout.map_or(self.config.integration_timeout, |t| t.min(self.config.integration_timeout));
        let called = std::time::Instant::now();
        let outcome = tokio::time::timeout(timeout, self.invoker.invoke(invocation)).await;
        measured.integration = Some(called.elapsed());
        let outcome = outcome.map_err(|_| GatewayError::IntegrationTimeout)?;
        let payload = match outcome {
            InvokeOutcome::Response(payload) => payload,
            InvokeOutcome::Throttled | InvokeOutcome::NotFound => {
                tracing::warn!(function = %method.function_name, outcome = ?outcome, "gateway: Lambda refused the invocation");
                return Err(GatewayError::InvocationRejected);
            }
            other => {
                tracing::warn!(function = %method.function_name, outcome = ?other, "gateway: the function failed");
                return Err(GatewayError::BadGateway);
            }
        };
        let accept = http_util::header(parts, "accept");
        let mapped = proxy::response(&payload, &self.config.binary_media_types, accept).map_err(|err| {
            tracing::warn!(function = %method.function_name, error = %err, "gateway: malformed Lambda proxy response");
            GatewayError::BadGateway
        })?;
        let mut response = Response::new(Full::new(mapped.body));
        *response.status_mut() = mapped.status;
        *response.headers_mut() = mapped.headers;
        add_ids(&mut response, ids, true);
        Ok(response)
    }

    /// Usage-plan throttling, then method throttling, then the quota: a request refused by a
    /// throttle does not count against the quota.
    fn admit(&self, key: Option<&ApiKey>, route: &Route<'_>, method: &Method) -> Result<(), GatewayError> {
        let plan = key.and_then(|k| k.plan.as_ref().map(|plan| (k, plan)));
        if let Some((key, UsagePlan { throttle: Some(limits), .. })) = plan {
            if !self.limits.take_token(&format!("key {}", key.id), *limits) {
                return Err(GatewayError::TooManyRequests);
            }
        }
        if let Some(limits) = method.throttle {
            let bucket = format!("method {} {}", route.resource.path, method.http_method);
            if !self.limits.take_token(&bucket, limits) {
                return Err(GatewayError::TooManyRequests);
            }
        }
        if let Some((key, UsagePlan { quota: Some(quota), .. })) = plan {
            if !self.limits.count_request(&key.id, *quota) {
                return Err(GatewayError::LimitExceeded);
            }
        }
        Ok(())
    }
}

fn add_ids(response: &mut Response<Body>, ids: &RequestIds, integrated: bool) {
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("x-amzn-requestid", &ids.request_id);
    if integrated {
        set("x-amz-apigw-id", &ids.extended_request_id);
        set("x-amzn-trace-id", &ids.trace_id);
    }
}

/// API Gateway's answer to a request its resource policy denies: 403 `AccessDeniedException`,
/// the resource's ARN with the account masked, in a `Message` (capitalised, as the API Gateway
/// developer guide shows it).
fn access_denied(resource: &str, account: &str, decision: Decision, ids: &RequestIds) -> Response<Body> {
    let shown = account.len().saturating_sub(4);
    let masked = resource.replacen(account, &format!("{}{}", "*".repeat(shown), &account[shown..]), 1);
    let explicitly = if decision == Decision::ExplicitDeny { " with an explicit deny" } else { "" };
    let message =
        format!("User: anonymous is not authorized to perform: execute-api:Invoke on resource: {masked}{explicitly}");
    let mut response = Response::new(Full::new(Bytes::from(json!({ "Message": message }).to_string())));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static("AccessDeniedException"));
    add_ids(&mut response, ids, false);
    response
}

fn error_response(error: GatewayError, ids: &RequestIds) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(json!({ "message": error.message() }).to_string())));
    *response.status_mut() = error.status();
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(error_type) = error.error_type() {
        response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    // Errors raised once the integration was reached carry the same ids as successes.
    let integrated =
        matches!(error, GatewayError::BadGateway | GatewayError::IntegrationTimeout | GatewayError::InvocationRejected);
    add_ids(&mut response, ids, integrated);
    response
}
