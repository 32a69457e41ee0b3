//! Shared by the cloud, gateway and stream poller tests: creates in moto, through the SDK, what
//! the Terraform root module creates (REST API, stage, usage plan, keys, image functions, a
//! table with a stream and its event source mapping), a recording `Invoker`, and an HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_apigateway::types::{
    ApiStage, IntegrationType, Op, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings,
};
use aws_sdk_lambda::types::{
    Architecture, Environment, EventSourcePosition, FunctionCode, FunctionResponseType, ImageConfig, PackageType,
};
use books_local::gateway::GatewayConfig;
use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};

pub(crate) const STAGE: &str = "v1";
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const REGION: &str = "us-east-1";

/// The usage plan's limits (Terraform's `var.throttle` and `var.quota`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanLimits {
    pub(crate) rate: f64,
    pub(crate) burst: i32,
    pub(crate) quota: i32,
    pub(crate) quota_offset: i32,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self { rate: 1000.0, burst: 2000, quota: 100_000, quota_offset: 0 }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) value: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) arn: String,
    /// The alias `live` its callers invoke, as Terraform's function module makes it.
    pub(crate) alias_arn: String,
    pub(crate) image_uri: String,
}

/// What the fixture created, with unique names so tests can share one moto.
pub(crate) struct CloudFixture {
    pub(crate) aws: SdkConfig,
    pub(crate) rest_api_id: String,
    pub(crate) rest_api_name: String,
    pub(crate) usage_plan_id: String,
    /// Enabled and in the stage's usage plan.
    pub(crate) key: Key,
    /// Enabled, but in no usage plan.
    pub(crate) key_without_plan: Key,
    /// In the usage plan, but disabled.
    pub(crate) disabled_key: Key,
    pub(crate) command: Function,
    pub(crate) query: Function,
    pub(crate) projector: Function,
    /// Resource ids by path.
    pub(crate) resource_ids: std::collections::BTreeMap<String, String>,
}

/// The method table of the fixture's REST API (Terraform's `local.methods`), plus a keyless
/// health check and a greedy proxy resource.
pub(crate) const METHODS: &[(&str, &str, &str, bool)] = &[
    ("/books", "POST", "command", true),
    ("/books", "GET", "query", true),
    ("/books/{id}", "GET", "query", true),
    ("/books/{id}", "PUT", "command", true),
    ("/books/{id}", "DELETE", "command", true),
    ("/files/{proxy+}", "ANY", "query", true),
    ("/health", "GET", "query", false),
];

pub(crate) async fn aws() -> SdkConfig {
    books_testkit::aws_config().await
}

fn suffix() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// moto lets a function use only a role that exists in its IAM. The SDK for IAM is not worth a
/// dependency for one call, so this speaks IAM's query protocol directly; moto takes the
/// service from the credential scope and checks no signature.
async fn lambda_role() -> String {
    let name = "books-local-tests";
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let encoded: String = policy
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let body = format!("Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={encoded}");
    let request = http::Request::post(format!("{}/", books_testkit::endpoint()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body)))
        .expect("IAM request");
    // A second CreateRole answers EntityAlreadyExists: the role is there either way.
    let _ = client().request(request).await.expect("moto answers IAM");
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

impl CloudFixture {
    pub(crate) async fn create() -> Self {
        Self::create_with(PlanLimits::default()).await
    }

    pub(crate) async fn create_with(limits: PlanLimits) -> Self {
        let aws = aws().await;
        let apigw = aws_sdk_apigateway::Client::new(&aws);
        let lambda = aws_sdk_lambda::Client::new(&aws);
        let suffix = suffix();
        let role = lambda_role().await;

        // Functions from the two images (the projector runs the query image with another command).
        let digest = "sha256:".to_owned() + &"ab".repeat(32);
        let image = |kind: &str| format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/books-local-{kind}@{digest}");
        let mut functions = Vec::new();
        for (kind, image_kind, handler, memory, timeout, reserved) in [
            ("command", "command", "/var/task/books-command", 512, 10, Some(5)),
            ("query", "query", "/var/task/books-query", 256, 6, None),
            ("projector", "query", "/var/task/books-projector", 384, 30, Some(2)),
        ] {
            let name = format!("books-{suffix}-{kind}");
            let created = lambda
                .create_function()
                .function_name(&name)
                .role(&role)
                .package_type(PackageType::Image)
                .code(FunctionCode::builder().image_uri(image(image_kind)).build())
                .image_config(ImageConfig::builder().command(handler).build())
                .architectures(Architecture::Arm64)
                .memory_size(memory)
                .timeout(timeout)
                .environment(
                    Environment::builder()
                        .variables("BOOKS_TABLE", format!("books-{suffix}"))
                        .variables("LOG_LEVEL", "info")
                        .variables("SERVICE", kind)
                        .build(),
                )
                .publish(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create function {name}: {e:?}"));
            if let Some(reserved) = reserved {
                lambda
                    .put_function_concurrency()
                    .function_name(&name)
                    .reserved_concurrent_executions(reserved)
                    .send()
                    .await
                    .expect("reserved concurrency");
            }
            let alias = lambda
                .create_alias()
                .function_name(&name)
                .name("live")
                .function_version("1")
                .send()
                .await
                .unwrap_or_else(|e| panic!("alias of {name}: {e:?}"));
            let arn = created.function_arn().expect("function arn");
            functions.push(Function {
                arn: arn.strip_suffix(":1").unwrap_or(arn).to_owned(),
                alias_arn: alias.alias_arn().expect("alias arn").to_owned(),
                name,
                image_uri: image(image_kind),
            });
        }
        let projector = functions.pop().expect("projector");
        let query = functions.pop().expect("query");
        let command = functions.pop().expect("command");

        // The REST API, its resources, methods and proxy integrations.
        let rest_api_name = format!("books-{suffix}");
        let api = apigw
            .create_rest_api()
            .name(&rest_api_name)
            .binary_media_types("application/octet-stream")
            .send()
            .await
            .expect("create REST API");
        let rest_api_id = api.id().expect("api id").to_owned();
        // moto ignores binaryMediaTypes on create; a patch (as AWS documents it) sets them. moto
        // takes the type from the value, AWS from the path: give both.
        apigw
            .update_rest_api()
            .rest_api_id(&rest_api_id)
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Add)
                    .path("/binaryMediaTypes/application~1octet-stream")
                    .value("application/octet-stream")
                    .build(),
            )
            .send()
            .await
            .expect("binary media types");
        let resources = apigw.get_resources().rest_api_id(&rest_api_id).send().await.expect("resources");
        let root = resources.items().iter().find(|r| r.path() == Some("/")).and_then(|r| r.id()).expect("root");
        let mut resource_ids = std::collections::BTreeMap::from([("/".to_owned(), root.to_owned())]);
        for path in ["/books", "/books/{id}", "/files", "/files/{proxy+}", "/health"] {
            let (parent, part) = path.rsplit_once('/').expect("a path");
            let parent_id = resource_ids[if parent.is_empty() { "/" } else { parent }].clone();
            let created = apigw
                .create_resource()
                .rest_api_id(&rest_api_id)
                .parent_id(parent_id)
                .path_part(part)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create resource {path}: {e:?}"));
            resource_ids.insert(path.to_owned(), created.id().expect("resource id").to_owned());
        }
        for (path, http_method, function, key_required) in METHODS {
            let function = match *function {
                "command" => &command,
                _ => &query,
            };
            apigw
                .put_method()
                .rest_api_id(&rest_api_id)
                .resource_id(&resource_ids[*path])
                .http_method(*http_method)
                .authorization_type("NONE")
                .api_key_required(*key_required)
                .send()
                .await
                .unwrap_or_else(|e| panic!("put method {http_method} {path}: {e:?}"));
            apigw
                .put_integration()
                .rest_api_id(&rest_api_id)
                .resource_id(&resource_ids[*path])
                .http_method(*http_method)
                .r#type(IntegrationType::AwsProxy)
                .integration_http_method("POST")
                .uri(format!(
                    "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{}/invocations",
                    function.alias_arn
                ))
                .timeout_in_millis(29_000)
                .send()
                .await
                .unwrap_or_else(|e| panic!("put integration {http_method} {path}: {e:?}"));
        }

        // Deployment, stage v1 with method throttling, usage plan, keys.
        let deployment = apigw.create_deployment().rest_api_id(&rest_api_id).send().await.expect("create deployment");
        apigw
            .create_stage()
            .rest_api_id(&rest_api_id)
            .stage_name(STAGE)
            .deployment_id(deployment.id().expect("deployment id"))
            .variables("tables", format!("books-{suffix}"))
            .send()
            .await
            .expect("create stage");
        let replace =
            |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        apigw
            .update_stage()
            .rest_api_id(&rest_api_id)
            .stage_name(STAGE)
            .patch_operations(replace("/*/*/throttling/rateLimit", "1000"))
            .patch_operations(replace("/*/*/throttling/burstLimit", "2000"))
            .patch_operations(replace("/~1books~1{id}/PUT/throttling/rateLimit", "20"))
            .patch_operations(replace("/~1books~1{id}/PUT/throttling/burstLimit", "10"))
            .send()
            .await
            .expect("method settings");
        let plan = apigw
            .create_usage_plan()
            .name(format!("books-{suffix}-default"))
            .api_stages(ApiStage::builder().api_id(&rest_api_id).stage(STAGE).build())
            .throttle(ThrottleSettings::builder().rate_limit(limits.rate).burst_limit(limits.burst).build())
            .quota(
                QuotaSettings::builder()
                    .limit(limits.quota)
                    .offset(limits.quota_offset)
                    .period(QuotaPeriodType::Month)
                    .build(),
            )
            .send()
            .await
            .expect("create usage plan");
        let usage_plan_id = plan.id().expect("plan id").to_owned();
        let new_key = |name: String, enabled: bool, in_plan: bool| {
            let apigw = apigw.clone();
            let usage_plan_id = usage_plan_id.clone();
            async move {
                let key = apigw.create_api_key().name(name).enabled(enabled).send().await.expect("create API key");
                let key = Key { id: key.id().expect("key id").into(), value: key.value().expect("key value").into() };
                if in_plan {
                    apigw
                        .create_usage_plan_key()
                        .usage_plan_id(usage_plan_id)
                        .key_id(&key.id)
                        .key_type("API_KEY")
                        .send()
                        .await
                        .expect("usage plan key");
                }
                key
            }
        };
        let key = new_key(format!("books-{suffix}-default"), true, true).await;
        let key_without_plan = new_key(format!("books-{suffix}-stray"), true, false).await;
        let disabled_key = new_key(format!("books-{suffix}-disabled"), false, true).await;

        Self {
            aws,
            rest_api_id,
            rest_api_name,
            usage_plan_id,
            key,
            key_without_plan,
            disabled_key,
            command,
            query,
            projector,
            resource_ids,
        }
    }

    /// The projector's event source mapping on `stream_arn`, as Terraform declares it.
    pub(crate) async fn map_stream(&self, stream_arn: &str) -> String {
        let lambda = aws_sdk_lambda::Client::new(&self.aws);
        let mapping = lambda
            .create_event_source_mapping()
            .function_name(&self.projector.alias_arn)
            .event_source_arn(stream_arn)
            .batch_size(7)
            .starting_position(EventSourcePosition::TrimHorizon)
            .maximum_retry_attempts(3)
            .bisect_batch_on_function_error(true)
            .maximum_record_age_in_seconds(3600)
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .enabled(true)
            .send()
            .await
            .expect("create event source mapping");
        mapping.uuid().expect("mapping uuid").to_owned()
    }

    /// The stage as `cloud` reads it.
    pub(crate) async fn gateway_config(&self) -> GatewayConfig {
        books_local::cloud::read(&self.aws, &self.rest_api_id, STAGE).await.expect("read the topology").gateway
    }
}

/// The stream ARN of a test table (see `books_testkit::TestTables`).
pub(crate) async fn stream_arn(tables: &books_testkit::TestTables) -> String {
    let described = tables.client.describe_table().table_name(&tables.books).send().await.expect("describe table");
    described.table().and_then(|t| t.latest_stream_arn()).expect("the books table has a stream").to_owned()
}

type Script = dyn Fn(&InvokeRequest) -> BoxFuture<'static, InvokeOutcome> + Send + Sync;

/// An `Invoker` that records every request and answers with a script.
#[derive(Clone)]
pub(crate) struct RecordingInvoker {
    requests: Arc<Mutex<Vec<InvokeRequest>>>,
    script: Arc<Script>,
}

impl RecordingInvoker {
    pub(crate) fn new<F>(script: impl Fn(&InvokeRequest) -> F + Send + Sync + 'static) -> Self
    where
        F: std::future::Future<Output = InvokeOutcome> + Send + 'static,
    {
        Self { requests: Arc::default(), script: Arc::new(move |request| Box::pin(script(request))) }
    }

    /// Answers every invocation with `response` (a proxy response or a batch response).
    pub(crate) fn answering(response: serde_json::Value) -> Self {
        Self::new(move |_| {
            let payload = response.to_string().into_bytes();
            async move { InvokeOutcome::Response(payload) }
        })
    }

    pub(crate) fn requests(&self) -> Vec<InvokeRequest> {
        self.requests.lock().expect("requests").clone()
    }

    /// The payloads received, as JSON.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        self.requests().iter().map(|r| serde_json::from_slice(&r.payload).expect("JSON payload")).collect()
    }
}

impl Invoker for RecordingInvoker {
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome> {
        let answer = (self.script)(&request);
        self.requests.lock().expect("requests").push(request);
        answer
    }
}

/// A gateway serving the stage on a free port, stopped when dropped.
pub(crate) struct RunningGateway {
    pub(crate) base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningGateway {
    pub(crate) async fn start(config: GatewayConfig, invoker: Arc<dyn Invoker>) -> Self {
        Self::start_limited(config, invoker, books_local::gateway::ClientLimits::DEFAULT).await
    }

    /// The same, holding clients to `limits`.
    pub(crate) async fn start_limited(
        config: GatewayConfig,
        invoker: Arc<dyn Invoker>,
        limits: books_local::gateway::ClientLimits,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(books_local::gateway::serve_limited(config, invoker, limits, listener, async move {
            let _ = stopped.await;
        }));
        Self { base_url: format!("http://{address}/{STAGE}"), stop: Some(stop), task: Some(task) }
    }

    /// Stops accepting and waits for requests in flight.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("gateway stops").expect("gateway task");
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) type HttpClient =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Sends `body` in chunks of 64 KiB with no `Content-Length` (chunked transfer encoding).
pub(crate) async fn send_chunked(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let frames: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> =
        body.chunks(64 * 1024).map(|chunk| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(chunk)))).collect();
    let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let response = client.request(request.body(body).expect("request")).await.expect("the gateway answers");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request; `headers` are added in order (repeat a name for several values).
pub(crate) async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).expect("request");
    let response = client().request(request).await.expect("the gateway answers");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}
