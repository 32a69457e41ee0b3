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
    pub request_id: String,
    pub deadline_ms: u64,
    pub payload: Bytes,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// What the runtime posted for the current invocation.
#[derive(Debug, Clone)]
pub(super) enum RuntimeAnswer {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

#[derive(Debug)]
pub(super) struct Extension {
    pub id: String,
    pub name: String,
    pub invoke: bool,
    pub shutdown: bool,
    /// Parked in `event/next`, i.e. done with everything it was given.
    pub waiting: bool,
    pub events: VecDeque<Value>,
    pub registered_at: Instant,
    pub subscribed_at: Option<Instant>,
    /// Its first `event/next`.
    pub ready_at: Option<Instant>,
}

/// State shared by the API handlers and the controller; every change wakes every waiter.
#[derive(Debug, Default)]
pub(super) struct SandboxState {
    pub accepting_registrations: bool,
    pub extensions: Vec<Extension>,
    pub runtime_waiting: bool,
    pub pending: Option<Invocation>,
    pub current: Option<String>,
    pub answer: Option<RuntimeAnswer>,
    /// When the runtime's answer began to arrive and when it had arrived whole.
    pub answer_timing: Option<(Instant, Instant)>,
    pub init_error: Option<String>,
    pub exit_errors: Vec<String>,
    pub exited: Vec<String>,
}

/// A record kept from the init phase, replayed to extensions that subscribe during init (they
/// cannot subscribe before `platform.initStart` has happened).
#[derive(Debug, Clone)]
enum Backlog {
    Platform(Box<Record>),
    Log(StreamType, String),
}

pub(super) struct Sandbox {
    pub spec: FunctionSpec,
    pub state: Mutex<SandboxState>,
    changed: Notify,
    pub subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Telemetry of the init phase; `None` once init is over.
    backlog: Mutex<Option<Vec<Backlog>>>,
    pub client: HttpClient,
}

impl Sandbox {
    /// A sandbox in its init phase: registrations accepted, telemetry kept for late subscribers.
    pub(super) fn new(spec: FunctionSpec) -> Self {
        Self {
            spec,
            state: Mutex::new(SandboxState { accepting_registrations: true, ..SandboxState::default() }),
            changed: Notify::new(),
            subscribers: Mutex::new(Vec::new()),
            backlog: Mutex::new(Some(Vec::new())),
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

    /// Sends a record to every subscriber that asked for its stream.
    fn emit(&self, stream: &StreamType, record: impl Fn(&Subscriber) -> Record) {
        let Ok(subscribers) = self.subscribers.lock() else { return };
        for subscriber in subscribers.iter().filter(|s| s.wants(stream)) {
            subscriber.push(record(subscriber));
        }
    }

    pub(super) fn emit_platform(&self, event: Platform) {
        let record = Record::now(event);
        if let Ok(mut backlog) = self.backlog.lock() {
            if let Some(backlog) = backlog.as_mut() {
                backlog.push(Backlog::Platform(Box::new(record.clone())));
            }
        }
        self.emit(&StreamType::Platform, |_| record.clone());
    }

    /// A line a process wrote, as a `function` or `extension` record.
    pub(super) fn emit_log(&self, stream: &StreamType, line: &str) {
        if let Ok(mut backlog) = self.backlog.lock() {
            if let Some(backlog) = backlog.as_mut() {
                backlog.push(Backlog::Log(stream.clone(), line.to_owned()));
            }
        }
        self.emit(stream, |subscriber| log_record(stream, line, subscriber));
    }

    /// Adds a subscriber and replays the init phase's records it asked for.
    pub(super) fn subscribe(&self, subscriber: Arc<Subscriber>) {
        if let Ok(backlog) = self.backlog.lock() {
            for record in backlog.iter().flatten() {
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
        }
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.push(subscriber);
        }
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
        if let Ok(mut backlog) = self.backlog.lock() {
            *backlog = None;
        }
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
