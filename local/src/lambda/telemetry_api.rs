//! The Telemetry API (2022-07-01): subscriptions and their delivery. Each subscriber gets its
//! own bounded queue and dispatcher that POSTs JSON arrays honouring `maxItems`, `maxBytes` and
//! `timeoutMs`, retries, and reports what it had to drop as `platform.logsDropped`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::http_util::HttpClient;

pub const SCHEMA_VERSIONS: [&str; 3] = ["2022-07-01", "2022-12-13", "2025-01-29"];
const QUEUE_LIMIT_ITEMS: usize = 20_000;
const DELIVERY_ATTEMPTS: usize = 3;

/// The kinds of record a subscriber may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Platform,
    Function,
    Extension,
}

impl Stream {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "platform" => Some(Self::Platform),
            "function" => Some(Self::Function),
            "extension" => Some(Self::Extension),
            _ => None,
        }
    }
}

/// A validated subscription request.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub schema_version: String,
    pub destination: String,
    pub types: Vec<Stream>,
    pub max_items: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Subscription {
    /// Parses a subscribe body, with the documented defaults and ranges.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let schema_version = value["schemaVersion"].as_str().ok_or("schemaVersion is required")?.to_owned();
        if !SCHEMA_VERSIONS.contains(&schema_version.as_str()) {
            return Err(format!("schemaVersion {schema_version} is not supported; use one of {SCHEMA_VERSIONS:?}"));
        }
        let destination = &value["destination"];
        if destination["protocol"].as_str() != Some("HTTP") {
            return Err("destination.protocol must be HTTP".into());
        }
        let uri = destination["URI"].as_str().ok_or("destination.URI is required")?;
        if !uri.starts_with("http://") {
            return Err("destination.URI must be an http:// URI".into());
        }
        let types = value["types"]
            .as_array()
            .ok_or("types is required")?
            .iter()
            .map(|t| t.as_str().and_then(Stream::parse).ok_or(format!("unknown type {t}")))
            .collect::<Result<Vec<_>, _>>()?;
        if types.is_empty() {
            return Err("types must not be empty".into());
        }
        let buffering = &value["buffering"];
        let ranged = |key: &str, default: u64, min: u64, max: u64| -> Result<u64, String> {
            match buffering.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => match v.as_u64() {
                    Some(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!("buffering.{key} must be between {min} and {max}")),
                },
            }
        };
        Ok(Self {
            schema_version,
            // Lambda's name for the sandbox; here the sandbox is this machine's loopback.
            destination: uri.replacen("sandbox.localdomain", "127.0.0.1", 1),
            types,
            max_items: ranged("maxItems", 1_000, 1_000, 10_000)? as usize,
            max_bytes: ranged("maxBytes", 262_144, 262_144, 1_048_576)? as usize,
            timeout: Duration::from_millis(ranged("timeoutMs", 1_000, 25, 30_000)?),
        })
    }

    /// Whether function lines that are JSON objects are delivered as objects.
    pub fn structured_records(&self) -> bool {
        self.schema_version.as_str() >= "2022-12-13"
    }
}

/// One subscriber's queue and delivery loop.
pub struct Subscriber {
    pub subscription: Subscription,
    queue: Mutex<Queue>,
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(Value, usize)>,
    dropped_records: u64,
    dropped_bytes: u64,
    closing: bool,
}

impl Subscriber {
    pub fn start(subscription: Subscription, client: HttpClient) -> Arc<Self> {
        let subscriber = Self::new(subscription);
        tokio::spawn(Arc::clone(&subscriber).deliver(client));
        subscriber
    }

    fn new(subscription: Subscription) -> Arc<Self> {
        Arc::new(Self { subscription, queue: Mutex::new(Queue::default()), wake: Notify::new() })
    }

    pub fn wants(&self, stream: Stream) -> bool {
        self.subscription.types.contains(&stream)
    }

    /// Queues a record; when the subscriber falls behind the oldest records are dropped.
    pub fn push(&self, record: Value) {
        let size = record.to_string().len();
        if let Ok(mut queue) = self.queue.lock() {
            if queue.items.len() >= QUEUE_LIMIT_ITEMS {
                if let Some((_, dropped)) = queue.items.pop_front() {
                    queue.dropped_records += 1;
                    queue.dropped_bytes += dropped as u64;
                }
            }
            queue.items.push_back((record, size));
        }
        self.wake.notify_one();
    }

    /// Delivers everything queued now, then stops.
    pub fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.closing = true;
        }
        self.wake.notify_one();
    }

    async fn deliver(self: Arc<Self>, client: HttpClient) {
        loop {
            // Wait for the first record, then buffer until a limit or the timeout is reached.
            loop {
                let (empty, closing) =
                    self.queue.lock().map(|q| (q.items.is_empty(), q.closing)).unwrap_or((true, true));
                if !empty {
                    break;
                }
                if closing {
                    return;
                }
                self.wake.notified().await;
            }
            let deadline = tokio::time::Instant::now() + self.subscription.timeout;
            loop {
                let (full, closing) =
                    self.queue.lock().map(|q| (self.batch_full(&q), q.closing)).unwrap_or((true, true));
                if full || closing {
                    break;
                }
                if tokio::time::timeout_at(deadline, self.wake.notified()).await.is_err() {
                    break;
                }
            }
            let batch = self.take_batch();
            if !batch.is_empty() {
                self.post(&client, batch).await;
            }
        }
    }

    fn batch_full(&self, queue: &Queue) -> bool {
        let bytes: usize = queue.items.iter().take(self.subscription.max_items).map(|(_, s)| s + 1).sum();
        queue.items.len() >= self.subscription.max_items || bytes >= self.subscription.max_bytes
    }

    fn take_batch(&self) -> Vec<Value> {
        let Ok(mut queue) = self.queue.lock() else { return Vec::new() };
        let mut batch = Vec::new();
        if queue.dropped_records > 0 {
            batch.push(platform_record(
                "platform.logsDropped",
                json!({
                    "reason": "Some logs were dropped because the subscriber did not keep up.",
                    "droppedRecords": queue.dropped_records,
                    "droppedBytes": queue.dropped_bytes,
                }),
            ));
            queue.dropped_records = 0;
            queue.dropped_bytes = 0;
        }
        let mut bytes = 2;
        while let Some((_, size)) = queue.items.front() {
            if batch.len() >= self.subscription.max_items
                || (!batch.is_empty() && bytes + size + 1 > self.subscription.max_bytes)
            {
                break;
            }
            bytes += size + 1;
            if let Some((record, _)) = queue.items.pop_front() {
                batch.push(record);
            }
        }
        batch
    }

    async fn post(&self, client: &HttpClient, batch: Vec<Value>) {
        let body = Bytes::from(Value::Array(batch).to_string());
        for attempt in 0..DELIVERY_ATTEMPTS {
            let request = http::Request::post(&self.subscription.destination)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()));
            let Ok(request) = request else { return };
            match client.request(request).await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => tracing::debug!(status = %response.status(), attempt, "telemetry delivery refused"),
                Err(err) => tracing::debug!(error = %err, attempt, "telemetry delivery failed"),
            }
            tokio::time::sleep(Duration::from_millis(100 * (attempt as u64 + 1))).await;
        }
        tracing::warn!(destination = %self.subscription.destination, "telemetry batch dropped after retries");
    }
}

/// A `platform.*` record stamped now.
pub fn platform_record(kind: &str, record: Value) -> Value {
    json!({ "time": now(), "type": kind, "record": record })
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Builds a log record for a line a process wrote.
pub fn log_record(stream: Stream, line: &str, structured: bool) -> Value {
    let kind = if stream == Stream::Function { "function" } else { "extension" };
    let record = match serde_json::from_str::<Value>(line) {
        Ok(object @ Value::Object(_)) if structured => object,
        _ => Value::String(line.to_owned()),
    };
    json!({ "time": now(), "type": kind, "record": record })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_validated_with_documented_ranges() {
        let body = |buffering: Value| {
            json!({"schemaVersion": "2022-12-13", "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080"},
                   "types": ["platform", "function"], "buffering": buffering})
            .to_string()
        };
        let ok = Subscription::parse(body(json!({})).as_bytes()).unwrap();
        assert_eq!((ok.max_items, ok.max_bytes, ok.timeout), (1000, 262_144, Duration::from_millis(1000)));
        assert_eq!(ok.destination, "http://127.0.0.1:8080");
        assert!(ok.structured_records());
        for bad in [
            json!({"maxItems": 999}),
            json!({"maxBytes": 2_000_000}),
            json!({"timeoutMs": 24}),
            json!({"timeoutMs": 30_001}),
        ] {
            assert!(Subscription::parse(body(bad.clone()).as_bytes()).is_err(), "{bad}");
        }
        let old = json!({"schemaVersion": "2021-01-01", "destination": {"protocol": "HTTP", "URI": "http://x"}, "types": ["platform"]});
        assert!(Subscription::parse(old.to_string().as_bytes()).is_err());
    }

    #[test]
    fn a_subscriber_that_falls_behind_gets_logs_dropped_with_exact_counts() {
        let body = json!({"schemaVersion": "2022-12-13", "destination": {"protocol": "HTTP", "URI": "http://127.0.0.1:9"},
                          "types": ["function"]});
        let subscriber = Subscriber::new(Subscription::parse(body.to_string().as_bytes()).unwrap());
        let record = |n: usize| json!({"time": "t", "type": "function", "record": format!("line {n}")});
        for n in 0..QUEUE_LIMIT_ITEMS + 5 {
            subscriber.push(record(n));
        }
        let batch = subscriber.take_batch();
        assert_eq!(batch[0]["type"], "platform.logsDropped");
        assert_eq!(batch[0]["record"]["droppedRecords"], 5);
        let dropped_bytes = (0..5).map(|n| record(n).to_string().len() as u64).sum::<u64>();
        assert_eq!(batch[0]["record"]["droppedBytes"], dropped_bytes);
        assert_eq!(batch[1]["record"], "line 5", "the oldest were dropped");
        assert_eq!(batch.len(), subscriber.subscription.max_items, "the notice counts towards maxItems");
        assert_ne!(subscriber.take_batch()[0]["type"], "platform.logsDropped", "reported once");
    }

    #[test]
    fn function_lines_are_objects_only_for_new_schemas() {
        let line = r#"{"level":"INFO","message":"hi"}"#;
        assert!(log_record(Stream::Function, line, true)["record"].is_object());
        assert!(log_record(Stream::Function, line, false)["record"].is_string());
        assert!(log_record(Stream::Function, "plain", true)["record"].is_string());
    }
}
