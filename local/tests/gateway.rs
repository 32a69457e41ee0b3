//! The emulated REST stage against a recording test double of the Lambda service: the proxy
//! event it builds, the answers it maps back, keys, quotas, and API Gateway's own errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use books_local::gateway::{ApiKey, Gateway, GatewayConfig, MethodConfig, QuotaPeriod, Resource, Throttle, UsagePlan};
use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};

/// Answers every invocation with `answer` after `delay`, and keeps the events it got.
struct Recorder {
    answer: InvokeOutcome,
    delay: Duration,
    events: Mutex<Vec<(String, Value)>>,
}

impl Invoker for Recorder {
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome> {
        Box::pin(async move {
            let event = serde_json::from_slice(&request.payload).unwrap();
            self.events.lock().unwrap().push((request.function_name, event));
            tokio::time::sleep(self.delay).await;
            self.answer.clone()
        })
    }
}

fn plan(quota: Option<u64>) -> UsagePlan {
    UsagePlan {
        id: "plan1".into(),
        throttle: Some(Throttle { rate: 100.0, burst: 100 }),
        quota: quota.map(|q| (q, QuotaPeriod::Day)),
    }
}

fn config(quota: Option<u64>, timeout: Duration) -> GatewayConfig {
    let method = |function: &str| MethodConfig { api_key_required: true, function_name: function.into() };
    GatewayConfig {
        rest_api_id: "api123".into(),
        stage: "v1".into(),
        account_id: "123456789012".into(),
        resources: vec![
            Resource {
                path: "/books".into(),
                resource_id: "r1".into(),
                methods: HashMap::from([("GET".into(), method("query")), ("POST".into(), method("command"))]),
            },
            Resource {
                path: "/books/{id}".into(),
                resource_id: "r2".into(),
                methods: HashMap::from([("GET".into(), method("query"))]),
            },
        ],
        keys: vec![
            ApiKey { id: "key1".into(), value: "good-key".into(), enabled: true, plan: Some(plan(quota)) },
            ApiKey { id: "key2".into(), value: "planless-key".into(), enabled: true, plan: None },
            ApiKey { id: "key3".into(), value: "disabled-key".into(), enabled: false, plan: Some(plan(quota)) },
        ],
        stage_throttle: None,
        integration_timeout: timeout,
    }
}

struct Stage {
    base: String,
    recorder: Arc<Recorder>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

async fn stage(answer: InvokeOutcome, delay: Duration, quota: Option<u64>, timeout: Duration) -> Stage {
    let recorder = Arc::new(Recorder { answer, delay, events: Mutex::new(Vec::new()) });
    let gateway = Gateway::new(config(quota, timeout), recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gateway.serve(listener, futures::future::pending()));
    Stage { base, recorder, client: Client::builder(TokioExecutor::new()).build_http() }
}

fn ok_answer(body: Value) -> InvokeOutcome {
    InvokeOutcome::Response(body.to_string().into_bytes())
}

impl Stage {
    async fn send(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> (u16, http::HeaderMap, Value) {
        let mut request = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request =
            request.header("x-multi", "a").header("x-multi", "b").header("content-type", "application/octet-stream");
        let response =
            self.client.request(request.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_function_gets_a_payload_v1_proxy_event() {
    let stage =
        stage(ok_answer(json!({"statusCode": 200, "body": "{}"})), Duration::ZERO, None, Duration::from_secs(5)).await;
    let (status, headers, _) =
        stage.send("GET", "/v1/books/abc%20def?tag=a&tag=b&limit=5", Some("good-key"), b"").await;
    assert_eq!(status, 200);
    for name in ["x-amzn-requestid", "x-amz-apigw-id", "x-amzn-trace-id"] {
        assert!(headers.contains_key(name), "{name}");
    }
    let (function, event) = stage.recorder.events.lock().unwrap()[0].clone();
    assert_eq!(function, "query");
    assert_eq!(event["resource"], "/books/{id}");
    assert_eq!(event["path"], "/books/abc%20def");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["pathParameters"], json!({"id": "abc def"}));
    assert_eq!(event["queryStringParameters"]["tag"], "b");
    assert_eq!(event["multiValueQueryStringParameters"]["tag"], json!(["a", "b"]));
    assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["a", "b"]));
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["stage"], "v1");
    assert_eq!(context["resourcePath"], "/books/{id}");
    assert_eq!(context["resourceId"], "r2");
    assert_eq!(context["apiId"], "api123");
    assert_eq!(context["path"], "/v1/books/abc%20def");
    assert_eq!(context["requestId"].as_str(), headers["x-amzn-requestid"].to_str().ok());
    assert_eq!(context["identity"]["apiKey"], "good-key");
    assert_eq!(context["identity"]["apiKeyId"], "key1");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");
}

#[tokio::test]
async fn binary_bodies_travel_base64_encoded_both_ways() {
    let answer =
        ok_answer(json!({"statusCode": 201, "body": "AAEC", "isBase64Encoded": true, "headers": {"etag": "\"1\""}}));
    let stage = stage(answer, Duration::ZERO, None, Duration::from_secs(5)).await;
    let client = &stage.client;
    let request = http::Request::post(format!("{}/v1/books", stage.base))
        .header("x-api-key", "good-key")
        .body(Full::new(Bytes::from_static(&[0xff, 0x00, 0x9f])))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes().as_ref(), &[0, 1, 2]);
    let (_, event) = stage.recorder.events.lock().unwrap()[0].clone();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "/wCf");
}

#[tokio::test]
async fn keys_must_exist_be_enabled_and_belong_to_a_plan_of_the_stage() {
    let stage = stage(ok_answer(json!({"statusCode": 200})), Duration::ZERO, None, Duration::from_secs(5)).await;
    for key in [None, Some("unknown"), Some("planless-key"), Some("disabled-key")] {
        let (status, headers, body) = stage.send("GET", "/v1/books", key, b"").await;
        assert_eq!((status, body), (403, json!({"message": "Forbidden"})), "{key:?}");
        assert_eq!(headers["x-amzn-errortype"], "ForbiddenException");
    }
    assert!(stage.recorder.events.lock().unwrap().is_empty(), "nothing reached the function");
    for (method, path) in [("DELETE", "/v1/books"), ("GET", "/v1/authors"), ("GET", "/books"), ("GET", "/v2/books")] {
        let (status, headers, body) = stage.send(method, path, Some("good-key"), b"").await;
        assert_eq!((status, body), (403, json!({"message": "Missing Authentication Token"})), "{method} {path}");
        assert_eq!(headers["x-amzn-errortype"], "MissingAuthenticationTokenException");
    }
}

#[tokio::test]
async fn the_quota_runs_out_with_limit_exceeded() {
    let stage = stage(ok_answer(json!({"statusCode": 200})), Duration::ZERO, Some(3), Duration::from_secs(5)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(stage.send("GET", "/v1/books", Some("good-key"), b"").await);
    }
    let codes: Vec<u16> = statuses.iter().map(|s| s.0).collect();
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    assert_eq!(statuses[3].2, json!({"message": "Limit Exceeded"}));
    assert_eq!(statuses[3].1["x-amzn-errortype"], "LimitExceededException");
}

#[tokio::test]
async fn a_slow_integration_times_out_with_504() {
    let stage =
        stage(ok_answer(json!({"statusCode": 200})), Duration::from_secs(3), None, Duration::from_millis(200)).await;
    let (status, _, body) = stage.send("GET", "/v1/books", Some("good-key"), b"").await;
    assert_eq!((status, body), (504, json!({"message": "Endpoint request timed out"})));
}

#[tokio::test]
async fn malformed_answers_and_function_errors_are_502() {
    for answer in [
        InvokeOutcome::Response(b"not json".to_vec()),
        ok_answer(json!({"body": "no status"})),
        InvokeOutcome::FunctionError { error_type: "Unhandled".into(), payload: b"{}".to_vec() },
        InvokeOutcome::Failed { error_type: "Runtime.ExitError".into(), message: "crash".into() },
        InvokeOutcome::Timeout,
    ] {
        let stage = stage(answer.clone(), Duration::ZERO, None, Duration::from_secs(5)).await;
        let (status, _, body) = stage.send("GET", "/v1/books", Some("good-key"), b"").await;
        assert_eq!((status, body), (502, json!({"message": "Internal server error"})), "{answer:?}");
    }
}
