//! The `platform.*` events: the lifecycle of an execution environment (init, invoke, restore),
//! its extensions and subscriptions, and the records the platform had to drop.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::open_enum;

/// Declares [`Platform`] from one list, each event once: its variant, its record's type and its
/// `type` name; the enum, [`Platform::TYPES`], `type_name`, `from_record` and the serialisation
/// all follow from it, so they cannot disagree.
macro_rules! platform_events {
    ($($(#[$doc:meta])* $variant:ident($record:ty) = $name:literal,)+) => {
        /// One `platform.*` event: its `type` is the variant, its `record` the variant's data.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Platform {
            $($(#[$doc])* $variant($record),)+
        }

        impl Platform {
            /// Every event type this schema knows, as the `type` field names them.
            pub const TYPES: &'static [&'static str] = &[$($name),+];

            /// The event's `type`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            /// Reads the `record` of an event of type `type_name`; `None` for a type this schema
            /// does not know, `Some(Err)` for a record without its type's shape.
            pub(crate) fn from_record(type_name: &str, record: &serde_json::Value) -> Option<serde_json::Result<Self>> {
                Some(match type_name {
                    $($name => <$record>::deserialize(record).map(Self::$variant),)+
                    _ => return None,
                })
            }
        }

        /// A platform event serialises as its `record` (the record's `type` is [`Platform::type_name`]).
        impl Serialize for Platform {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(event) => event.serialize(serializer),)+
                }
            }
        }
    };
}

platform_events! {
    /// `platform.initStart`: the init phase began.
    InitStart(InitStart) = "platform.initStart",
    /// `platform.initRuntimeDone`: the runtime finished its init.
    InitRuntimeDone(InitRuntimeDone) = "platform.initRuntimeDone",
    /// `platform.initReport`: the init phase, measured.
    InitReport(InitReport) = "platform.initReport",
    /// `platform.start`: an invocation began.
    Start(Start) = "platform.start",
    /// `platform.runtimeDone`: the runtime answered an invocation (or failed to).
    RuntimeDone(RuntimeDone) = "platform.runtimeDone",
    /// `platform.report`: an invocation, measured, once every extension was done with it.
    Report(Report) = "platform.report",
    /// `platform.restoreStart`: a SnapStart restore began.
    RestoreStart(RestoreStart) = "platform.restoreStart",
    /// `platform.restoreRuntimeDone`: the runtime finished its restore hooks.
    RestoreRuntimeDone(RestoreRuntimeDone) = "platform.restoreRuntimeDone",
    /// `platform.restoreReport`: the restore, measured.
    RestoreReport(RestoreReport) = "platform.restoreReport",
    /// `platform.extension`: an extension registered.
    Extension(ExtensionState) = "platform.extension",
    /// `platform.telemetrySubscription`: an extension subscribed to the Telemetry API.
    TelemetrySubscription(TelemetrySubscription) = "platform.telemetrySubscription",
    /// `platform.logsDropped`: records a subscriber did not get.
    LogsDropped(LogsDropped) = "platform.logsDropped",
}

impl Platform {
    /// The invocation the event belongs to, for the events that carry one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Start(start) => Some(&start.request_id),
            Self::RuntimeDone(done) => Some(&done.request_id),
            Self::Report(report) => Some(&report.request_id),
            _ => None,
        }
    }
}

open_enum! {
    /// How the environment was initialised (`initializationType`).
    InitializationType {
        /// Created for an invocation.
        OnDemand = "on-demand",
        /// Created ahead of invocations.
        ProvisionedConcurrency = "provisioned-concurrency",
        /// Restored from a SnapStart snapshot.
        SnapStart = "snap-start",
        /// An environment of Lambda Managed Instances (schema 2025-01-29).
        LambdaManagedInstances = "lambda-managed-instances",
    }
}

open_enum! {
    /// When the init happened (`phase`): in the init phase, or again in the invoke phase after a
    /// failed or timed-out init.
    Phase {
        /// The init phase.
        Init = "init",
        /// Init suppressed into the first invocation.
        Invoke = "invoke",
        /// A SnapStart snapshot's init.
        SnapStart = "snap-start",
    }
}

open_enum! {
    /// How a phase ended (`status`).
    Status {
        /// Done.
        Success = "success",
        /// The runtime or an extension failed (a crash, an exit).
        Failure = "failure",
        /// The function returned an error.
        Error = "error",
        /// The phase ran out of time.
        Timeout = "timeout",
    }
}

/// `tracing`: the X-Ray trace of the invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceContext {
    /// The span, when the platform started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// `X-Amzn-Trace-Id`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The trace header value (`Root=…;Parent=…;Sampled=…`).
    pub value: String,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TraceContext {
    /// An `X-Amzn-Trace-Id` trace.
    pub fn amzn_trace_id(value: impl Into<String>) -> Self {
        Self { span_id: None, kind: "X-Amzn-Trace-Id".to_owned(), value: value.into(), other: Map::new() }
    }
}

/// A timed part of a phase (`spans`), e.g. `responseLatency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// What was timed.
    pub name: String,
    /// When it began (RFC 3339).
    pub start: String,
    /// How long it took.
    pub duration_ms: f64,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.initStart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitStart {
    /// How the environment is initialised.
    pub initialization_type: InitializationType,
    /// In which phase.
    pub phase: Phase,
    /// The function.
    pub function_name: String,
    /// Its version (`$LATEST`).
    pub function_version: String,
    /// The runtime's version, e.g. `provided:al2023.v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    /// The runtime version's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
    /// The environment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The environment's memory (a number; the reference says a string for restores).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "number_or_string")]
    pub instance_max_memory: Option<u64>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.initRuntimeDone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitRuntimeDone {
    /// How the environment is initialised.
    pub initialization_type: InitializationType,
    /// In which phase (absent from AWS's own example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// How the runtime's init ended.
    pub status: Status,
    /// Why it failed, e.g. `Runtime.ExitError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Timed parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The metrics of `platform.initReport` (and of `platform.restoreReport`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReportMetrics {
    /// How long the phase took.
    pub duration_ms: f64,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.initReport`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// How the environment is initialised.
    pub initialization_type: InitializationType,
    /// In which phase.
    pub phase: Phase,
    /// How the init ended.
    pub status: Status,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Its duration.
    pub metrics: InitReportMetrics,
    /// Timed parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// The invocation.
    pub request_id: String,
    /// The function version invoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TraceContext>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The metrics of `platform.runtimeDone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDoneMetrics {
    /// From the invocation to the runtime's answer.
    pub duration_ms: f64,
    /// Bytes of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced_bytes: Option<u64>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.runtimeDone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDone {
    /// The invocation.
    pub request_id: String,
    /// How the runtime's work ended; absent means success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Its duration and response size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RuntimeDoneMetrics>,
    /// Its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TraceContext>,
    /// Timed parts (`responseLatency`, `responseDuration`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The metrics of `platform.report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetrics {
    /// The invoke phase: the runtime and every extension.
    pub duration_ms: f64,
    /// What is billed (absent on Lambda Managed Instances, as are the memory figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_duration_ms: Option<u64>,
    /// The function's memory.
    #[serde(rename = "memorySizeMB", default, skip_serializing_if = "Option::is_none")]
    pub memory_size_mb: Option<u64>,
    /// The environment's peak memory.
    #[serde(rename = "maxMemoryUsedMB", default, skip_serializing_if = "Option::is_none")]
    pub max_memory_used_mb: Option<u64>,
    /// The init phase, for the first invocation of an environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_duration_ms: Option<f64>,
    /// The restore, for the first invocation after a SnapStart restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_duration_ms: Option<f64>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The invocation.
    pub request_id: String,
    /// How it ended; absent (as in AWS's own example) means success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Its measurements.
    pub metrics: ReportMetrics,
    /// Its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TraceContext>,
    /// Timed parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.restoreStart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStart {
    /// The function.
    pub function_name: String,
    /// Its version.
    pub function_version: String,
    /// The runtime's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    /// The runtime version's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
    /// The environment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The environment's memory (a number; the reference says a string for restores).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "number_or_string")]
    pub instance_max_memory: Option<u64>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.restoreRuntimeDone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRuntimeDone {
    /// How the restore hooks ended.
    pub status: Status,
    /// Why they failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Timed parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.restoreReport`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// How the restore ended.
    pub status: Status,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Its duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<InitReportMetrics>,
    /// Timed parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.extension`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionState {
    /// The extension's name.
    pub name: String,
    /// `Ready` once registered.
    pub state: String,
    /// The lifecycle events it registered for (`INVOKE`, `SHUTDOWN`).
    pub events: Vec<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.telemetrySubscription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySubscription {
    /// The extension's name.
    pub name: String,
    /// `Subscribed`.
    pub state: String,
    /// The streams it subscribed to.
    pub types: Vec<crate::StreamType>,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `platform.logsDropped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsDropped {
    /// Why, in words.
    pub reason: String,
    /// How many records.
    pub dropped_records: u64,
    /// How many bytes.
    pub dropped_bytes: u64,
    /// Fields this schema does not know, kept as delivered.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A count the reference documents as a number in one place and a string in another.
fn number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| serde::de::Error::custom("not a count")),
        Some(Value::String(text)) => text.parse().map(Some).map_err(serde::de::Error::custom),
        Some(_) => Err(serde::de::Error::custom("not a count")),
    }
}
