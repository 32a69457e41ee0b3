//! Test support: a fault-injecting HTTP proxy in front of moto (CloudWatch throttling, refusing,
//! unreachable or hanging), the extension's configuration for a test, reading a log stream back
//! from moto, the extension's own diagnostics captured, and a fake Lambda (Extensions and
//! Telemetry APIs) to run the extension's binary as Lambda runs it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use books_telemetry::Config;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

/// What the proxy does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Forward to moto.
    None,
    /// Answer 400 ThrottlingException, as CloudWatch Logs does past its rate.
    Throttle,
    /// Answer 503, as an overloaded service does.
    Unavailable,
    /// Close the connection without an answer: CloudWatch unreachable.
    Drop,
    /// Hold the request and never answer: a request in flight from an environment that was
    /// frozen, or a CloudWatch that hangs.
    Stall,
    /// Answer 400 AccessDeniedException, as CloudWatch Logs does when the caller's role lacks
    /// the permission (AWS JSON 1.1: the code in `__type` and in `x-amzn-errortype`).
    Deny,
    /// Forward the request, then hold CloudWatch's answer until [`FaultProxy::release`]: a
    /// call CloudWatch carried out whose answer reaches its caller late (a frozen one).
    HoldAnswer,
}

pub(crate) struct FaultProxy {
    pub(crate) url: String,
    fault: Arc<Mutex<(Fault, usize)>>,
    /// Requests by `X-Amz-Target` operation (`PutLogEvents`, `CreateLogStream`…), and whether faulted.
    seen: Arc<Mutex<Vec<(String, bool)>>>,
    /// Headers of the PutLogEvents requests that reached moto.
    pub(crate) put_headers: Arc<Mutex<Vec<http::HeaderMap>>>,
    forwarded: Arc<AtomicUsize>,
    /// Answers held by [`Fault::HoldAnswer`] wait for permits here.
    gate: Arc<tokio::sync::Semaphore>,
    /// Answers that reached the hold.
    held: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub(crate) async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let address: SocketAddr = listener.local_addr().unwrap();
        let proxy = Self {
            url: format!("http://{address}"),
            fault: Arc::new(Mutex::new((Fault::None, 0))),
            seen: Arc::default(),
            put_headers: Arc::default(),
            forwarded: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            held: Arc::default(),
        };
        let upstream = upstream.trim_end_matches('/').to_owned();
        let (fault, seen, put_headers, forwarded) =
            (proxy.fault.clone(), proxy.seen.clone(), proxy.put_headers.clone(), proxy.forwarded.clone());
        let (gate, held) = (proxy.gate.clone(), proxy.held.clone());
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (upstream, fault, seen, put_headers, forwarded, client) = (
                    upstream.clone(),
                    fault.clone(),
                    seen.clone(),
                    put_headers.clone(),
                    forwarded.clone(),
                    client.clone(),
                );
                let (gate, held) = (gate.clone(), held.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (upstream, fault, seen, put_headers, forwarded, client) = (
                            upstream.clone(),
                            fault.clone(),
                            seen.clone(),
                            put_headers.clone(),
                            forwarded.clone(),
                            client.clone(),
                        );
                        let (gate, held) = (gate.clone(), held.clone());
                        async move {
                            let target = request
                                .headers()
                                .get("x-amz-target")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|t| t.rsplit('.').next())
                                .unwrap_or("")
                                .to_owned();
                            let current = {
                                let mut f = fault.lock().unwrap();
                                let current = if f.1 > 0 { f.0 } else { Fault::None };
                                if f.1 > 0 && f.1 != usize::MAX {
                                    f.1 -= 1;
                                }
                                current
                            };
                            seen.lock().unwrap().push((target.clone(), current != Fault::None));
                            match current {
                                Fault::Throttle => return Ok(error(400, "ThrottlingException", "Rate exceeded")),
                                Fault::Unavailable => return Ok(error(503, "ServiceUnavailableException", "down")),
                                Fault::Drop => return Err("dropped by the fault proxy"),
                                Fault::Stall => {
                                    tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
                                    return Err("stalled by the fault proxy");
                                }
                                Fault::Deny => {
                                    let message = format!(
                                        "User: arn:aws:sts::123456789012:assumed-role/books-test/fn is not \
                                         authorized to perform: logs:{target} because no identity-based \
                                         policy allows the logs:{target} action"
                                    );
                                    return Ok(error(400, "AccessDeniedException", &message));
                                }
                                Fault::None | Fault::HoldAnswer => {}
                            }
                            let (parts, body) = request.into_parts();
                            if target == "PutLogEvents" {
                                put_headers.lock().unwrap().push(parts.headers.clone());
                            }
                            let body = body.collect().await.map_err(|_| "body")?.to_bytes();
                            let path = parts.uri.path_and_query().map(http::uri::PathAndQuery::as_str).unwrap_or("/");
                            let mut forward = Request::builder().method(parts.method).uri(format!("{upstream}{path}"));
                            for (name, value) in &parts.headers {
                                if name != "host" {
                                    forward = forward.header(name, value);
                                }
                            }
                            let response =
                                client.request(forward.body(Full::new(body)).unwrap()).await.map_err(|_| "upstream")?;
                            forwarded.fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = response.into_parts();
                            let body = body.collect().await.map_err(|_| "upstream body")?.to_bytes();
                            if current == Fault::HoldAnswer {
                                held.fetch_add(1, Ordering::SeqCst);
                                gate.acquire().await.map_err(|_| "gate closed")?.forget();
                            }
                            Ok::<_, &str>(Response::from_parts(parts, Full::new(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    /// Applies `fault` to the next `count` requests (`usize::MAX`: until told otherwise).
    pub(crate) fn set(&self, fault: Fault, count: usize) {
        *self.fault.lock().unwrap() = (fault, count);
    }

    pub(crate) fn heal(&self) {
        self.set(Fault::None, 0);
    }

    /// How many answers [`Fault::HoldAnswer`] has held (released or not).
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Lets every answer held so far, and the next ones, go.
    pub(crate) fn release(&self) {
        self.heal();
        self.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    /// How many requests reached the proxy, of every operation, faulted or not.
    pub(crate) fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// How many requests of an operation were faulted and how many went through.
    pub(crate) fn count(&self, operation: &str) -> (usize, usize) {
        let seen = self.seen.lock().unwrap();
        let faulted = seen.iter().filter(|(op, f)| op == operation && *f).count();
        let passed = seen.iter().filter(|(op, f)| op == operation && !*f).count();
        (faulted, passed)
    }
}

fn error(status: u16, kind: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(format!(r#"{{"__type":"{kind}","message":"{message}"}}"#))))
        .unwrap()
}

/// The extension's configuration for a test, shipping to `log_group`.
pub(crate) fn config(log_group: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("BOOKS_TELEMETRY_LOG_GROUP", log_group.to_owned()),
        ("BOOKS_TELEMETRY_SERVICE", "command".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "books-test-command".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
    ]);
    for (name, value) in extra {
        vars.insert(name, (*value).to_owned());
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("a valid test configuration")
}

/// SDK configuration aimed at `endpoint` (moto, or the proxy in front of it).
pub(crate) async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let mut config = books_testkit::aws_config().await.into_builder();
    config.set_endpoint_url(Some(endpoint.to_owned()));
    config.build()
}

/// A fresh log group in moto.
pub(crate) async fn log_group(logs: &LogsClient, name: &str) -> String {
    let name = format!("/books-telemetry-test/{name}/{}", ulid::Ulid::new());
    logs.create_log_group().log_group_name(&name).send().await.expect("create the log group in moto");
    name
}

/// Every event of a stream, oldest first.
pub(crate) async fn read_stream(logs: &LogsClient, group: &str, stream: &str) -> Vec<(i64, String)> {
    books_testkit::logs::stream_events(logs, group, stream).await.expect("read the log stream back from moto")
}

/// The function lines in shipped events (enriched JSON objects with a `message`, no `type`).
pub(crate) fn messages(events: &[(i64, String)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, m)| serde_json::from_str::<Value>(m).ok())
        .filter(|v| v.get("type").is_none() && v.get("_aws").is_none())
        .filter_map(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// All values of a metric across the EMF documents among the events.
pub(crate) fn metric_values(events: &[(i64, String)], name: &str) -> Vec<f64> {
    let mut values = Vec::new();
    for (_, message) in events {
        let Ok(document) = serde_json::from_str::<Value>(message) else { continue };
        if document.get("_aws").is_none() {
            continue;
        }
        match &document[name] {
            Value::Number(n) => values.push(n.as_f64().unwrap()),
            Value::Array(items) => values.extend(items.iter().filter_map(Value::as_f64)),
            _ => {}
        }
    }
    values
}

/// A Telemetry API delivery of function lines at consecutive milliseconds.
pub(crate) fn function_lines(start_ms: i64, lines: &[String]) -> Vec<u8> {
    let records: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let time = chrono::DateTime::from_timestamp_millis(start_ms + i as i64).unwrap().to_rfc3339();
            serde_json::json!({"time": time, "type": "function", "record": line})
        })
        .collect();
    serde_json::to_vec(&records).unwrap()
}

/// The extension's own diagnostics (what it writes on stderr), captured for the calling thread,
/// as JSON lines.
pub(crate) struct Diagnostics {
    lines: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Diagnostics {
    /// Captures until dropped: everything the extension logs on this thread (a
    /// `#[tokio::test]` runs its tasks on its own thread), at `debug` and above.
    pub(crate) fn capture() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedWriter(lines.clone());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        Self { lines, _guard: tracing::subscriber::set_default(subscriber) }
    }

    /// The captured lines at `level` (`ERROR`, `WARN`…), each as its JSON object.
    pub(crate) fn at(&self, level: &str) -> Vec<Value> {
        let text = String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["level"] == level)
            .collect()
    }
}

/// The Extensions and Telemetry APIs as Lambda serves them to one external extension:
/// registration, the lifecycle events the test hands out, and the subscription, which tells
/// where the extension's telemetry listener is.
pub(crate) struct FakeLambda {
    /// What `AWS_LAMBDA_RUNTIME_API` says: `host:port`.
    pub(crate) runtime_api: String,
    events: tokio::sync::mpsc::UnboundedSender<Value>,
    subscribed: tokio::sync::watch::Receiver<Option<u16>>,
}

impl FakeLambda {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Lambda");
        let runtime_api = listener.local_addr().unwrap().to_string();
        let (events, next) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let next = Arc::new(tokio::sync::Mutex::new(next));
        let (subscribe, subscribed) = tokio::sync::watch::channel(None);
        let subscribe = Arc::new(subscribe);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (next, subscribe) = (next.clone(), subscribe.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (next, subscribe) = (next.clone(), subscribe.clone());
                        async move { Ok::<_, std::convert::Infallible>(lambda_api(request, &next, &subscribe).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { runtime_api, events, subscribed }
    }

    /// The next event is an INVOKE of `request_id`.
    pub(crate) fn invoke(&self, request_id: &str, deadline_ms: i64) {
        let event = serde_json::json!({"eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
            "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:books-test-command",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-00000000-000000000000000000000000"}});
        self.events.send(event).unwrap();
    }

    /// The next event is SHUTDOWN.
    pub(crate) fn shutdown(&self, deadline_ms: i64) {
        let event =
            serde_json::json!({"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline_ms});
        self.events.send(event).unwrap();
    }

    /// The port the extension subscribed its listener on, once it has (at most `bound`).
    pub(crate) async fn listener_port(&self, bound: std::time::Duration) -> u16 {
        let mut subscribed = self.subscribed.clone();
        let port = tokio::time::timeout(bound, subscribed.wait_for(Option::is_some))
            .await
            .expect("the extension subscribed to the Telemetry API")
            .expect("the fake Lambda runs");
        port.expect("a port")
    }
}

async fn lambda_api(
    request: Request<Incoming>,
    next: &tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>,
    subscribe: &tokio::sync::watch::Sender<Option<u16>>,
) -> Response<Full<Bytes>> {
    let respond =
        |status: u16, body: String| Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap();
    match (request.method().as_str(), request.uri().path()) {
        ("POST", "/2020-01-01/extension/register") => {
            let mut response = respond(
                200,
                r#"{"functionName":"books-test-command","functionVersion":"$LATEST","handler":"bootstrap"}"#.into(),
            );
            response.headers_mut().insert("lambda-extension-identifier", "books-telemetry-test".parse().unwrap());
            response
        }
        ("GET", "/2020-01-01/extension/event/next") => {
            let event = next.lock().await.recv().await;
            match event {
                Some(event) => {
                    let mut response = respond(200, event.to_string());
                    response.headers_mut().insert("lambda-extension-event-identifier", "event".parse().unwrap());
                    response
                }
                // The test is over: the extension waits, as it would for a frozen environment.
                None => std::future::pending().await,
            }
        }
        ("PUT", "/2022-07-01/telemetry") => {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            match telemetry_schema::subscription::SubscribeRequest::parse(&body) {
                Ok((subscription, _)) => {
                    let port = subscription.destination.uri.rsplit(':').next().and_then(|p| p.parse().ok());
                    subscribe.send_replace(port);
                    respond(200, "OK".into())
                }
                Err(error) => respond(400, format!(r#"{{"errorMessage":"{error}"}}"#)),
            }
        }
        // Error reports (init, exit).
        _ => respond(202, String::new()),
    }
}

/// The extension's binary, running against a [`FakeLambda`] as Lambda runs it; killed when
/// dropped. Its stderr (its own diagnostics, JSON lines) goes to a file.
pub(crate) struct ExtensionProcess {
    child: std::process::Child,
    pub(crate) stderr: std::path::PathBuf,
}

impl ExtensionProcess {
    /// Starts the extension with `env` on top of the variables Lambda and the test set.
    pub(crate) fn start(lambda: &FakeLambda, endpoint: &str, env: &[(&str, &str)]) -> Self {
        let stderr = std::env::temp_dir().join(format!("books-telemetry-{}.stderr", ulid::Ulid::new()));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_books-telemetry"));
        command
            .env("AWS_LAMBDA_RUNTIME_API", &lambda.runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "books-test-command")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("BOOKS_TELEMETRY_LISTEN", "127.0.0.1:0")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("the extension's stderr file"));
        for (name, value) in env {
            command.env(name, value);
        }
        Self { child: command.spawn().expect("start the extension"), stderr }
    }

    /// `VmHWM`, the peak resident set size so far, in KiB, from `/proc/<pid>/status`.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("its /proc status");
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM in kB")
    }

    /// Waits for it to exit, at most `bound`.
    pub(crate) async fn exit(&mut self, bound: std::time::Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("its status") {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the extension did not exit within {bound:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// What it wrote on stderr, as JSON lines.
    pub(crate) fn diagnostics(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

impl Drop for ExtensionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}
