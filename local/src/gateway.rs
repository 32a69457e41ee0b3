//! The emulated API Gateway REST stage: routes from the REST API's resources, `x-api-key`
//! enforcement through usage plans, token-bucket throttling and quotas, Lambda proxy events
//! (payload v1) and the responses and error bodies API Gateway itself would send.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{HeaderMap, StatusCode};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use crate::http_util::{self, Body};
use crate::invoke::{InvokeOutcome, InvokeRequest, Invoker};

/// API Gateway's integration timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "DAY" => Some(Self::Day),
            "WEEK" => Some(Self::Week),
            "MONTH" => Some(Self::Month),
            _ => None,
        }
    }

    fn length(self) -> Duration {
        let days = match self {
            Self::Day => 1,
            Self::Week => 7,
            Self::Month => 30,
        };
        Duration::from_secs(days * 86_400)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsagePlan {
    pub id: String,
    pub throttle: Option<Throttle>,
    pub quota: Option<(u64, QuotaPeriod)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub value: String,
    pub enabled: bool,
    /// The usage plan attached to this stage that the key belongs to, if any.
    pub plan: Option<UsagePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MethodConfig {
    pub api_key_required: bool,
    pub function_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Path template, e.g. `/books/{id}`.
    pub path: String,
    pub resource_id: String,
    pub methods: HashMap<String, MethodConfig>,
}

/// Everything the stage needs, read from the local AWS endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    pub rest_api_id: String,
    pub stage: String,
    pub account_id: String,
    pub resources: Vec<Resource>,
    pub keys: Vec<ApiKey>,
    /// Stage-wide method throttling (`*/*` method settings).
    pub stage_throttle: Option<Throttle>,
    pub integration_timeout: Duration,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, limits: Throttle) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * limits.rate;
        self.tokens = (self.tokens + refill).min(f64::from(limits.burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Quota {
    used: u64,
    window_start: Instant,
}

/// The stage: configuration plus the counters throttling and quotas keep.
pub struct Gateway {
    config: GatewayConfig,
    invoker: Arc<dyn Invoker>,
    key_buckets: Mutex<HashMap<String, Bucket>>,
    quotas: Mutex<HashMap<String, Quota>>,
    stage_bucket: Mutex<Option<Bucket>>,
}

fn error(status: StatusCode, message: &str, error_type: &str, request_id: &str) -> Response<Body> {
    let mut response = http_util::json(status, &json!({ "message": message }));
    let headers = response.headers_mut();
    headers.insert(
        "x-amzn-errortype",
        http::HeaderValue::from_str(error_type).unwrap_or(http::HeaderValue::from_static("Error")),
    );
    if let Ok(id) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

impl Gateway {
    pub fn new(config: GatewayConfig, invoker: Arc<dyn Invoker>) -> Arc<Self> {
        Arc::new(Self {
            config,
            invoker,
            key_buckets: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
            stage_bucket: Mutex::new(None),
        })
    }

    /// Serves the stage until `shutdown` resolves.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let gateway = Arc::clone(&self);
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let gateway = Arc::clone(&gateway);
                            async move { Ok::<_, Infallible>(gateway.handle(req, peer.ip().to_string()).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            }
        }
    }

    fn route(&self, path: &str) -> Option<(&Resource, Map<String, Value>)> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        for resource in &self.config.resources {
            let template: Vec<&str> = resource.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
            if template.len() != segments.len() {
                continue;
            }
            let mut params = Map::new();
            let matched = template.iter().zip(&segments).all(|(t, s)| {
                match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(name) => {
                        params.insert(name.to_owned(), Value::String(percent_decode(s)));
                        true
                    }
                    None => t == s,
                }
            });
            if matched {
                return Some((resource, params));
            }
        }
        None
    }

    pub async fn handle(&self, req: Request<hyper::body::Incoming>, source_ip: String) -> Response<Body> {
        let request_id = http_util::uuid();
        let started = chrono::Utc::now();
        let (parts, body) = http_util::read_body(req).await;
        let stage_prefix = format!("/{}", self.config.stage);
        let path = parts.uri.path();
        let Some(resource_path) = path.strip_prefix(&stage_prefix).filter(|p| p.is_empty() || p.starts_with('/'))
        else {
            return error(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
                &request_id,
            );
        };
        let resource_path = if resource_path.is_empty() { "/" } else { resource_path };
        let Some((resource, path_params)) = self.route(resource_path) else {
            return error(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
                &request_id,
            );
        };
        let Some(method) = resource.methods.get(parts.method.as_str()) else {
            return error(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
                &request_id,
            );
        };
        let key = if method.api_key_required {
            let presented = http_util::header(&parts, "x-api-key");
            let key = presented.and_then(|value| self.config.keys.iter().find(|k| k.value == value));
            match key {
                Some(key) if key.enabled && key.plan.is_some() => Some(key),
                _ => return error(StatusCode::FORBIDDEN, "Forbidden", "ForbiddenException", &request_id),
            }
        } else {
            None
        };
        if let Some(response) = self.throttle(key, &request_id) {
            return response;
        }

        let event = self.proxy_event(&parts, &body, resource, path_params, key, &request_id, &source_ip, started);
        let trace_id =
            format!("Root=1-{:08x}-{};Sampled=0", started.timestamp(), &http_util::uuid().replace('-', "")[..24]);
        let invocation = InvokeRequest {
            function_name: method.function_name.clone(),
            payload: event.to_string().into_bytes(),
            trace_id: Some(trace_id.clone()),
            client_context: None,
        };
        let outcome = tokio::time::timeout(self.config.integration_timeout, self.invoker.invoke(invocation)).await;
        let mut response = match outcome {
            Err(_) => {
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "Endpoint request timed out",
                    "IntegrationTimeout",
                    &request_id,
                )
            }
            Ok(InvokeOutcome::Response(payload)) => match proxy_response(&payload) {
                Some(response) => response,
                None => {
                    tracing::warn!(function = %method.function_name, "malformed Lambda proxy response");
                    return error(
                        StatusCode::BAD_GATEWAY,
                        "Internal server error",
                        "InternalServerErrorException",
                        &request_id,
                    );
                }
            },
            Ok(InvokeOutcome::Throttled) => {
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests",
                    "TooManyRequestsException",
                    &request_id,
                )
            }
            Ok(other) => {
                tracing::warn!(function = %method.function_name, outcome = ?other, "integration failed");
                return error(
                    StatusCode::BAD_GATEWAY,
                    "Internal server error",
                    "InternalServerErrorException",
                    &request_id,
                );
            }
        };
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-amzn-requestid", request_id.clone()),
            ("x-amz-apigw-id", http_util::uuid()[..16].to_owned()),
            ("x-amzn-trace-id", trace_id),
        ] {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }

    /// Usage-plan throttling and quota of the key, then stage throttling; `Some` refuses.
    fn throttle(&self, key: Option<&ApiKey>, request_id: &str) -> Option<Response<Body>> {
        let too_many =
            || error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", "TooManyRequestsException", request_id);
        if let Some(key) = key {
            let plan = key.plan.as_ref()?;
            if let Some(limits) = plan.throttle {
                let mut buckets = self.key_buckets.lock().ok()?;
                let bucket = buckets
                    .entry(key.id.clone())
                    .or_insert(Bucket { tokens: f64::from(limits.burst), last: Instant::now() });
                if !bucket.take(limits) {
                    return Some(too_many());
                }
            }
            if let Some((limit, period)) = plan.quota {
                let mut quotas = self.quotas.lock().ok()?;
                let quota = quotas.entry(key.id.clone()).or_insert(Quota { used: 0, window_start: Instant::now() });
                if quota.window_start.elapsed() >= period.length() {
                    *quota = Quota { used: 0, window_start: Instant::now() };
                }
                if quota.used >= limit {
                    return Some(error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Limit Exceeded",
                        "LimitExceededException",
                        request_id,
                    ));
                }
                quota.used += 1;
            }
        }
        if let Some(limits) = self.config.stage_throttle {
            let mut bucket = self.stage_bucket.lock().ok()?;
            let bucket = bucket.get_or_insert(Bucket { tokens: f64::from(limits.burst), last: Instant::now() });
            if !bucket.take(limits) {
                return Some(too_many());
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn proxy_event(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        resource: &Resource,
        path_params: Map<String, Value>,
        key: Option<&ApiKey>,
        request_id: &str,
        source_ip: &str,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Value {
        let (headers, multi_headers) = header_maps(&parts.headers);
        let (query, multi_query) = query_maps(parts.uri.query());
        let (body_value, base64) = match std::str::from_utf8(body) {
            _ if body.is_empty() => (Value::Null, false),
            Ok(text) => (Value::String(text.to_owned()), false),
            Err(_) => (Value::String(BASE64.encode(body)), true),
        };
        let path = parts.uri.path().strip_prefix(&format!("/{}", self.config.stage)).unwrap_or("/").to_owned();
        let user_agent = http_util::header(parts, "user-agent");
        json!({
            "resource": resource.path,
            "path": path,
            "httpMethod": parts.method.as_str(),
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": if path_params.is_empty() { Value::Null } else { Value::Object(path_params) },
            "stageVariables": null,
            "requestContext": {
                "resourceId": resource.resource_id,
                "resourcePath": resource.path,
                "httpMethod": parts.method.as_str(),
                "extendedRequestId": http_util::uuid()[..16].to_owned(),
                "requestTime": started.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                "path": parts.uri.path(),
                "accountId": self.config.account_id,
                "protocol": "HTTP/1.1",
                "stage": self.config.stage,
                "domainPrefix": self.config.rest_api_id,
                "requestTimeEpoch": started.timestamp_millis(),
                "requestId": request_id,
                "identity": {
                    "sourceIp": source_ip,
                    "userAgent": user_agent,
                    "apiKey": key.map(|k| k.value.clone()),
                    "apiKeyId": key.map(|k| k.id.clone()),
                    "accountId": null, "caller": null, "user": null, "userArn": null, "accessKey": null,
                    "cognitoIdentityPoolId": null, "cognitoIdentityId": null,
                    "cognitoAuthenticationType": null, "cognitoAuthenticationProvider": null,
                },
                "domainName": http_util::header(parts, "host").unwrap_or("localhost"),
                "apiId": self.config.rest_api_id,
            },
            "body": body_value,
            "isBase64Encoded": base64,
        })
    }
}

fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let value = value.to_str().unwrap_or_default().to_owned();
        single.insert(name.as_str().to_owned(), Value::String(value.clone()));
        match multi.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            _ => {
                multi.insert(name.as_str().to_owned(), json!([value]));
            }
        }
    }
    if single.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (Value::Object(single), Value::Object(multi))
    }
}

fn query_maps(query: Option<&str>) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(&name.replace('+', " ")), percent_decode(&value.replace('+', " ")));
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(&name) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            _ => {
                multi.insert(name, json!([value]));
            }
        }
    }
    if single.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (Value::Object(single), Value::Object(multi))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Maps a Lambda proxy response back to HTTP; `None` when it is malformed.
fn proxy_response(payload: &[u8]) -> Option<Response<Body>> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let status = StatusCode::from_u16(u16::try_from(value.get("statusCode")?.as_u64()?).ok()?).ok()?;
    let body = match value.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if value["isBase64Encoded"].as_bool() == Some(true) => BASE64.decode(text).ok()?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(_) => return None,
    };
    let mut response = http_util::response(status, body);
    let headers = response.headers_mut();
    if let Some(Value::Object(single)) = value.get("headers") {
        for (name, value) in single {
            let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
            headers.insert(name, http::HeaderValue::from_str(value.as_str()?).ok()?);
        }
    }
    if let Some(Value::Object(multi)) = value.get("multiValueHeaders") {
        for (name, values) in multi {
            let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
            headers.remove(&name);
            for value in values.as_array()? {
                headers.append(name.clone(), http::HeaderValue::from_str(value.as_str()?).ok()?);
            }
        }
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_buckets_allow_the_burst_then_refill_at_the_rate() {
        let limits = Throttle { rate: 1.0, burst: 3 };
        let mut bucket = Bucket { tokens: 3.0, last: Instant::now() };
        let allowed = (0..10).filter(|_| bucket.take(limits)).count();
        assert_eq!(allowed, 3);
        bucket.last -= Duration::from_secs(2);
        assert!(bucket.take(limits) && bucket.take(limits));
        assert!(!bucket.take(limits));
    }

    #[test]
    fn proxy_responses_map_back_and_malformed_ones_are_refused() {
        let ok = json!({"statusCode": 201, "headers": {"etag": "\"1\""}, "multiValueHeaders": {"x-a": ["1", "2"]}, "body": "{}"});
        let response = proxy_response(ok.to_string().as_bytes()).unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers().get_all("x-a").iter().count(), 2);
        let binary = json!({"statusCode": 200, "body": BASE64.encode([0u8, 159, 146]), "isBase64Encoded": true});
        assert!(proxy_response(binary.to_string().as_bytes()).is_some());
        for bad in
            [json!({"body": "x"}), json!({"statusCode": "200"}), json!("text"), json!({"statusCode": 200, "body": 5})]
        {
            assert!(proxy_response(bad.to_string().as_bytes()).is_none(), "{bad}");
        }
        assert!(proxy_response(b"not json").is_none());
    }

    #[test]
    fn query_strings_keep_repeated_values() {
        let (single, multi) = query_maps(Some("tag=a&tag=b%20c&limit=5"));
        assert_eq!(single["tag"], "b c");
        assert_eq!(multi["tag"], json!(["a", "b c"]));
        assert_eq!(single["limit"], "5");
    }
}
