//! The emulated REST stage against the topology read from moto, with a recording invoker: key
//! enforcement, routing, the proxy event and response, throttling, quota, timeouts and errors.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod cloud_support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use books_local::gateway::{ClientLimits, GatewayConfig, Throttle};
use books_local::invoke::{InvokeOutcome, Invoker};
use cloud_support::{send, send_chunked, CloudFixture, PlanLimits, RecordingInvoker, Reply, RunningGateway};
use serde_json::{json, Value};

const BASE64: base64::engine::general_purpose::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn ok_response() -> Value {
    json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{\"ok\":true}"})
}

async fn start(config: GatewayConfig, invoker: &RecordingInvoker) -> RunningGateway {
    let invoker: Arc<dyn Invoker> = Arc::new(invoker.clone());
    RunningGateway::start(config, invoker).await
}

fn assert_gateway_error(reply: &Reply, status: u16, message: &str, error_type: Option<&str>) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.json(), json!({ "message": message }));
    assert_eq!(reply.header("x-amzn-errortype"), error_type, "{reply:?}");
    assert!(reply.header("x-amzn-requestid").is_some_and(|id| id.len() == 36), "{reply:?}");
}

/// A concrete request path for each method of the fixture.
fn concrete(path: &str) -> String {
    path.replace("{id}", "01JBOOK").replace("{proxy+}", "covers/front.png")
}

#[tokio::test]
async fn every_route_without_a_key_is_403_forbidden() {
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    for (path, method, _, key_required) in cloud_support::METHODS.iter().filter(|m| m.3) {
        let method = if *method == "ANY" { "PATCH" } else { method };
        let reply = send(method, &format!("{}{}", gateway.base_url, concrete(path)), &[], "").await;
        assert!(key_required);
        assert_gateway_error(&reply, 403, "Forbidden", Some("ForbiddenException"));
    }
    assert!(invoker.requests().is_empty(), "no function ran");
}

#[tokio::test]
async fn unknown_disabled_or_planless_keys_are_403_forbidden() {
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let url = format!("{}/books", gateway.base_url);
    for key in ["not-a-key", fixture.key_without_plan.value.as_str(), fixture.disabled_key.value.as_str()] {
        let reply = send("GET", &url, &[("x-api-key", key)], "").await;
        assert_gateway_error(&reply, 403, "Forbidden", Some("ForbiddenException"));
    }
    assert!(invoker.requests().is_empty(), "no function ran");
    let reply = send("GET", &url, &[("x-api-key", &fixture.key.value)], "").await;
    assert_eq!(reply.status, 200, "the plan's key works: {reply:?}");
}

#[tokio::test]
async fn a_payload_over_10_mb_is_413_request_too_long_and_reaches_no_function() {
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let url = format!("{}/books", gateway.base_url);
    let key = [("x-api-key", fixture.key.value.as_str())];
    let limit = books_local::gateway::PAYLOAD_LIMIT;
    // Declared too large: refused before anything is read or checked (no key is needed).
    let reply = send("POST", &url, &[], vec![b'a'; limit + 1]).await;
    assert_gateway_error(&reply, 413, "Request Too Long", None);
    // Sent in chunks with no length declared: refused once the limit is passed.
    let reply = send_chunked("POST", &url, &key, vec![b'a'; limit + 1]).await;
    assert_gateway_error(&reply, 413, "Request Too Long", None);
    assert!(invoker.requests().is_empty(), "no function ran");
    // At the limit it passes, whole.
    let reply = send_chunked("POST", &url, &key, vec![b'a'; limit]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(invoker.events()[0]["body"].as_str().map(str::len), Some(limit));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_403_missing_authentication_token() {
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let root = gateway.base_url.trim_end_matches("/v1").to_owned();
    let key = [("x-api-key", fixture.key.value.as_str())];
    for (method, url) in [
        ("GET", format!("{}/authors", gateway.base_url)),
        ("GET", format!("{}/books/1/2", gateway.base_url)),
        ("PATCH", format!("{}/books", gateway.base_url)),
        ("POST", format!("{}/books/01JBOOK", gateway.base_url)),
        ("GET", format!("{}/files", gateway.base_url)),
        ("GET", format!("{root}/v2/books")),
        ("GET", format!("{root}/v1books")),
        ("GET", format!("{root}/")),
    ] {
        let reply = send(method, &url, &key, "").await;
        assert_gateway_error(&reply, 403, "Missing Authentication Token", Some("MissingAuthenticationTokenException"));
    }
    assert!(invoker.requests().is_empty());
}

#[tokio::test]
async fn a_valid_key_delivers_a_v1_proxy_event_and_maps_the_response_back() {
    let fixture = CloudFixture::create().await;
    let config = fixture.gateway_config().await;
    let binary = [0u8, 159, 146, 150, 255];
    let invoker = RecordingInvoker::answering(json!({
        "statusCode": 201,
        "headers": {"content-type": "application/octet-stream", "etag": "\"3\"", "x-both": "single"},
        "multiValueHeaders": {"x-both": ["first", "second"], "set-cookie": ["a=1", "b=2"]},
        "body": BASE64.encode(binary),
        "isBase64Encoded": true,
    }));
    let gateway = start(config, &invoker).await;
    let url = format!("{}/books/01JBOOK?tag=sci%20fi&tag=classic&limit=5", gateway.base_url);
    let reply = send(
        "PUT",
        &url,
        &[
            ("x-api-key", &fixture.key.value),
            ("content-type", "application/json"),
            ("if-match", "\"2\""),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("user-agent", "gateway-test/1"),
        ],
        r#"{"title":"Dune"}"#,
    )
    .await;

    // The response, mapped back.
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(&reply.body[..], &binary, "base64 body of a binary media type is decoded");
    assert_eq!(reply.header("etag"), Some("\"3\""));
    let both: Vec<&str> = reply.headers.get_all("x-both").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(both, ["first", "second"], "multiValueHeaders win over headers");
    assert_eq!(reply.headers.get_all("set-cookie").iter().count(), 2);

    // The event the function received.
    let requests = invoker.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].function_name, fixture.command.name);
    let event = &invoker.events()[0];
    assert_eq!(event["resource"], "/books/{id}");
    assert_eq!(event["path"], "/books/01JBOOK");
    assert_eq!(event["httpMethod"], "PUT");
    assert_eq!(event["headers"]["if-match"], "\"2\"");
    assert_eq!(event["headers"]["x-multi"], "two");
    assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
    assert_eq!(event["headers"]["x-forwarded-proto"], "http");
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(event["queryStringParameters"], json!({"tag": "classic", "limit": "5"}));
    assert_eq!(event["multiValueQueryStringParameters"], json!({"tag": ["sci fi", "classic"], "limit": ["5"]}));
    assert_eq!(event["pathParameters"], json!({"id": "01JBOOK"}));
    assert_eq!(event["stageVariables"], json!({"tables": fixture.rest_api_name}));
    assert_eq!(event["body"], r#"{"title":"Dune"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["accountId"], cloud_support::ACCOUNT);
    assert_eq!(context["apiId"], fixture.rest_api_id);
    assert_eq!(context["resourceId"], fixture.resource_ids["/books/{id}"]);
    assert_eq!(context["resourcePath"], "/books/{id}");
    assert_eq!(context["httpMethod"], "PUT");
    assert_eq!(context["path"], "/v1/books/01JBOOK");
    assert_eq!(context["stage"], "v1");
    assert_eq!(context["protocol"], "HTTP/1.1");
    assert!(context["requestTimeEpoch"].as_i64().is_some_and(|ms| ms > 1_600_000_000_000));
    assert!(context["requestTime"].as_str().is_some_and(|t| t.ends_with(" +0000")), "{context}");
    assert!(context["domainName"].as_str().is_some_and(|d| d.starts_with("127.0.0.1")));
    let identity = &context["identity"];
    assert_eq!(identity["apiKey"], fixture.key.value.as_str());
    assert_eq!(identity["apiKeyId"], fixture.key.id.as_str());
    assert_eq!(identity["sourceIp"], "127.0.0.1");
    assert_eq!(identity["userAgent"], "gateway-test/1");

    // The ids tie the response, the event and the invocation together.
    assert_eq!(reply.header("x-amzn-requestid"), context["requestId"].as_str());
    assert_eq!(context["requestId"].as_str().map(str::len), Some(36));
    assert_eq!(reply.header("x-amz-apigw-id"), context["extendedRequestId"].as_str());
    let trace_id = requests[0].trace_id.as_deref().expect("a trace id is passed to the invocation");
    assert!(trace_id.starts_with("Root=1-"), "{trace_id}");
    assert_eq!(reply.header("x-amzn-trace-id"), Some(trace_id));
    assert_eq!(event["headers"]["x-amzn-trace-id"], trace_id);
}

#[tokio::test]
async fn binary_bodies_travel_base64_and_keyless_methods_carry_no_key() {
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(json!({"statusCode": 200, "body": "aGk=", "isBase64Encoded": true}));
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let key = fixture.key.value.as_str();

    let bytes = vec![0u8, 1, 2, 250, 251];
    let url = format!("{}/files/covers/front.png", gateway.base_url);
    let reply =
        send("POST", &url, &[("x-api-key", key), ("content-type", "application/octet-stream")], bytes.clone()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"aGk=", "base64 text of a non-binary type passes through, as in API Gateway");
    assert_eq!(reply.header("content-type"), Some("application/json"), "the default content type");
    let text = send("POST", &url, &[("x-api-key", key), ("content-type", "text/plain")], "plain words").await;
    assert_eq!(text.status, 200);

    let health = send("GET", &format!("{}/health", gateway.base_url), &[("x-api-key", key)], "").await;
    assert_eq!(health.status, 200);

    let events = invoker.events();
    assert_eq!(events[0]["resource"], "/files/{proxy+}");
    assert_eq!(events[0]["httpMethod"], "POST", "served by the ANY method");
    assert_eq!(events[0]["pathParameters"], json!({"proxy": "covers/front.png"}));
    assert_eq!(events[0]["isBase64Encoded"], true);
    assert_eq!(events[0]["body"], BASE64.encode(&bytes));
    assert_eq!(events[1]["isBase64Encoded"], false);
    assert_eq!(events[1]["body"], "plain words");
    assert_eq!(events[2]["resource"], "/health");
    assert_eq!(events[2]["pathParameters"], Value::Null);
    assert_eq!(events[2]["queryStringParameters"], Value::Null);
    assert_eq!(events[2]["body"], Value::Null);
    let identity = &events[2]["requestContext"]["identity"];
    assert_eq!(identity["apiKey"], Value::Null, "a key the method does not require is not validated");
    assert_eq!(identity["apiKeyId"], Value::Null);
}

#[tokio::test]
async fn a_burst_over_the_usage_plan_rate_is_partly_429_too_many_requests() {
    // A bucket of 5 that refills once a minute: the count does not depend on the machine's speed.
    let limits = PlanLimits { rate: 1.0 / 60.0, burst: 5, ..PlanLimits::default() };
    let fixture = CloudFixture::create_with(limits).await;
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let url = format!("{}/books", gateway.base_url);
    let key = [("x-api-key", fixture.key.value.as_str())];
    let replies = futures::future::join_all((0..12).map(|_| send("GET", &url, &key, ""))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let throttled: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + throttled.len(), 12, "only 200s and 429s");
    assert!((5..=6).contains(&ok), "the burst passes, little more: {ok}");
    for reply in throttled {
        assert_gateway_error(reply, 429, "Too Many Requests", Some("TooManyRequestsException"));
    }
    assert_eq!(invoker.requests().len(), ok);
}

#[tokio::test]
async fn method_throttling_applies_per_method() {
    let fixture = CloudFixture::create().await;
    let mut config = fixture.gateway_config().await;
    let put = config
        .resources
        .iter_mut()
        .find(|r| r.path == "/books/{id}")
        .and_then(|r| r.methods.get_mut("PUT"))
        .expect("PUT /books/{id}");
    put.throttle = Some(Throttle { rate: 1.0 / 60.0, burst: 2 });
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(config, &invoker).await;
    let url = format!("{}/books/01JBOOK", gateway.base_url);
    let key = [("x-api-key", fixture.key.value.as_str())];
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send("PUT", &url, &key, "{}").await.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(send("GET", &url, &key, "").await.status, 200, "other methods keep their own bucket");
}

#[tokio::test]
async fn a_spent_quota_is_429_limit_exceeded() {
    let limits = PlanLimits { quota: 4, quota_offset: 1, ..PlanLimits::default() };
    let fixture = CloudFixture::create_with(limits).await;
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let url = format!("{}/books", gateway.base_url);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send("GET", &url, &[("x-api-key", fixture.key.value.as_str())], "").await.status);
    }
    assert_eq!(statuses, [200, 200, 200], "limit 4 minus the offset of 1");
    let reply = send("GET", &url, &[("x-api-key", fixture.key.value.as_str())], "").await;
    assert_gateway_error(&reply, 429, "Limit Exceeded", Some("LimitExceededException"));
    assert_eq!(invoker.requests().len(), 3);
}

#[tokio::test]
async fn a_slow_integration_is_504_endpoint_request_timed_out() {
    let fixture = CloudFixture::create().await;
    let mut config = fixture.gateway_config().await;
    config.integration_timeout = Duration::from_millis(300);
    let invoker = RecordingInvoker::new(|_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        InvokeOutcome::Response(ok_response().to_string().into_bytes())
    });
    let gateway = start(config, &invoker).await;
    let reply = send("GET", &format!("{}/books", gateway.base_url), &[("x-api-key", &fixture.key.value)], "").await;
    assert_gateway_error(&reply, 504, "Endpoint request timed out", None);
    assert!(reply.header("x-amz-apigw-id").is_some());
}

#[tokio::test]
async fn function_failures_and_malformed_responses_are_5xx_internal_server_error() {
    let fixture = CloudFixture::create().await;
    let config = fixture.gateway_config().await;
    let cases: Vec<(InvokeOutcome, u16)> = vec![
        (InvokeOutcome::Response(br#"{"body":"no status"}"#.to_vec()), 502),
        (InvokeOutcome::Response(br#"{"statusCode":200,"body":{"not":"a string"}}"#.to_vec()), 502),
        (InvokeOutcome::Response(b"plain text".to_vec()), 502),
        (InvokeOutcome::FunctionError { error_type: "Panic".into(), payload: b"{}".to_vec() }, 502),
        (InvokeOutcome::Timeout, 502),
        (InvokeOutcome::Failed { error_type: "Runtime.ExitError".into(), message: "exit 1".into() }, 502),
        // Lambda refused the invocation: API Gateway answers 500, not 429.
        (InvokeOutcome::Throttled, 500),
        (InvokeOutcome::NotFound, 500),
    ];
    for (outcome, status) in cases {
        let answer = outcome.clone();
        let invoker = RecordingInvoker::new(move |_| {
            let answer = answer.clone();
            async move { answer }
        });
        let gateway = start(config.clone(), &invoker).await;
        let reply = send("GET", &format!("{}/books", gateway.base_url), &[("x-api-key", &fixture.key.value)], "").await;
        assert_eq!(reply.status, status, "{outcome:?}");
        assert_gateway_error(&reply, status, "Internal server error", Some("InternalServerErrorException"));
        gateway.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::new(|_| async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        InvokeOutcome::Response(ok_response().to_string().into_bytes())
    });
    let gateway = start(fixture.gateway_config().await, &invoker).await;
    let url = format!("{}/books", gateway.base_url);
    let key = fixture.key.value.clone();
    let in_flight = tokio::spawn(async move { send("GET", &url, &[("x-api-key", &key)], "").await });
    while invoker.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.shutdown().await;
    let reply = in_flight.await.expect("request task");
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn the_api_description_is_served_beside_the_stage_without_a_key_and_nothing_else_is() {
    use http_body_util::BodyExt;
    let fixture = CloudFixture::create().await;
    let document = std::fs::read(books_testkit::workspace_root().join("api/openapi.yaml")).unwrap();
    let invoker = RecordingInvoker::answering(ok_response());
    let (sink, _recorded) = books_local::cloudwatch::MetricSink::channel();
    let gateway = books_local::gateway::Gateway::with_metrics(
        fixture.gateway_config().await,
        Arc::new(invoker.clone()) as Arc<dyn Invoker>,
        sink,
        Some(document.clone().into()),
    );
    let peer: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let get = |path: &str| http::Request::get(path).body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
    let served = gateway.handle(get(books_local::gateway::DESCRIPTION_PATH), peer).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/yaml");
    assert_eq!(served.into_body().collect().await.unwrap().to_bytes(), document);
    // Anything else outside the stage is API Gateway's answer, and no function was invoked.
    let other = gateway.handle(get("/openapi.json"), peer).await;
    assert_eq!(other.status(), 403);
    assert!(invoker.requests().is_empty());
    // Without a description the path is like any other outside the stage.
    let (sink, _recorded) = books_local::cloudwatch::MetricSink::channel();
    let bare = books_local::gateway::Gateway::with_metrics(
        fixture.gateway_config().await,
        Arc::new(invoker) as Arc<dyn Invoker>,
        sink,
        None,
    );
    assert_eq!(bare.handle(get(books_local::gateway::DESCRIPTION_PATH), peer).await.status(), 403);
}

/// A resource policy that lets in only some source addresses (what Terraform's
/// `allowed_source_cidrs` makes) is decided before the key: other addresses get API Gateway's
/// 403 `AccessDeniedException`, even with a valid key, and no function runs.
#[tokio::test]
async fn a_resource_policy_keeps_out_other_source_addresses_before_the_key_is_looked_at() {
    use http_body_util::BodyExt;
    let fixture = CloudFixture::create().await;
    let execution_arn =
        format!("arn:aws:execute-api:{}:{}:{}", cloud_support::REGION, cloud_support::ACCOUNT, fixture.rest_api_id);
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": format!("{execution_arn}/*")},
            {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": format!("{execution_arn}/*"),
             "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}}
        ]
    });
    aws_sdk_apigateway::Client::new(&fixture.aws)
        .update_rest_api()
        .rest_api_id(&fixture.rest_api_id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/policy")
                .value(policy.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let invoker = RecordingInvoker::answering(ok_response());
    let gateway = books_local::gateway::Gateway::new(
        fixture.gateway_config().await,
        Arc::new(invoker.clone()) as Arc<dyn Invoker>,
    );
    let get = || {
        http::Request::get("/v1/books")
            .header("x-api-key", &fixture.key.value)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };

    let denied = gateway.handle(get(), "127.0.0.1:50000".parse().unwrap()).await;
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.headers()["x-amzn-errortype"], "AccessDeniedException");
    let body: Value = serde_json::from_slice(&denied.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let resource =
        format!("arn:aws:execute-api:{}:********9012:{}/v1/GET/books", cloud_support::REGION, fixture.rest_api_id);
    assert_eq!(
        body,
        json!({"Message": format!("User: anonymous is not authorized to perform: execute-api:Invoke on resource: {resource} with an explicit deny")})
    );
    assert!(invoker.requests().is_empty(), "no function ran for a denied source");

    let allowed = gateway.handle(get(), "203.0.113.5:50000".parse().unwrap()).await;
    assert_eq!(allowed.status(), 200, "an allowed source with the key");
    assert_eq!(invoker.requests().len(), 1);
}

/// A raw connection to a gateway, for clients that stop halfway.
async fn connect(gateway: &RunningGateway) -> tokio::net::TcpStream {
    let address = gateway.base_url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    tokio::net::TcpStream::connect(address).await.unwrap()
}

/// What the gateway sends on `stream` until it closes it (bounded: a test never hangs).
async fn answer(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the gateway answers or closes").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Request headers announcing a body that never comes.
fn head_without_body(method: &str, path: &str, key: Option<&str>) -> String {
    let key = key.map(|k| format!("x-api-key: {k}\r\n")).unwrap_or_default();
    format!("{method} {path} HTTP/1.1\r\nhost: local\r\ncontent-type: application/json\r\n{key}content-length: 1000000\r\nconnection: close\r\n\r\n")
}

#[tokio::test]
async fn a_request_without_a_key_or_a_route_is_refused_before_its_body_is_read() {
    use tokio::io::AsyncWriteExt;
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let limits = ClientLimits { body_read: Duration::from_secs(2), ..ClientLimits::DEFAULT };
    let gateway =
        RunningGateway::start_limited(fixture.gateway_config().await, Arc::new(invoker.clone()), limits).await;
    for (method, path, key, expected) in [
        ("POST", "/v1/books", None, "403 Forbidden"),
        ("POST", "/v1/books", Some("not-a-key"), "403 Forbidden"),
        ("POST", "/v1/authors", Some(fixture.key.value.as_str()), "403 Forbidden"),
        // A valid key on a route: the body is awaited, for a bounded time.
        ("POST", "/v1/books", Some(fixture.key.value.as_str()), "408 Request Timeout"),
    ] {
        let mut stream = connect(&gateway).await;
        stream.write_all(head_without_body(method, path, key).as_bytes()).await.unwrap();
        let answer = answer(&mut stream).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {expected}")), "{method} {path} {key:?}: {answer}");
    }
    assert!(invoker.requests().is_empty(), "no function ran");
}

#[tokio::test]
async fn a_client_that_stops_sending_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let limits = ClientLimits { header_read: Duration::from_secs(2), ..ClientLimits::DEFAULT };
    let gateway =
        RunningGateway::start_limited(fixture.gateway_config().await, Arc::new(invoker.clone()), limits).await;
    let mut halfway = connect(&gateway).await;
    halfway.write_all(b"GET /v1/books HTTP/1.1\r\nhost: local\r\n").await.unwrap();
    let idle = connect(&gateway).await;
    // Both are closed by the gateway (answer() reads until it closes, bounded).
    let _ = answer(&mut halfway).await;
    let mut idle = idle;
    assert_eq!(answer(&mut idle).await, "", "an idle connection is closed without an answer");
}

#[tokio::test]
async fn past_the_connection_limit_clients_wait_until_a_connection_closes() {
    use tokio::io::AsyncWriteExt;
    let fixture = CloudFixture::create().await;
    let invoker = RecordingInvoker::answering(ok_response());
    let limits = ClientLimits { connections: 2, ..ClientLimits::DEFAULT };
    let gateway =
        RunningGateway::start_limited(fixture.gateway_config().await, Arc::new(invoker.clone()), limits).await;
    let first = connect(&gateway).await;
    let _second = connect(&gateway).await;
    let mut third = connect(&gateway).await;
    let request = format!(
        "GET /v1/books HTTP/1.1\r\nhost: local\r\nx-api-key: {}\r\nconnection: close\r\n\r\n",
        fixture.key.value
    );
    third.write_all(request.as_bytes()).await.unwrap();
    let mut waiting = tokio::spawn(async move { answer(&mut third).await });
    // A bound in the safe direction: a loaded machine answers later, never sooner.
    assert!(tokio::time::timeout(Duration::from_secs(1), &mut waiting).await.is_err(), "served past the limit");
    assert!(invoker.requests().is_empty());
    drop(first);
    let answer = waiting.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "served once a place was free: {answer}");
}
