//! The Telemetry API (2022-07-01): subscriptions and their delivery. Each subscriber gets its
//! own bounded queue and dispatcher that POSTs JSON arrays honouring `maxItems`, `maxBytes` and
//! `timeoutMs`, retries, and reports what it had to drop as `platform.logsDropped`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use telemetry_schema::subscription::{EffectiveBuffering, SubscribeRequest, SubscriptionError};
use telemetry_schema::{LogsDropped, Platform, Record, SchemaVersion, StreamType};
use tokio::sync::Notify;

use crate::http_util::HttpClient;

const QUEUE_LIMIT_ITEMS: usize = 20_000;
const DELIVERY_ATTEMPTS: usize = 3;

/// A validated subscription: what the extension asked for, with the buffering in effect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subscription {
    pub(crate) schema_version: SchemaVersion,
    /// Where deliveries go, on this machine's loopback (Lambda's `sandbox.localdomain`).
    pub(crate) destination: String,
    pub(crate) types: Vec<StreamType>,
    pub(crate) buffering: EffectiveBuffering,
}

impl Subscription {
    /// Reads a subscribe body, with the documented defaults and ranges.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, SubscriptionError> {
        let (request, buffering) = SubscribeRequest::parse(body)?;
        Ok(Self {
            schema_version: request.schema_version,
            // Lambda's name for the sandbox; here the sandbox is this machine's loopback.
            destination: request.destination.uri.replacen("sandbox.localdomain", "127.0.0.1", 1),
            types: request.types,
            buffering,
        })
    }

    /// Whether function lines that are JSON objects are delivered as objects.
    pub(crate) fn structured_records(&self) -> bool {
        self.schema_version.structured_log_lines()
    }
}

/// One subscriber's queue and delivery loop.
pub(crate) struct Subscriber {
    pub(crate) subscription: Subscription,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Signalled after every delivery attempt ends.
    delivered: Notify,
}

#[derive(Default)]
struct Queue {
    /// Records and their size in a delivery.
    items: VecDeque<(Record, usize)>,
    dropped_records: u64,
    dropped_bytes: u64,
    closing: bool,
    /// Deliver what is queued without waiting for `timeoutMs` (before a SHUTDOWN).
    flushing: bool,
    /// A batch is on its way to the subscriber.
    in_flight: bool,
}

impl Subscriber {
    pub(crate) fn start(subscription: Subscription, client: HttpClient) -> Arc<Self> {
        let subscriber = Self::new(subscription);
        tokio::spawn(Arc::clone(&subscriber).deliver(client));
        subscriber
    }

    /// A subscriber without its delivery loop (`start` runs one).
    pub(super) fn new(subscription: Subscription) -> Arc<Self> {
        Arc::new(Self {
            subscription,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            delivered: Notify::new(),
        })
    }

    pub(crate) fn wants(&self, stream: &StreamType) -> bool {
        self.subscription.types.contains(stream)
    }

    /// Queues a record; when the subscriber falls behind the oldest records are dropped.
    pub(crate) fn push(&self, record: Record) {
        let size = serde_json::to_vec(&record).map_or(0, |bytes| bytes.len());
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
    pub(crate) fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.closing = true;
        }
        self.wake.notify_one();
    }

    /// Delivers everything queued now without waiting for the buffering timeout, and returns
    /// once the subscriber has it (or delivery gave up on it). Lambda does this before an
    /// extension's SHUTDOWN: the report of an invocation that timed out or crashed reaches it.
    pub(crate) async fn flush(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.flushing = true;
        }
        self.wake.notify_one();
        loop {
            let delivered = self.delivered.notified();
            let drained = self.queue.lock().map(|q| q.items.is_empty() && !q.in_flight).unwrap_or(true);
            if drained {
                break;
            }
            // A bounded wait: a delivery that ends between the check and here is seen next round.
            let _ = tokio::time::timeout(Duration::from_millis(50), delivered).await;
        }
        if let Ok(mut queue) = self.queue.lock() {
            queue.flushing = false;
        }
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
            let deadline = tokio::time::Instant::now() + self.subscription.buffering.timeout;
            loop {
                let (full, closing) =
                    self.queue.lock().map(|q| (self.batch_full(&q), q.closing || q.flushing)).unwrap_or((true, true));
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
            if let Ok(mut queue) = self.queue.lock() {
                queue.in_flight = false;
            }
            self.delivered.notify_waiters();
        }
    }

    /// Everything queued, taken (what the delivery loop would send).
    #[cfg(test)]
    pub(super) fn take_queued(&self) -> Vec<Record> {
        self.queue.lock().map(|mut q| q.items.drain(..).map(|(record, _)| record).collect()).unwrap_or_default()
    }

    fn batch_full(&self, queue: &Queue) -> bool {
        let limits = self.subscription.buffering;
        let bytes: usize = queue.items.iter().take(limits.max_items).map(|(_, s)| s + 1).sum();
        queue.items.len() >= limits.max_items || bytes >= limits.max_bytes
    }

    fn take_batch(&self) -> Vec<Record> {
        let Ok(mut queue) = self.queue.lock() else { return Vec::new() };
        let limits = self.subscription.buffering;
        let mut batch = Vec::new();
        if queue.dropped_records > 0 {
            batch.push(Record::now(Platform::LogsDropped(LogsDropped {
                reason: "Some logs were dropped because the subscriber did not keep up.".into(),
                dropped_records: queue.dropped_records,
                dropped_bytes: queue.dropped_bytes,
                other: serde_json::Map::new(),
            })));
            queue.dropped_records = 0;
            queue.dropped_bytes = 0;
        }
        let mut bytes = 2;
        queue.in_flight = true;
        while let Some((_, size)) = queue.items.front() {
            if batch.len() >= limits.max_items || (!batch.is_empty() && bytes + size + 1 > limits.max_bytes) {
                break;
            }
            bytes += size + 1;
            if let Some((record, _)) = queue.items.pop_front() {
                batch.push(record);
            }
        }
        batch
    }

    async fn post(&self, client: &HttpClient, batch: Vec<Record>) {
        let body = match serde_json::to_vec(&batch) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                tracing::error!(%error, "telemetry batch not serialisable: dropped");
                return;
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use telemetry_schema::{Event, LogLine};

    #[test]
    fn a_subscription_delivers_to_the_loopback_with_the_documented_defaults() {
        let body = json!({"schemaVersion": "2022-12-13", "types": ["platform", "function"],
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080"}});
        let subscription = Subscription::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(subscription.destination, "http://127.0.0.1:8080");
        let buffering = subscription.buffering;
        assert_eq!((buffering.max_items, buffering.max_bytes), (1000, 262_144));
        assert_eq!(buffering.timeout, Duration::from_millis(1000));
        assert!(subscription.structured_records());
    }

    #[test]
    fn a_subscriber_that_falls_behind_gets_logs_dropped_with_exact_counts() {
        let body = json!({"schemaVersion": "2022-12-13", "destination": {"protocol": "HTTP", "URI": "http://127.0.0.1:9"},
                          "types": ["function"]});
        let subscriber = Subscriber::new(Subscription::parse(body.to_string().as_bytes()).unwrap());
        let record = |n: usize| Record::now(Event::Function(LogLine::Text(format!("line {n}"))));
        let size = |n: usize| serde_json::to_vec(&record(n)).unwrap().len() as u64;
        for n in 0..QUEUE_LIMIT_ITEMS + 5 {
            subscriber.push(record(n));
        }
        let batch: Vec<Value> = subscriber.take_batch().iter().map(|r| serde_json::to_value(r).unwrap()).collect();
        assert_eq!(batch[0]["type"], "platform.logsDropped");
        assert_eq!(batch[0]["record"]["droppedRecords"], 5);
        assert_eq!(batch[0]["record"]["droppedBytes"], (0..5).map(size).sum::<u64>());
        assert_eq!(batch[1]["record"], "line 5", "the oldest were dropped");
        assert_eq!(batch.len(), subscriber.subscription.buffering.max_items, "the notice counts towards maxItems");
        let next = subscriber.take_batch();
        assert_ne!(next[0].type_name(), "platform.logsDropped", "reported once");
    }
}
