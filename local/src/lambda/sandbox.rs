//! What an execution environment's processes and its controller share: the state the Runtime
//! and Extensions APIs change and the controller waits on, and the telemetry it emits to its
//! subscribers (replaying the init phase to late ones).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};
use telemetry_schema::{
    Event, InitReport, InitReportMetrics, InitRuntimeDone, InitializationType, LogLine, Phase, Platform, Record,
    Status, StreamType,
};
use tokio::sync::Notify;

use super::telemetry_api::Subscriber;
use crate::http_util::HttpClient;
use crate::invoke::FunctionSpec;

/// An invocation handed to the runtime's `next`.
#[derive(Debug, Clone)]
pub(super) struct Invocation {
    /// The ARN the caller invoked (qualified by an alias or version when it named one).
    pub(crate) invoked_arn: String,
    pub(crate) request_id: String,
    pub(crate) deadline_ms: u64,
    pub(crate) payload: Bytes,
    pub(crate) trace_id: String,
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
}

/// What the runtime posted for the current invocation.
#[derive(Debug, Clone)]
pub(super) enum RuntimeAnswer {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

#[derive(Debug)]
pub(super) struct Extension {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) invoke: bool,
    pub(crate) shutdown: bool,
    /// Parked in `event/next`, i.e. done with everything it was given.
    pub(crate) waiting: bool,
    pub(crate) events: VecDeque<Value>,
    pub(crate) registered_at: Instant,
    pub(crate) subscribed_at: Option<Instant>,
    /// Its first `event/next`.
    pub(crate) ready_at: Option<Instant>,
}

/// State shared by the API handlers and the controller; every change wakes every waiter.
#[derive(Debug, Default)]
pub(super) struct SandboxState {
    pub(crate) accepting_registrations: bool,
    pub(crate) extensions: Vec<Extension>,
    pub(crate) runtime_waiting: bool,
    pub(crate) pending: Option<Invocation>,
    pub(crate) current: Option<String>,
    pub(crate) answer: Option<RuntimeAnswer>,
    /// When the runtime's answer began to arrive and when it had arrived whole.
    pub(crate) answer_timing: Option<(Instant, Instant)>,
    pub(crate) init_error: Option<String>,
    pub(crate) exit_errors: Vec<String>,
    pub(crate) exited: Vec<String>,
}

/// A record kept from the init phase, replayed to extensions that subscribe during init (they
/// cannot subscribe before `platform.initStart` has happened).
#[derive(Debug, Clone)]
enum Backlog {
    Platform(Box<Record>),
    Log(StreamType, String),
}

/// The Telemetry API subscribers and the init phase's records, under one lock: a subscriber
/// that joins while records are emitted gets each of them once, replayed or live, never both
/// nor neither.
struct Telemetry {
    subscribers: Vec<Arc<Subscriber>>,
    /// Telemetry of the init phase; `None` once init is over.
    backlog: Option<Vec<Backlog>>,
}

impl Telemetry {
    /// Sends a record to every subscriber that asked for its stream.
    fn emit(&self, stream: &StreamType, record: impl Fn(&Subscriber) -> Record) {
        for subscriber in self.subscribers.iter().filter(|s| s.wants(stream)) {
            subscriber.push(record(subscriber));
        }
    }
}

pub(super) struct Sandbox {
    pub(crate) spec: FunctionSpec,
    pub(crate) state: Mutex<SandboxState>,
    changed: Notify,
    telemetry: Mutex<Telemetry>,
    pub(crate) client: HttpClient,
}

impl Sandbox {
    /// A sandbox in its init phase: registrations accepted, telemetry kept for late subscribers.
    pub(super) fn new(spec: FunctionSpec) -> Self {
        Self {
            spec,
            state: Mutex::new(SandboxState { accepting_registrations: true, ..SandboxState::default() }),
            changed: Notify::new(),
            telemetry: Mutex::new(Telemetry { subscribers: Vec::new(), backlog: Some(Vec::new()) }),
            client: crate::http_util::client(),
        }
    }

    pub(super) fn update<T>(&self, change: impl FnOnce(&mut SandboxState) -> T) -> T {
        let result = match self.state.lock() {
            Ok(mut state) => change(&mut state),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        };
        self.changed.notify_waiters();
        result
    }

    /// Waits until `check` yields a value; it runs under the lock after every change.
    pub(super) async fn wait_for<T>(&self, mut check: impl FnMut(&mut SandboxState) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = match self.state.lock() {
                Ok(mut state) => check(&mut state),
                Err(poisoned) => check(&mut poisoned.into_inner()),
            };
            if let Some(value) = found {
                return value;
            }
            notified.await;
        }
    }

    fn telemetry(&self) -> std::sync::MutexGuard<'_, Telemetry> {
        self.telemetry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Telemetry API subscribers so far.
    pub(super) fn subscribers(&self) -> Vec<Arc<Subscriber>> {
        self.telemetry().subscribers.clone()
    }

    pub(super) fn emit_platform(&self, event: Platform) {
        let record = Record::now(event);
        let mut telemetry = self.telemetry();
        if let Some(backlog) = telemetry.backlog.as_mut() {
            backlog.push(Backlog::Platform(Box::new(record.clone())));
        }
        telemetry.emit(&StreamType::Platform, |_| record.clone());
    }

    /// A line a process wrote, as a `function` or `extension` record.
    pub(super) fn emit_log(&self, stream: &StreamType, line: &str) {
        let mut telemetry = self.telemetry();
        if let Some(backlog) = telemetry.backlog.as_mut() {
            backlog.push(Backlog::Log(stream.clone(), line.to_owned()));
        }
        telemetry.emit(stream, |subscriber| log_record(stream, line, subscriber));
    }

    /// Adds a subscriber and replays the init phase's records it asked for.
    pub(super) fn subscribe(&self, subscriber: Arc<Subscriber>) {
        let mut telemetry = self.telemetry();
        for record in telemetry.backlog.iter().flatten() {
            match record {
                Backlog::Platform(record) if subscriber.wants(&StreamType::Platform) => {
                    subscriber.push((**record).clone());
                }
                Backlog::Log(stream, line) if subscriber.wants(stream) => {
                    subscriber.push(log_record(stream, line, &subscriber));
                }
                _ => {}
            }
        }
        telemetry.subscribers.push(subscriber);
    }

    /// `platform.initRuntimeDone` and `platform.initReport`.
    pub(super) fn emit_init_end(&self, phase: &Phase, status: Status, error_type: Option<&str>, duration: Duration) {
        self.emit_platform(Platform::InitRuntimeDone(InitRuntimeDone {
            initialization_type: InitializationType::OnDemand,
            phase: Some(phase.clone()),
            status: status.clone(),
            error_type: error_type.map(str::to_owned),
            spans: None,
            other: Map::new(),
        }));
        self.emit_platform(Platform::InitReport(InitReport {
            initialization_type: InitializationType::OnDemand,
            phase: phase.clone(),
            status,
            error_type: error_type.map(str::to_owned),
            metrics: InitReportMetrics { duration_ms: duration_ms(duration), other: Map::new() },
            spans: None,
            other: Map::new(),
        }));
    }

    pub(super) fn end_backlog(&self) {
        self.telemetry().backlog = None;
    }
}

/// A line a process wrote, as a `function` or `extension` record for `subscriber`'s schema.
fn log_record(stream: &StreamType, line: &str, subscriber: &Subscriber) -> Record {
    let line = LogLine::from_output(line, subscriber.subscription.structured_records());
    Record::now(match stream {
        StreamType::Function => Event::Function(line),
        _ => Event::Extension(line),
    })
}

/// A duration in milliseconds, to the microsecond, as telemetry reports them.
pub(super) fn duration_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::telemetry_api::Subscription;
    use super::*;

    fn sandbox() -> Arc<Sandbox> {
        Arc::new(Sandbox::new(FunctionSpec {
            name: "fixture".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:fixture".into(),
            bootstrap: PathBuf::from("/bin/true"),
            bootstrap_args: Vec::new(),
            handler: "fixture".into(),
            task_root: std::env::temp_dir(),
            extensions_dir: None,
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            environment: std::collections::BTreeMap::new(),
            reserved_concurrency: None,
            version: "$LATEST".into(),
            log_group: "/aws/lambda/fixture".into(),
        }))
    }

    fn subscriber() -> Arc<Subscriber> {
        let body = serde_json::json!({"schemaVersion": "2022-12-13", "types": ["function"],
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:9"}});
        Subscriber::new(Subscription::parse(body.to_string().as_bytes()).unwrap())
    }

    fn lines(subscriber: &Subscriber) -> Vec<String> {
        subscriber
            .take_queued()
            .into_iter()
            .filter_map(|record| match record.event {
                Event::Function(LogLine::Text(text)) => Some(text),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_subscriber_gets_the_init_phase_replayed_then_live_records_and_nothing_after_init_twice() {
        let sandbox = sandbox();
        sandbox.emit_log(&StreamType::Function, "during init");
        let early = subscriber();
        sandbox.subscribe(Arc::clone(&early));
        sandbox.emit_log(&StreamType::Function, "after subscribing");
        sandbox.end_backlog();
        sandbox.emit_log(&StreamType::Function, "after init");
        assert_eq!(lines(&early), ["during init", "after subscribing", "after init"]);
        let late = subscriber();
        sandbox.subscribe(Arc::clone(&late));
        assert!(lines(&late).is_empty(), "init is over: nothing to replay");
    }

    /// A stress test: with the subscriber added apart from its replay (a lock released between
    /// them), about one run in two here loses or repeats a line.
    #[test]
    fn a_subscriber_that_joins_while_lines_are_written_gets_each_of_them_once() {
        for _ in 0..100 {
            let sandbox = sandbox();
            let writer = {
                let sandbox = Arc::clone(&sandbox);
                std::thread::spawn(move || {
                    for n in 0..2_000 {
                        sandbox.emit_log(&StreamType::Function, &n.to_string());
                    }
                })
            };
            // Joins midway (the writer may already be done on a loaded machine: then all is replayed).
            while sandbox.telemetry().backlog.as_ref().is_some_and(|b| b.len() < 1_000) && !writer.is_finished() {
                std::thread::yield_now();
            }
            let joined = subscriber();
            sandbox.subscribe(Arc::clone(&joined));
            writer.join().unwrap();
            let expected: Vec<String> = (0..2_000).map(|n: u32| n.to_string()).collect();
            assert_eq!(lines(&joined), expected);
        }
    }
}
