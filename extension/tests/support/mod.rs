//! Test support: a fault-injecting HTTP proxy in front of moto (CloudWatch throttling, or
//! CloudWatch unreachable), the extension's configuration for a test, and reading a log
//! stream back from moto.

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
}

pub(crate) struct FaultProxy {
    pub(crate) url: String,
    fault: Arc<Mutex<(Fault, usize)>>,
    /// Requests by `X-Amz-Target` operation (`PutLogEvents`, `CreateLogStream`…), and whether faulted.
    seen: Arc<Mutex<Vec<(String, bool)>>>,
    /// Headers of the PutLogEvents requests that reached moto.
    pub(crate) put_headers: Arc<Mutex<Vec<http::HeaderMap>>>,
    forwarded: Arc<AtomicUsize>,
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
        };
        let upstream = upstream.trim_end_matches('/').to_owned();
        let (fault, seen, put_headers, forwarded) =
            (proxy.fault.clone(), proxy.seen.clone(), proxy.put_headers.clone(), proxy.forwarded.clone());
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
                                Fault::None => {}
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
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("read the log stream back from moto");
        let got = page.events();
        events.extend(
            got.iter().map(|e| (e.timestamp().unwrap_or_default(), e.message().unwrap_or_default().to_owned())),
        );
        let next = page.next_forward_token().map(str::to_owned);
        if got.is_empty() || next == token {
            break;
        }
        token = next;
    }
    events
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
