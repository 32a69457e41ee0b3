//! The state between the listener and the shipper: records come in (enriched, turned into
//! metrics, buffered), flushes take events out and give back what they could not send.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use crate::buffer::{LogBuffer, LogEvent};
use crate::config::Config;
use crate::emf::{self, Aggregator, Observation};
use crate::telemetry::record::{self, Kind, Record};

/// Rendered EMF documents a failed flush keeps for the next one (they are small: one per
/// dimension set and minute). Beyond this the oldest are dropped and counted.
pub const MAX_PENDING_DOCUMENTS: usize = 1_000;

/// What the pipeline has seen of the invocation lifecycle, for the flush policy to wait on.
/// Recent request ids are kept, not just the last: with background flushes the next
/// invocation may start before a waiter of the previous one looks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub last_started: Option<String>,
    pub last_reported: Option<String>,
    started: VecDeque<String>,
    runtime_done: VecDeque<String>,
}

/// Request ids remembered per lifecycle step.
const RECENT_REQUESTS: usize = 64;

impl Progress {
    pub fn has_started(&self, request_id: &str) -> bool {
        self.started.iter().any(|id| id == request_id)
    }

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

/// What a flush takes out of the pipeline.
#[derive(Debug, Default)]
pub struct Outgoing {
    pub logs: Vec<LogEvent>,
    pub documents: Vec<LogEvent>,
}

impl Outgoing {
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.documents.is_empty()
    }

    pub fn len(&self) -> usize {
        self.logs.len() + self.documents.len()
    }
}

/// What is left in the pipeline (at shutdown, what could not be sent).
#[derive(Debug, Default, PartialEq)]
pub struct Backlog {
    pub logs: usize,
    pub documents: usize,
    pub metric_values: usize,
    pub dropped_unreported: u64,
}

pub struct Pipeline {
    settings: Settings,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
}

struct Settings {
    namespace: String,
    service: String,
    function_name: String,
    function_version: String,
    platform_logs: bool,
}

struct State {
    buffer: LogBuffer,
    metrics: Aggregator,
    documents: VecDeque<LogEvent>,
    /// Events lost outside the buffer (refused by CloudWatch, documents over the cap) not yet
    /// reported as `LogsDropped`.
    dropped: u64,
    context: Context,
}

/// The invocation the records belong to, from the platform events in the same stream.
#[derive(Default)]
struct Context {
    request_id: Option<String>,
    trace_id: Option<String>,
    /// True until the first invocation of this environment has been reported.
    cold: bool,
    runtime_ms: HashMap<String, f64>,
}

impl Pipeline {
    pub fn new(config: &Config) -> Self {
        Self {
            settings: Settings {
                namespace: config.namespace.clone(),
                service: config.service.clone(),
                function_name: config.function_name.clone(),
                function_version: config.function_version.clone(),
                platform_logs: config.platform_logs,
            },
            state: Mutex::new(State {
                buffer: LogBuffer::new(config.buffer_bytes),
                metrics: Aggregator::default(),
                documents: VecDeque::new(),
                dropped: 0,
                context: Context { cold: true, ..Context::default() },
            }),
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Takes deliveries from the listener until it goes away.
    pub async fn consume(self: std::sync::Arc<Self>, mut deliveries: mpsc::UnboundedReceiver<Bytes>) {
        while let Some(body) = deliveries.recv().await {
            self.ingest(&body);
        }
    }

    /// Processes one Telemetry API delivery.
    pub fn ingest(&self, body: &[u8]) {
        let records = record::parse_delivery(body, now_ms());
        let mut progress = self.progress.borrow().clone();
        {
            let mut state = self.lock();
            for record in records {
                self.process(&mut state, record, &mut progress);
            }
        }
        self.progress.send_if_modified(|current| {
            let changed = *current != progress;
            *current = progress;
            changed
        });
    }

    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Waits until `done` holds for the lifecycle seen so far, or the timeout; true if it held.
    pub async fn wait_for(&self, timeout: Duration, done: impl FnMut(&Progress) -> bool) -> bool {
        let mut receiver = self.progress.subscribe();
        let held = matches!(tokio::time::timeout(timeout, receiver.wait_for(done)).await, Ok(Ok(_)));
        held
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock aborts the process (panic = abort), so poisoning only
        // happens in tests; the state is still consistent enough to keep shipping.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn process(&self, state: &mut State, record: Record, progress: &mut Progress) {
        match record.kind {
            Kind::Function(line) => self.line(state, record.time_ms, line, None),
            Kind::Extension(line) => self.line(state, record.time_ms, line, Some("extension")),
            Kind::Platform { event, record: body } => self.platform(state, record.time_ms, &event, body, progress),
            Kind::Unknown(raw) => {
                let message = match raw {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                state.buffer.push(LogEvent::new(record.time_ms, message));
            }
        }
    }

    fn line(&self, state: &mut State, time_ms: i64, line: Value, source: Option<&str>) {
        let mut object = match line {
            Value::Object(object) => object,
            Value::String(text) => {
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    return;
                }
                match text.trim_start().starts_with('{').then(|| serde_json::from_str::<Value>(text)) {
                    Some(Ok(Value::Object(object))) => object,
                    _ => Map::from_iter([("message".to_owned(), Value::String(text.to_owned()))]),
                }
            }
            other => Map::from_iter([("message".to_owned(), other)]),
        };
        if emf::is_document(&object) {
            if !state.metrics.observe_document(&object, time_ms) {
                // Not ours to merge: CloudWatch still extracts it as it is.
                state.buffer.push(LogEvent::new(time_ms, Value::Object(object).to_string()));
            }
            return;
        }
        if let Some(source) = source {
            object.entry("source").or_insert_with(|| json!(source));
        }
        self.enrich(&state.context, &mut object);
        state.buffer.push(LogEvent::new(time_ms, Value::Object(object).to_string()));
    }

    /// Adds what a reader needs to place a line, unless the line already says it.
    fn enrich(&self, context: &Context, object: &mut Map<String, Value>) {
        let has = |object: &Map<String, Value>, keys: &[&str]| keys.iter().any(|k| object.contains_key(*k));
        if !has(object, &["request_id", "requestId", "AWSRequestId", "aws_request_id"]) {
            if let Some(id) = &context.request_id {
                object.insert("request_id".into(), json!(id));
            }
        }
        if !has(object, &["cold_start", "coldStart"]) {
            object.insert("cold_start".into(), json!(context.cold));
        }
        if !has(object, &["function_name", "functionName"]) {
            object.insert("function_name".into(), json!(self.settings.function_name));
        }
        if !has(object, &["function_version", "functionVersion"]) {
            object.insert("function_version".into(), json!(self.settings.function_version));
        }
        if !has(object, &["trace_id", "traceId", "xray_trace_id"]) {
            if let Some(trace) = &context.trace_id {
                object.insert("trace_id".into(), json!(trace));
            }
        }
    }

    fn platform(&self, state: &mut State, time_ms: i64, event: &str, record: Value, progress: &mut Progress) {
        let request_id = record.get("requestId").and_then(Value::as_str).map(str::to_owned);
        let status = record.get("status").and_then(Value::as_str).unwrap_or("success");
        let metrics = record.get("metrics").cloned().unwrap_or(Value::Null);
        let mut keep = match event {
            "platform.start" | "platform.initStart" => false,
            "platform.runtimeDone" | "platform.initRuntimeDone" => status != "success",
            _ => true,
        };
        match event {
            "platform.start" => {
                state.context.request_id = request_id.clone();
                state.context.trace_id = record.pointer("/tracing/value").and_then(Value::as_str).map(str::to_owned);
                if let Some(id) = &request_id {
                    Progress::remember(&mut progress.started, id);
                }
                progress.last_started = request_id.clone();
            }
            "platform.runtimeDone" => {
                if let (Some(id), Some(ms)) = (&request_id, metrics.get("durationMs").and_then(Value::as_f64)) {
                    if state.context.runtime_ms.len() > 64 {
                        state.context.runtime_ms.clear();
                    }
                    state.context.runtime_ms.insert(id.clone(), ms);
                }
                if let Some(id) = &request_id {
                    Progress::remember(&mut progress.runtime_done, id);
                }
            }
            "platform.report" => {
                self.report_metrics(state, time_ms, request_id.as_deref(), status, &metrics);
                state.context.cold = false;
                progress.last_reported = request_id.clone();
            }
            "platform.logsDropped" => {
                let dropped = record.get("droppedRecords").and_then(Value::as_f64).unwrap_or(0.0);
                self.observe(state, time_ms, emf::LOGS_DROPPED, "Count", dropped);
            }
            _ => keep = true,
        }
        if keep && self.settings.platform_logs {
            let mut object = Map::from_iter([("type".to_owned(), json!(event)), ("record".to_owned(), record)]);
            if let Some(id) = request_id {
                object.insert("request_id".into(), json!(id));
            }
            object.insert("function_name".into(), json!(self.settings.function_name));
            object.insert("function_version".into(), json!(self.settings.function_version));
            state.buffer.push(LogEvent::new(time_ms, Value::Object(object).to_string()));
        }
    }

    fn report_metrics(&self, state: &mut State, time_ms: i64, request_id: Option<&str>, status: &str, metrics: &Value) {
        let number = |key: &str| metrics.get(key).and_then(Value::as_f64);
        let init = number("initDurationMs");
        self.observe(state, time_ms, emf::COLD_START, "Count", if init.is_some() { 1.0 } else { 0.0 });
        if let Some(init) = init {
            self.observe(state, time_ms, emf::INIT_DURATION, "Milliseconds", init);
        }
        let duration = number("durationMs");
        if let Some(duration) = duration {
            self.observe(state, time_ms, emf::DURATION, "Milliseconds", duration);
        }
        if let Some(billed) = number("billedDurationMs") {
            self.observe(state, time_ms, emf::BILLED_DURATION, "Milliseconds", billed);
        }
        if let Some(used) = number("maxMemoryUsedMB") {
            self.observe(state, time_ms, emf::MAX_MEMORY_USED, "Megabytes", used);
            if let Some(size) = number("memorySizeMB").filter(|s| *s > 0.0) {
                self.observe(state, time_ms, emf::MEMORY_UTILIZATION, "Percent", used / size * 100.0);
            }
        }
        let failed = matches!(status, "error" | "failure");
        self.observe(state, time_ms, emf::ERRORS, "Count", if failed { 1.0 } else { 0.0 });
        self.observe(state, time_ms, emf::TIMEOUTS, "Count", if status == "timeout" { 1.0 } else { 0.0 });
        let runtime = request_id.and_then(|id| state.context.runtime_ms.remove(id));
        if let (Some(duration), Some(runtime)) = (duration, runtime) {
            self.observe(state, time_ms, emf::POST_RUNTIME_DURATION, "Milliseconds", (duration - runtime).max(0.0));
        }
    }

    fn observe(&self, state: &mut State, time_ms: i64, name: &str, unit: &str, value: f64) {
        state.metrics.observe(Observation {
            time_ms,
            namespace: self.settings.namespace.clone(),
            dimensions: vec![(emf::SERVICE_DIMENSION.to_owned(), self.settings.service.clone())],
            name: name.to_owned(),
            unit: Some(unit.to_owned()),
            value,
        });
    }

    /// Everything there is to ship: buffered events, pending and fresh EMF documents, with the
    /// count of events dropped since the last flush as `LogsDropped`.
    pub fn take_outgoing(&self, now_ms: i64) -> Outgoing {
        let mut state = self.lock();
        let dropped = state.buffer.take_dropped() + std::mem::take(&mut state.dropped);
        if dropped == 0 && state.buffer.is_empty() && state.metrics.is_empty() && state.documents.is_empty() {
            return Outgoing::default();
        }
        self.observe(&mut state, now_ms, emf::LOGS_DROPPED, "Count", dropped as f64);
        let mut documents: Vec<LogEvent> = state.documents.drain(..).collect();
        documents.extend(state.metrics.drain().into_iter().map(|(time, document)| LogEvent::new(time, document)));
        Outgoing { logs: state.buffer.take_all(), documents }
    }

    /// Takes back what a flush could not send: log events into the buffer (oldest dropped past
    /// the cap), documents into the pending list.
    pub fn give_back(&self, outgoing: Outgoing) {
        let mut state = self.lock();
        state.buffer.restore(outgoing.logs);
        for document in outgoing.documents.into_iter().rev() {
            state.documents.push_front(document);
        }
        while state.documents.len() > MAX_PENDING_DOCUMENTS {
            state.documents.pop_front();
            state.dropped += 1;
        }
    }

    /// Counts events CloudWatch refused for good; they are reported as `LogsDropped`.
    pub fn count_rejected(&self, events: usize) {
        self.lock().dropped += events as u64;
    }

    pub fn buffered_bytes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.buffer.bytes(), state.buffer.capacity())
    }

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

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(buffer_bytes: usize) -> Pipeline {
        let mut config = Config::from_lookup(|name| match name {
            "BOOKS_TELEMETRY_LOG_GROUP" => Some("/books/test".into()),
            "AWS_LAMBDA_FUNCTION_NAME" => Some("books-dev-command".into()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST".into()),
            "BOOKS_TELEMETRY_SERVICE" => Some("command".into()),
            _ => None,
        })
        .unwrap();
        config.buffer_bytes = buffer_bytes;
        Pipeline::new(&config)
    }

    fn deliver(pipeline: &Pipeline, records: Value) {
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
            invocation(
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
        deliver(&pipeline, invocation("r1", true, vec![]));
        deliver(&pipeline, invocation("r2", false, vec![json!("warm")]));
        let out = pipeline.take_outgoing(now_ms());
        assert_eq!(metric_values(&out, emf::COLD_START), [1.0, 0.0]);
        assert_eq!(metric_values(&out, emf::INIT_DURATION), [80.0]);
        assert_eq!(metric_values(&out, emf::DURATION), [23.5, 23.5]);
        assert_eq!(metric_values(&out, emf::BILLED_DURATION), [24.0, 24.0]);
        assert_eq!(metric_values(&out, emf::MAX_MEMORY_USED), [32.0, 32.0]);
        assert_eq!(metric_values(&out, emf::MEMORY_UTILIZATION), [25.0, 25.0]);
        assert_eq!(metric_values(&out, emf::ERRORS), [0.0, 0.0]);
        assert_eq!(metric_values(&out, emf::TIMEOUTS), [0.0, 0.0]);
        assert_eq!(metric_values(&out, emf::POST_RUNTIME_DURATION), [3.5, 3.5]);
        assert_eq!(metric_values(&out, emf::LOGS_DROPPED), [0.0]);
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
        deliver(&pipeline, body);
        let out = pipeline.take_outgoing(now_ms());
        assert_eq!(metric_values(&out, emf::ERRORS), [1.0, 0.0]);
        assert_eq!(metric_values(&out, emf::TIMEOUTS), [0.0, 1.0]);
        assert_eq!(metric_values(&out, emf::LOGS_DROPPED).iter().sum::<f64>(), 7.0);
        let types: Vec<Value> = logs(&out).iter().map(|l| l["type"].clone()).collect();
        assert_eq!(types, [json!("platform.report"), json!("platform.report"), json!("platform.logsDropped")]);
    }

    #[test]
    fn function_emf_documents_are_metrics_not_logs() {
        let pipeline = pipeline(1 << 20);
        let document = r#"{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"Books","Dimensions":[["Service"]],"Metrics":[{"Name":"BooksCreated","Unit":"Count"}]}]},"Service":"command","BooksCreated":1}"#;
        deliver(&pipeline, invocation("r1", false, vec![json!(document), json!(document)]));
        let out = pipeline.take_outgoing(now_ms());
        assert_eq!(metric_values(&out, "BooksCreated"), [1.0, 1.0]);
        assert!(logs(&out).iter().all(|l| l.get("BooksCreated").is_none()));
    }

    #[test]
    fn progress_remembers_invocations_a_later_one_has_overtaken() {
        let pipeline = pipeline(1 << 20);
        deliver(&pipeline, invocation("r1", true, vec![]));
        deliver(&pipeline, invocation("r2", false, vec![]));
        let progress = pipeline.progress().borrow().clone();
        assert!(progress.has_started("r1") && progress.has_started("r2"));
        assert!(progress.runtime_done("r1") && progress.runtime_done("r2"));
        assert!(!progress.has_started("r3"));
        assert!(progress.settled(), "r2, the last to start, was reported");
    }

    #[test]
    fn own_drops_are_reported_exactly_once() {
        let pipeline = pipeline(64 << 10);
        let lines: Vec<Value> = (0..200).map(|i| json!(format!("{i:0>1000}"))).collect();
        deliver(&pipeline, invocation("r1", false, lines));
        let out = pipeline.take_outgoing(now_ms());
        let kept = out.logs.len() as f64;
        let dropped: f64 = metric_values(&out, emf::LOGS_DROPPED).iter().sum();
        assert!(dropped > 0.0);
        assert_eq!(kept + dropped, 201.0, "200 function lines and the report line: kept or counted");
        pipeline.give_back(out);
        let again = pipeline.take_outgoing(now_ms());
        assert_eq!(
            metric_values(&again, emf::LOGS_DROPPED).iter().sum::<f64>(),
            dropped,
            "documents kept, not re-counted"
        );
    }
}
