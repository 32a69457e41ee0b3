//! The state between the listener and the shipper. Each delivery is read once into the shared
//! schema's records; then, record by record: a function or extension line is structured and
//! enriched (`enrich`) into the log buffer, or, if it is an EMF document, merged into the
//! aggregator (`emf`); a platform event moves the invocation context and the flush progress on
//! and becomes platform metrics. Flushes take log events and rendered documents out, apart, and
//! give back what they could not send. Both are capped in bytes by the configuration
//! (`BOOKS_TELEMETRY_BUFFER_BYTES`, `BOOKS_TELEMETRY_METRICS_BYTES`) and every drop is counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use telemetry_schema::{Event, LogLine, Platform, Record, Report, Status};
use tokio::sync::{mpsc, watch};

use crate::buffer::{EventKind, LogBuffer, LogEvent};
use crate::config::Config;
use crate::emf::{self, Aggregator, MetricDef, Observation};
use crate::enrich::{self, Function, Invocation};
use crate::telemetry;

/// What the pipeline has seen of the invocation lifecycle, for the flush policy to wait on.
/// Recent request ids are kept, not just the last: with background flushes the next
/// invocation may start before a waiter of the previous one looks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The last invocation that started.
    pub last_started: Option<String>,
    /// The last invocation reported.
    pub last_reported: Option<String>,
    started: VecDeque<String>,
    runtime_done: VecDeque<String>,
}

/// Request ids remembered per lifecycle step.
const RECENT_REQUESTS: usize = 64;

impl Progress {
    /// Whether `platform.start` of this invocation arrived.
    pub fn has_started(&self, request_id: &str) -> bool {
        self.started.iter().any(|id| id == request_id)
    }

    /// Whether `platform.runtimeDone` of this invocation arrived.
    pub fn runtime_done(&self, request_id: &str) -> bool {
        self.runtime_done.iter().any(|id| id == request_id)
    }

    /// True when the last invocation that started has been reported (or none started).
    pub fn settled(&self) -> bool {
        self.last_started == self.last_reported
    }

    fn remember(recent: &mut VecDeque<String>, request_id: &str) {
        if recent.len() == RECENT_REQUESTS {
            recent.pop_front();
        }
        recent.push_back(request_id.to_owned());
    }
}

/// What a flush takes out of the pipeline: log lines and EMF documents, kept apart.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// Log events, oldest first.
    pub logs: Vec<LogEvent>,
    /// EMF documents: pending ones, then fresh ones.
    pub documents: Vec<LogEvent>,
}

impl Outgoing {
    /// Nothing to ship.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.documents.is_empty()
    }

    /// Events to ship.
    pub fn len(&self) -> usize {
        self.logs.len() + self.documents.len()
    }

    /// Every event, for one shipment.
    pub fn into_events(self) -> Vec<LogEvent> {
        let mut events = self.documents;
        events.extend(self.logs);
        events
    }

    /// Events a shipment could not send, sorted back into logs and documents by their kind.
    pub fn from_events(events: Vec<LogEvent>) -> Self {
        let (documents, logs) = events.into_iter().partition(|e| e.kind == EventKind::Metrics);
        Self { logs, documents }
    }
}

/// What is left in the pipeline (at shutdown, what could not be sent).
#[derive(Debug, Default, PartialEq)]
pub struct Backlog {
    /// Log events.
    pub logs: usize,
    /// Rendered EMF documents.
    pub documents: usize,
    /// Metric values not yet rendered.
    pub metric_values: usize,
    /// Drops not yet reported as `LogsDropped`.
    pub dropped_unreported: u64,
}

/// Records in, events out; shared by the listener's consumer and the flusher.
pub struct Pipeline {
    settings: Settings,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
}

struct Settings {
    namespace: String,
    service: String,
    function: Function,
    platform_logs: bool,
    /// Cap of `metrics` and `documents` together, in bytes as rendered.
    metrics_bytes: usize,
}

struct State {
    buffer: LogBuffer,
    metrics: Aggregator,
    /// Rendered EMF documents a failed flush gave back, oldest first, and their bytes.
    documents: VecDeque<LogEvent>,
    documents_bytes: usize,
    /// Events lost outside the buffer (refused by CloudWatch, documents over the cap) not yet
    /// reported as `LogsDropped`.
    dropped: u64,
    invocation: Invocation,
    /// `platform.runtimeDone` durations by request id, until the report makes them
    /// `PostRuntimeDuration`.
    runtime_ms: HashMap<String, f64>,
}

/// A platform event shipped as a log event (`BOOKS_TELEMETRY_PLATFORM_LOGS`).
#[derive(Serialize)]
struct PlatformLog<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    record: &'a Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    function_name: &'a str,
    function_version: &'a str,
}

impl Pipeline {
    /// An empty pipeline for this configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            settings: Settings {
                namespace: config.namespace.clone(),
                service: config.service.clone(),
                function: Function { name: config.function_name.clone(), version: config.function_version.clone() },
                platform_logs: config.platform_logs,
                metrics_bytes: config.metrics_bytes,
            },
            state: Mutex::new(State {
                buffer: LogBuffer::new(config.buffer_bytes),
                metrics: Aggregator::default(),
                documents: VecDeque::new(),
                documents_bytes: 0,
                dropped: 0,
                invocation: Invocation { cold: true, ..Invocation::default() },
                runtime_ms: HashMap::new(),
            }),
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Takes deliveries from the listener until it goes away.
    pub(crate) async fn consume(self: std::sync::Arc<Self>, mut deliveries: mpsc::Receiver<Bytes>) {
        while let Some(body) = deliveries.recv().await {
            self.ingest(&body);
        }
    }

    /// Processes one Telemetry API delivery.
    pub fn ingest(&self, body: &[u8]) {
        let records = telemetry::read_delivery(body);
        let now = now_ms();
        let mut progress = self.progress.borrow().clone();
        {
            let mut state = self.lock();
            for record in records {
                self.process(&mut state, record, now, &mut progress);
            }
        }
        self.progress.send_if_modified(|current| {
            let changed = *current != progress;
            *current = progress;
            changed
        });
    }

    /// The lifecycle seen so far.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits until `done` holds for the lifecycle seen so far, or the timeout; true if it held.
    pub async fn wait_for(&self, timeout: Duration, done: impl FnMut(&Progress) -> bool) -> bool {
        let mut receiver = self.progress.subscribe();
        let held = matches!(tokio::time::timeout(timeout, receiver.wait_for(done)).await, Ok(Ok(_)));
        held
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock ends that task only (panic = unwind) and poisons the
        // lock; the state is taken over as it is (at worst one record half applied), since
        // shipping on beats stopping the function's telemetry altogether.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn process(&self, state: &mut State, record: Record, now: i64, progress: &mut Progress) {
        let time_ms = record.time_ms().unwrap_or(now);
        match record.event {
            Event::Function(line) => self.line(state, time_ms, line, None),
            Event::Extension(line) => self.line(state, time_ms, line, Some("extension")),
            Event::Platform(event) => self.platform(state, time_ms, &event, progress),
            // Shipped as it came: a record of a kind this schema does not know yet.
            Event::Unknown(raw) => {
                let message = match raw {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                state.buffer.push(LogEvent::new(time_ms, message));
            }
        }
    }

    fn line(&self, state: &mut State, time_ms: i64, line: LogLine, source: Option<&str>) {
        if let LogLine::Text(text) = &line {
            if let Some(message) = enrich::enrich_text(text, source, &state.invocation, &self.settings.function) {
                state.buffer.push(LogEvent::new(time_ms, message));
                return;
            }
        }
        let Some(mut object) = enrich::structure(line) else { return };
        if telemetry_schema::emf::is_document(&object) {
            // At the cap nothing fits: the document is not even read.
            let full = state.metrics.bytes() + state.documents_bytes >= self.settings.metrics_bytes;
            let observations = if full { None } else { emf::read_document(&object, time_ms) };
            match observations {
                Some(observations) if self.metrics_fit(state, &observations) => {
                    observations.into_iter().for_each(|o| state.metrics.observe(o));
                }
                // Not ours to merge, or no room left to: shipped as the function wrote it, a
                // line of its output within the log buffer's cap (CloudWatch still extracts it).
                _ => state.buffer.push(LogEvent::new(time_ms, Value::Object(object).to_string())),
            }
            return;
        }
        if let Some(source) = source {
            object.entry("source").or_insert_with(|| Value::String(source.to_owned()));
        }
        enrich::enrich(&mut object, &state.invocation, &self.settings.function);
        state.buffer.push(LogEvent::new(time_ms, Value::Object(object).to_string()));
    }

    fn platform(&self, state: &mut State, time_ms: i64, event: &Platform, progress: &mut Progress) {
        let request_id = event.request_id();
        let keep = match event {
            Platform::Start(start) => {
                state.invocation.request_id = Some(start.request_id.clone());
                state.invocation.trace_id = start.tracing.as_ref().map(|t| t.value.clone());
                Progress::remember(&mut progress.started, &start.request_id);
                progress.last_started = Some(start.request_id.clone());
                false
            }
            Platform::InitStart(_) => false,
            Platform::RuntimeDone(done) => {
                if let Some(metrics) = &done.metrics {
                    if state.runtime_ms.len() > RECENT_REQUESTS {
                        state.runtime_ms.clear();
                    }
                    state.runtime_ms.insert(done.request_id.clone(), metrics.duration_ms);
                }
                Progress::remember(&mut progress.runtime_done, &done.request_id);
                done.status.as_ref().is_some_and(|s| *s != Status::Success)
            }
            Platform::InitRuntimeDone(done) => done.status != Status::Success,
            Platform::Report(report) => {
                self.report_metrics(state, time_ms, report);
                state.invocation.cold = false;
                progress.last_reported = Some(report.request_id.clone());
                true
            }
            Platform::LogsDropped(dropped) => {
                let observation = self.observation(time_ms, &emf::LOGS_DROPPED, dropped.dropped_records as f64);
                self.merge(state, vec![observation]);
                true
            }
            _ => true,
        };
        if keep && self.settings.platform_logs {
            let log = PlatformLog {
                kind: event.type_name(),
                record: event,
                request_id,
                function_name: &self.settings.function.name,
                function_version: &self.settings.function.version,
            };
            match serde_json::to_string(&log) {
                Ok(message) => state.buffer.push(LogEvent::new(time_ms, message)),
                Err(error) => tracing::warn!(%error, "a platform event could not be written as a log event"),
            }
        }
    }

    fn report_metrics(&self, state: &mut State, time_ms: i64, report: &Report) {
        let metrics = &report.metrics;
        let observation = |metric: &MetricDef, value: f64| self.observation(time_ms, metric, value);
        let cold = metrics.init_duration_ms.is_some();
        let mut observations = vec![observation(&emf::COLD_START, if cold { 1.0 } else { 0.0 })];
        if let Some(init) = metrics.init_duration_ms {
            observations.push(observation(&emf::INIT_DURATION, init));
        }
        observations.push(observation(&emf::DURATION, metrics.duration_ms));
        if let Some(billed) = metrics.billed_duration_ms {
            observations.push(observation(&emf::BILLED_DURATION, billed as f64));
        }
        if let Some(used) = metrics.max_memory_used_mb {
            observations.push(observation(&emf::MAX_MEMORY_USED, used as f64));
            if let Some(size) = metrics.memory_size_mb.filter(|s| *s > 0) {
                observations.push(observation(&emf::MEMORY_UTILIZATION, used as f64 / size as f64 * 100.0));
            }
        }
        // A report without a status is a success (as in AWS's own example).
        let status = report.status.as_ref().unwrap_or(&Status::Success);
        let failed = matches!(status, Status::Error | Status::Failure);
        observations.push(observation(&emf::ERRORS, if failed { 1.0 } else { 0.0 }));
        observations.push(observation(&emf::TIMEOUTS, if *status == Status::Timeout { 1.0 } else { 0.0 }));
        if let Some(runtime) = state.runtime_ms.remove(&report.request_id) {
            let post_runtime = (metrics.duration_ms - runtime).max(0.0);
            observations.push(observation(&emf::POST_RUNTIME_DURATION, post_runtime));
        }
        self.merge(state, observations);
    }

    /// One value of a platform metric.
    fn observation(&self, time_ms: i64, metric: &MetricDef, value: f64) -> Observation {
        Observation {
            time_ms,
            namespace: self.settings.namespace.clone(),
            dimensions: vec![(emf::SERVICE_DIMENSION.to_owned(), self.settings.service.clone())],
            name: metric.name.to_owned(),
            unit: Some(metric.unit.to_owned()),
            value,
        }
    }

    /// Whether the aggregator has room for these values: it and the pending documents stay
    /// within `BOOKS_TELEMETRY_METRICS_BYTES`.
    fn metrics_fit(&self, state: &State, observations: &[Observation]) -> bool {
        let used = state.metrics.bytes() + state.documents_bytes;
        // Far from the cap (the usual case) the bound settles it without a lookup.
        used + Aggregator::cost_bound(observations) <= self.settings.metrics_bytes
            || used + state.metrics.cost(observations) <= self.settings.metrics_bytes
    }

    /// Aggregates platform values, or, with no room left, ships them in documents of their own
    /// as log lines, within the log buffer's cap: they are kept or counted as dropped there.
    fn merge(&self, state: &mut State, observations: Vec<Observation>) {
        if self.metrics_fit(state, &observations) {
            observations.into_iter().for_each(|o| state.metrics.observe(o));
        } else {
            for (time_ms, document) in emf::render_apart(observations) {
                state.buffer.push(LogEvent::new(time_ms, document));
            }
        }
    }

    /// Everything there is to ship: buffered events, pending and fresh EMF documents, with the
    /// count of events dropped since the last flush as `LogsDropped`.
    pub fn take_outgoing(&self, now_ms: i64) -> Outgoing {
        let mut state = self.lock();
        let dropped = state.buffer.take_dropped() + std::mem::take(&mut state.dropped);
        if dropped == 0 && state.buffer.is_empty() && state.metrics.is_empty() && state.documents.is_empty() {
            return Outgoing::default();
        }
        // Always aggregated, past the cap too: one value per flush, and it carries every drop.
        state.metrics.observe(self.observation(now_ms, &emf::LOGS_DROPPED, dropped as f64));
        state.documents_bytes = 0;
        let mut documents: Vec<LogEvent> = state.documents.drain(..).collect();
        documents.extend(state.metrics.drain().into_iter().map(|(time, document)| LogEvent::metrics(time, document)));
        Outgoing { logs: state.buffer.take_all(), documents }
    }

    /// Takes back what a flush could not send: log events into the buffer (oldest dropped past
    /// the cap), documents into the pending list (oldest dropped, and counted, while they and
    /// the values aggregated since are past `BOOKS_TELEMETRY_METRICS_BYTES`).
    pub fn give_back(&self, outgoing: Outgoing) {
        let mut state = self.lock();
        state.buffer.restore(outgoing.logs);
        for document in outgoing.documents.into_iter().rev() {
            state.documents_bytes += document.size();
            state.documents.push_front(document);
        }
        while state.metrics.bytes() + state.documents_bytes > self.settings.metrics_bytes {
            let Some(document) = state.documents.pop_front() else { break };
            state.documents_bytes -= document.size();
            state.dropped += 1;
        }
    }

    /// Counts events lost on the way out (refused by CloudWatch, for good or with their
    /// destination); they are reported as `LogsDropped`.
    pub fn count_dropped(&self, events: usize) {
        self.lock().dropped += events as u64;
    }

    /// Bytes in the log buffer, and its cap.
    pub fn buffered_bytes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.buffer.bytes(), state.buffer.capacity())
    }

    /// Bytes of the metrics waiting for a flush (aggregated values and pending documents, as
    /// rendered), and their cap.
    pub fn metrics_bytes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.metrics.bytes() + state.documents_bytes, self.settings.metrics_bytes)
    }

    /// What the pipeline still holds.
    pub fn backlog(&self) -> Backlog {
        let mut state = self.lock();
        let dropped_unreported = state.buffer.take_dropped() + state.dropped;
        state.dropped = dropped_unreported;
        Backlog {
            logs: state.buffer.len(),
            documents: state.documents.len(),
            metric_values: state.metrics.len(),
            dropped_unreported,
        }
    }
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(buffer_bytes: usize) -> Pipeline {
        capped(buffer_bytes, 1 << 20)
    }

    fn capped(buffer_bytes: usize, metrics_bytes: usize) -> Pipeline {
        let mut config = Config::from_lookup(|name| match name {
            "BOOKS_TELEMETRY_LOG_GROUP" => Some("/books/test".into()),
            "AWS_LAMBDA_FUNCTION_NAME" => Some("books-dev-command".into()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST".into()),
            "BOOKS_TELEMETRY_SERVICE" => Some("command".into()),
            _ => None,
        })
        .unwrap();
        config.buffer_bytes = buffer_bytes;
        config.metrics_bytes = metrics_bytes;
        Pipeline::new(&config)
    }

    /// Function EMF documents, each with a dimension value of its own (a new group each) and
    /// ten values.
    fn distinct_documents(from: usize, count: usize) -> Value {
        let records = (from..from + count).map(|n| {
            let document = json!({"_aws": {"Timestamp": 1_764_000_000_000i64, "CloudWatchMetrics": [{"Namespace": "Books",
                "Dimensions": [["Tenant"]], "Metrics": [{"Name": "Work", "Unit": "Count"}]}]},
                "Tenant": format!("tenant-{n:06}"), "Work": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]});
            json!({"time": "2026-11-24T10:00:00.001Z", "type": "function", "record": document.to_string()})
        });
        Value::Array(records.collect())
    }

    /// Values of `Work` in the outgoing events: merged into documents, or shipped as written.
    fn work_values(outgoing: &Outgoing) -> usize {
        let documents = outgoing.documents.iter().chain(&outgoing.logs);
        documents
            .filter_map(|e| telemetry_schema::emf::Document::parse(&e.message).ok())
            .flat_map(|d| d.metrics)
            .filter(|m| m.name == "Work")
            .map(|m| m.values.len() * m.dimension_sets.len())
            .sum()
    }

    fn deliver(pipeline: &Pipeline, records: &Value) {
        pipeline.ingest(records.to_string().as_bytes());
    }

    fn invocation(request_id: &str, cold: bool, lines: Vec<Value>) -> Value {
        let mut records = vec![json!({"time": "2026-11-24T10:00:00.000Z", "type": "platform.start",
            "record": {"requestId": request_id, "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-abc"}}})];
        records.extend(
            lines.into_iter().map(|l| json!({"time": "2026-11-24T10:00:00.001Z", "type": "function", "record": l})),
        );
        records.push(json!({"time": "2026-11-24T10:00:00.020Z", "type": "platform.runtimeDone",
            "record": {"requestId": request_id, "status": "success", "metrics": {"durationMs": 20.0}}}));
        let mut metrics =
            json!({"durationMs": 23.5, "billedDurationMs": 24, "memorySizeMB": 128, "maxMemoryUsedMB": 32});
        if cold {
            metrics["initDurationMs"] = json!(80.0);
        }
        records.push(json!({"time": "2026-11-24T10:00:00.030Z", "type": "platform.report",
            "record": {"requestId": request_id, "status": "success", "metrics": metrics}}));
        Value::Array(records)
    }

    fn logs(outgoing: &Outgoing) -> Vec<Value> {
        outgoing.logs.iter().map(|e| serde_json::from_str(&e.message).unwrap()).collect()
    }

    fn metric_values(outgoing: &Outgoing, name: &str) -> Vec<f64> {
        let mut values = Vec::new();
        for document in &outgoing.documents {
            let document: Value = serde_json::from_str(&document.message).unwrap();
            match &document[name] {
                Value::Number(n) => values.push(n.as_f64().unwrap()),
                Value::Array(items) => values.extend(items.iter().map(|v| v.as_f64().unwrap())),
                _ => {}
            }
        }
        values
    }

    #[test]
    fn function_lines_are_enriched_and_structured() {
        let pipeline = pipeline(1 << 20);
        deliver(
            &pipeline,
            &invocation(
                "r1",
                true,
                vec![
                    json!("plain text\n"),
                    json!(r#"{"level":"INFO","message":"json"}"#),
                    json!({"message": "object", "request_id": "own"}),
                ],
            ),
        );
        let out = pipeline.take_outgoing(now_ms());
        let lines: Vec<Value> = logs(&out).into_iter().filter(|l| l.get("type").is_none()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["message"], "plain text");
        assert_eq!(lines[0]["request_id"], "r1");
        assert_eq!(lines[0]["cold_start"], true);
        assert_eq!(lines[0]["function_name"], "books-dev-command");
        assert_eq!(lines[0]["function_version"], "$LATEST");
        assert_eq!(lines[0]["trace_id"], "Root=1-abc");
        assert_eq!(lines[1]["level"], "INFO");
        assert_eq!(lines[1]["request_id"], "r1");
        assert_eq!(lines[2]["request_id"], "own", "a line's own fields win");
    }

    #[test]
    fn reports_become_platform_metrics() {
        let pipeline = pipeline(1 << 20);
        deliver(&pipeline, &invocation("r1", true, vec![]));
        deliver(&pipeline, &invocation("r2", false, vec![json!("warm")]));
        let out = pipeline.take_outgoing(now_ms());
        assert_eq!(metric_values(&out, emf::COLD_START.name), [1.0, 0.0]);
        assert_eq!(metric_values(&out, emf::INIT_DURATION.name), [80.0]);
        assert_eq!(metric_values(&out, emf::DURATION.name), [23.5, 23.5]);
        assert_eq!(metric_values(&out, emf::BILLED_DURATION.name), [24.0, 24.0]);
        assert_eq!(metric_values(&out, emf::MAX_MEMORY_USED.name), [32.0, 32.0]);
        assert_eq!(metric_values(&out, emf::MEMORY_UTILIZATION.name), [25.0, 25.0]);
        assert_eq!(metric_values(&out, emf::ERRORS.name), [0.0, 0.0]);
        assert_eq!(metric_values(&out, emf::TIMEOUTS.name), [0.0, 0.0]);
        assert_eq!(metric_values(&out, emf::POST_RUNTIME_DURATION.name), [3.5, 3.5]);
        assert_eq!(metric_values(&out, emf::LOGS_DROPPED.name), [0.0]);
        let warm = logs(&out).into_iter().find(|l| l["message"] == "warm").unwrap();
        assert_eq!(warm["cold_start"], false);
        // One document for the records' minute, one for the flush's own LogsDropped (now).
        assert_eq!(out.documents.len(), 2, "one document per dimension set and minute");
    }

    #[test]
    fn failures_timeouts_and_platform_drops_are_counted() {
        let pipeline = pipeline(1 << 20);
        let body = json!([
            {"time": "2026-11-24T10:00:00Z", "type": "platform.report", "record": {"requestId": "a", "status": "error", "metrics": {"durationMs": 1.0}}},
            {"time": "2026-11-24T10:00:01Z", "type": "platform.report", "record": {"requestId": "b", "status": "timeout", "metrics": {"durationMs": 3000.0}}},
            {"time": "2026-11-24T10:00:02Z", "type": "platform.logsDropped", "record": {"reason": "x", "droppedRecords": 7, "droppedBytes": 700}},
        ]);
        deliver(&pipeline, &body);
        let out = pipeline.take_outgoing(now_ms());
        assert_eq!(metric_values(&out, emf::ERRORS.name), [1.0, 0.0]);
        assert_eq!(metric_values(&out, emf::TIMEOUTS.name), [0.0, 1.0]);
        assert_eq!(metric_values(&out, emf::LOGS_DROPPED.name).iter().sum::<f64>(), 7.0);
        let types: Vec<Value> = logs(&out).iter().map(|l| l["type"].clone()).collect();
        assert_eq!(types, [json!("platform.report"), json!("platform.report"), json!("platform.logsDropped")]);
    }

    #[test]
    fn function_emf_documents_are_metrics_not_logs() {
        let pipeline = pipeline(1 << 20);
        let document = r#"{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"Books","Dimensions":[["Service"]],"Metrics":[{"Name":"BooksCreated","Unit":"Count"}]}]},"Service":"command","BooksCreated":1}"#;
        deliver(&pipeline, &invocation("r1", false, vec![json!(document), json!(document)]));
        let out = pipeline.take_outgoing(now_ms());
        assert_eq!(metric_values(&out, "BooksCreated"), [1.0, 1.0]);
        assert!(logs(&out).iter().all(|l| l.get("BooksCreated").is_none()));
    }

    #[test]
    fn progress_remembers_invocations_a_later_one_has_overtaken() {
        let pipeline = pipeline(1 << 20);
        deliver(&pipeline, &invocation("r1", true, vec![]));
        deliver(&pipeline, &invocation("r2", false, vec![]));
        let progress = pipeline.progress();
        assert!(progress.has_started("r1") && progress.has_started("r2"));
        assert!(progress.runtime_done("r1") && progress.runtime_done("r2"));
        assert!(!progress.has_started("r3"));
        assert!(progress.settled(), "r2, the last to start, was reported");
    }

    #[test]
    fn own_drops_are_reported_exactly_once() {
        let pipeline = pipeline(64 << 10);
        let lines: Vec<Value> = (0..200).map(|i| json!(format!("{i:0>1000}"))).collect();
        deliver(&pipeline, &invocation("r1", false, lines));
        let out = pipeline.take_outgoing(now_ms());
        let kept = out.logs.len() as f64;
        let dropped: f64 = metric_values(&out, emf::LOGS_DROPPED.name).iter().sum();
        assert!(dropped > 0.0);
        assert_eq!(kept + dropped, 201.0, "200 function lines and the report line: kept or counted");
        pipeline.give_back(out);
        let again = pipeline.take_outgoing(now_ms());
        assert_eq!(
            metric_values(&again, emf::LOGS_DROPPED.name).iter().sum::<f64>(),
            dropped,
            "documents kept, not re-counted"
        );
    }

    #[test]
    fn metrics_past_their_cap_ship_unmerged_as_lines_and_lose_no_value() {
        let cap = 64 << 10;
        let pipeline = capped(4 << 20, cap);
        for round in 0..20 {
            deliver(&pipeline, &distinct_documents(round * 100, 100));
            assert!(pipeline.metrics_bytes().0 <= cap, "round {round}: {:?}", pipeline.metrics_bytes());
        }
        let out = pipeline.take_outgoing(now_ms());
        let unmerged = out.logs.iter().filter(|e| e.message.contains("tenant-")).count();
        assert!(unmerged > 1_000, "most went past the cap as lines: {unmerged}");
        assert_eq!(work_values(&out), 2_000 * 10, "every value, merged or as written");
    }

    #[test]
    fn pending_documents_are_capped_in_bytes_and_each_one_dropped_is_counted() {
        let cap = 64 << 10;
        let pipeline = capped(4 << 20, cap);
        deliver(&pipeline, &distinct_documents(0, 1_000));
        let failed = pipeline.take_outgoing(now_ms());
        let given_back = failed.documents.len();
        // More values arrive while the flush fails; then it gives its documents back.
        deliver(&pipeline, &distinct_documents(1_000, 100));
        pipeline.give_back(failed);
        let (bytes, _) = pipeline.metrics_bytes();
        assert!(bytes <= cap, "{bytes} bytes of metrics past the {cap} cap");
        let backlog = pipeline.backlog();
        assert!(backlog.documents < given_back, "some pending documents made room: {backlog:?}");
        assert_eq!(backlog.dropped_unreported, (given_back - backlog.documents) as u64, "each one counted");
        let out = pipeline.take_outgoing(now_ms());
        let dropped: f64 = metric_values(&out, emf::LOGS_DROPPED.name).iter().sum();
        assert_eq!(dropped, (given_back - backlog.documents) as f64, "and reported as LogsDropped");
    }
}
