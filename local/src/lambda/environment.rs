//! One execution environment: its processes (extensions, then the runtime), its own loopback
//! endpoint serving the Runtime, Extensions and Telemetry APIs, and the lifecycle AWS documents
//! — init, invoke (done when the runtime and every INVOKE extension called next), shutdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map};
use telemetry_schema::{
    InitStart, InitializationType, Phase, Platform, Report, ReportMetrics, RuntimeDone, RuntimeDoneMetrics, Span,
    Start, Status, StreamType, TraceContext,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::observe::{ExtensionTimeline, InitTimeline, InvokeTimeline, Observation, Observer};
use super::process::{self, Process};
use super::sandbox::{duration_ms, Invocation, RuntimeAnswer, Sandbox};
use super::settings::LambdaSettings;
use super::telemetry_api::Subscriber;
use crate::cloudwatch::{Datum, MetricSink};
use crate::http_util;
use crate::invoke::{FunctionSpec, InvokeOutcome, InvokeRequest};

/// How long an init phase may take (Lambda's 10 s for on-demand environments).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);
/// The `errorType` of an init that ran out of time.
const INIT_TIMED_OUT: &str = "Sandbox.Timedout";
/// The shutdown phase of an environment with external extensions: the runtime has up to
/// [`SHUTDOWN_RUNTIME_GRACE`] after its SIGTERM, the extensions the rest, from their SHUTDOWN
/// event to the deadline it carries. Without extensions Lambda gives the runtime no time (0 ms):
/// no SIGTERM, it is stopped.
pub const SHUTDOWN_WITH_EXTENSIONS: Duration = Duration::from_millis(2_000);
/// The runtime's share of [`SHUTDOWN_WITH_EXTENSIONS`].
pub const SHUTDOWN_RUNTIME_GRACE: Duration = Duration::from_millis(300);

/// Why an init phase failed, in Lambda's words: the `errorType` of `platform.initReport` and
/// of the invocation that asked for the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub(super) struct InitFailure {
    /// `Extension.Crash`, `Runtime.InitError`, `Sandbox.Timedout`, …
    pub(super) error_type: &'static str,
    pub(super) message: String,
}

impl InitFailure {
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self { error_type, message: message.into() }
    }
}

/// Why an environment is shut down (the `shutdownReason` of the SHUTDOWN event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The environment was idle and is reclaimed.
    Spindown,
    /// An invocation ran past its timeout.
    Timeout,
    /// The runtime or an extension failed.
    Failure,
}

impl ShutdownReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Spindown => "SPINDOWN",
            Self::Timeout => "TIMEOUT",
            Self::Failure => "FAILURE",
        }
    }
}

pub(super) struct Environment {
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) api_address: std::net::SocketAddr,
    runtime: Option<Process>,
    extensions: Vec<Process>,
    server: tokio::task::JoinHandle<()>,
    pub(crate) init_duration: Duration,
    pub(crate) invocations: u64,
    pub(crate) last_used: Instant,
    pub(crate) healthy: bool,
    observer: Option<Observer>,
    /// Where its `AWS/Lambda` metrics go ([`LambdaSettings::metrics`]).
    metrics: Option<MetricSink>,
    /// Whether it is frozen between invocations ([`LambdaSettings::freeze`]).
    freeze: bool,
    /// How long its runtime has after SIGTERM ([`LambdaSettings::shutdown_runtime_grace`]).
    runtime_grace: Duration,
    /// Since when it has been frozen.
    frozen_since: Option<Instant>,
    /// The most memory seen over the limit (its processes may be gone when the report is made).
    over_memory_mb: u64,
    /// An init retried inside the first invocation took this much of its time.
    init_in_invoke: Option<Duration>,
    /// The code generation of its function it runs (set by the pool on its first invocation).
    pub(crate) generation: Option<u64>,
}

impl Environment {
    /// Starts the API endpoint and the processes, and runs the init: in the init `phase` within
    /// `limit`, or, after an init that failed or timed out, again in the invoke phase within the
    /// function's timeout (which the invocation then has less of).
    pub(super) async fn init(
        spec: &FunctionSpec,
        settings: &LambdaSettings,
        phase: Phase,
        limit: Duration,
    ) -> Result<Self, InitFailure> {
        let started = Instant::now();
        let sandbox = Arc::new(Sandbox::new(spec.clone()));
        let api_error = |e: std::io::Error| InitFailure::new("Runtime.ApiError", e.to_string());
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(api_error)?;
        let api_address = listener.local_addr().map_err(api_error)?;
        let server = tokio::spawn(super::api::serve(listener, Arc::clone(&sandbox)));
        let mut environment = Self {
            sandbox: Arc::clone(&sandbox),
            api_address,
            runtime: None,
            extensions: Vec::new(),
            server,
            init_duration: Duration::ZERO,
            invocations: 0,
            last_used: Instant::now(),
            healthy: true,
            observer: settings.observer.clone(),
            metrics: settings.metrics.clone(),
            freeze: settings.freeze,
            runtime_grace: settings.shutdown_runtime_grace,
            frozen_since: None,
            over_memory_mb: 0,
            init_in_invoke: None,
            generation: None,
        };
        sandbox.emit_platform(Platform::InitStart(InitStart {
            initialization_type: InitializationType::OnDemand,
            phase: phase.clone(),
            function_name: spec.name.clone(),
            function_version: spec.version.clone(),
            runtime_version: Some("provided:al2023".into()),
            runtime_version_arn: None,
            instance_id: Some(http_util::uuid()),
            instance_max_memory: Some(u64::from(spec.memory_mb) * 1024 * 1024),
            other: Map::new(),
        }));
        let mut spawns = Vec::new();
        match environment.run_init(settings, started + limit, &mut spawns).await {
            Ok(()) => {
                environment.init_duration = started.elapsed();
                if phase == Phase::Invoke {
                    environment.init_in_invoke = Some(environment.init_duration);
                }
                environment.observe_init(started, &spawns);
                sandbox.emit_init_end(&phase, Status::Success, None, environment.init_duration);
                sandbox.end_backlog();
                Ok(environment)
            }
            Err(failure) => {
                let status = if failure.error_type == INIT_TIMED_OUT { Status::Timeout } else { Status::Failure };
                sandbox.emit_init_end(&phase, status, Some(failure.error_type), started.elapsed());
                environment.shutdown(ShutdownReason::Failure).await;
                Err(failure)
            }
        }
    }

    /// Runs the init until `deadline`; `spawns` gets each extension's name and start time.
    async fn run_init(
        &mut self,
        settings: &LambdaSettings,
        deadline: Instant,
        spawns: &mut Vec<(String, Instant)>,
    ) -> Result<(), InitFailure> {
        let sandbox_ref = Arc::clone(&self.sandbox);
        let spec = &sandbox_ref.spec;
        let limit = deadline.saturating_duration_since(Instant::now());
        let deadline = tokio::time::Instant::from_std(deadline);
        let runtime_env = runtime_environment(spec, settings, self.api_address);
        let extension_env = extension_environment(&runtime_env);

        let mut extension_paths: Vec<PathBuf> = match &spec.extensions_dir {
            Some(dir) => std::fs::read_dir(dir)
                .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_executable(p)).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        extension_paths.sort();
        for path in &extension_paths {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let sandbox = Arc::clone(&self.sandbox);
            let label = format!("{}/{name}", spec.name);
            let on_line = move |line: &str| {
                eprintln!("[{label}] {line}");
                sandbox.emit_log(&StreamType::Extension, line);
            };
            spawns.push((name.clone(), Instant::now()));
            let process = process::spawn(&name, path, &[], &spec.task_root, &extension_env, on_line)
                .await
                .map_err(|e| InitFailure::new("Extension.LaunchError", format!("{}: {e}", path.display())))?;
            self.watch_exit(&process);
            self.extensions.push(process);
        }
        // Extensions register before the runtime starts.
        let expected = self.extensions.len();
        let registered = tokio::time::timeout_at(
            deadline,
            self.sandbox.wait_for(|s| {
                if let Some(name) = s.exited.first() {
                    return Some(Err(InitFailure::new(
                        "Extension.Crash",
                        format!("extension {name} exited during init"),
                    )));
                }
                (s.extensions.len() >= expected).then_some(Ok(()))
            }),
        )
        .await;
        match registered {
            Err(_) => return Err(InitFailure::new("Extension.InitTimeout", "extensions did not register in time")),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(())) => {}
        }
        self.sandbox.update(|s| s.accepting_registrations = false);

        let sandbox = Arc::clone(&self.sandbox);
        let label = spec.name.clone();
        let on_line = move |line: &str| {
            eprintln!("[{label}] {line}");
            sandbox.emit_log(&StreamType::Function, line);
        };
        let runtime =
            process::spawn("runtime", &spec.bootstrap, &spec.bootstrap_args, &spec.task_root, &runtime_env, on_line)
                .await
                .map_err(|e| {
                    InitFailure::new("Runtime.InvalidEntrypoint", format!("{}: {e}", spec.bootstrap.display()))
                })?;
        self.watch_exit(&runtime);
        self.runtime = Some(runtime);

        let ready = tokio::time::timeout_at(
            deadline,
            self.sandbox.wait_for(|s| {
                if let Some(error) = &s.init_error {
                    return Some(Err(InitFailure::new("Runtime.InitError", error.clone())));
                }
                if let Some(name) = s.exited.first() {
                    return Some(Err(InitFailure::new("Runtime.ExitError", format!("{name} exited during init"))));
                }
                (s.runtime_waiting && s.extensions.iter().all(|e| e.waiting)).then_some(Ok(()))
            }),
        )
        .await;
        match ready {
            Err(_) => Err(InitFailure::new(INIT_TIMED_OUT, format!("init did not finish within {limit:?}"))),
            Ok(result) => result,
        }
    }

    fn observe_init(&self, started: Instant, spawns: &[(String, Instant)]) {
        let Some(observer) = &self.observer else { return };
        let since = |at: Instant| at.saturating_duration_since(started);
        let extensions = self.sandbox.update(|s| {
            s.extensions
                .iter()
                .map(|e| {
                    let spawned = spawns.iter().find(|(name, _)| *name == e.name).map_or(started, |(_, at)| *at);
                    let pid = self.extensions.iter().find(|p| p.name == e.name).map_or(0, |p| p.pid);
                    ExtensionTimeline {
                        name: e.name.clone(),
                        pid,
                        spawned: since(spawned),
                        registered: since(e.registered_at),
                        subscribed: e.subscribed_at.map(since),
                        ready: e.ready_at.map(since),
                        main_thread: process::scheduled(pid),
                    }
                })
                .collect()
        });
        let _ = observer.send(Observation::Init(InitTimeline {
            function: self.sandbox.spec.name.clone(),
            init: self.init_duration,
            extensions,
            runtime_pid: self.runtime.as_ref().map_or(0, |p| p.pid),
        }));
    }

    fn watch_exit(&self, process: &Process) {
        let sandbox = Arc::clone(&self.sandbox);
        let name = process.name.clone();
        let pid = process.pid;
        tokio::spawn(async move {
            process::exited(pid).await;
            sandbox.update(|s| s.exited.push(name));
        });
    }

    /// Runs one invocation; afterwards the environment is either ready again or unhealthy. As in
    /// Lambda, the caller gets the function's response or error (taken from `respond`) as soon
    /// as the runtime posts it, while the environment stays busy until every extension is done
    /// with the invocation (the post-runtime phase). Returns the outcome when the invoke phase
    /// is over; `respond` is left for failures, which are answered once the environment is gone.
    pub(super) async fn invoke(
        &mut self,
        request: &InvokeRequest,
        respond: &mut Option<oneshot::Sender<InvokeOutcome>>,
    ) -> InvokeOutcome {
        self.thaw();
        let spec = self.sandbox.spec.clone();
        let request_id = http_util::uuid();
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now();
        // After an init retried inside it, the invocation has what the init left of its time.
        let timeout = spec.timeout.saturating_sub(self.init_in_invoke.take().unwrap_or_default());
        let deadline = std::time::SystemTime::now() + timeout;
        let deadline_ms =
            deadline.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let trace_id = request.trace_id.clone().unwrap_or_else(new_trace_id);
        let first = self.invocations == 0;
        self.invocations += 1;
        self.last_used = Instant::now();

        self.sandbox.emit_platform(Platform::Start(Start {
            request_id: request_id.clone(),
            version: Some(spec.version.clone()),
            tracing: Some(TraceContext::amzn_trace_id(&trace_id)),
            other: Map::new(),
        }));
        // The ARN the caller invoked: qualified when it named an alias or a version.
        let invoked_arn = match &request.qualifier {
            Some(qualifier) => format!("{}:{qualifier}", spec.arn),
            None => spec.arn.clone(),
        };
        let invocation = Invocation {
            invoked_arn: invoked_arn.clone(),
            request_id: request_id.clone(),
            deadline_ms,
            payload: Bytes::from(request.payload.clone()),
            trace_id: trace_id.clone(),
            client_context: request.client_context.clone(),
            cognito_identity: request.cognito_identity.clone(),
        };
        let invoke_event = json!({"eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
            "invokedFunctionArn": invoked_arn, "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id}});
        self.sandbox.update(|s| {
            for extension in s.extensions.iter_mut().filter(|e| e.invoke) {
                extension.events.push_back(invoke_event.clone());
                extension.waiting = false;
            }
            s.answer = None;
            s.current = Some(request_id.clone());
            s.runtime_waiting = false;
            s.pending = Some(invocation);
        });

        let timeout_at = tokio::time::Instant::from_std(started + timeout);
        let leaders: Vec<u32> = self.runtime.iter().chain(&self.extensions).map(|p| p.pid).collect();
        let answered = tokio::time::timeout_at(timeout_at, async {
            tokio::select! {
                answer = self.sandbox.wait_for(|s| {
                    if let Some(answer) = s.answer.take() {
                        return Some(Ok(answer));
                    }
                    s.exited.iter().any(|n| n == "runtime").then_some(Err(None))
                }) => answer,
                used = over_memory(&leaders, u64::from(spec.memory_mb)) => Err(Some(used)),
            }
        })
        .await;
        if let Ok(Err(Some(used))) = &answered {
            self.over_memory_mb = *used;
        }
        if let Err(_) | Ok(Err(Some(_))) = &answered {
            // Over its memory or its time, the runtime is stopped at once, as Lambda stops it.
            if let Some(runtime) = &self.runtime {
                process::signal_group(runtime.pid, libc::SIGKILL);
            }
        }
        let answered_at = Instant::now();
        let runtime_ms = duration_ms(answered_at - started);
        let timing = self.sandbox.state.lock().ok().and_then(|mut s| s.answer_timing.take());
        let (status, outcome) = match answered {
            Err(_) => (Status::Timeout, InvokeOutcome::Timeout),
            Ok(Err(None)) => (
                Status::Failure,
                InvokeOutcome::Failed { error_type: "Runtime.ExitError".into(), message: "the runtime exited".into() },
            ),
            Ok(Err(Some(used))) => (
                Status::Error,
                InvokeOutcome::Failed {
                    error_type: OUT_OF_MEMORY.into(),
                    message: format!("the environment used {used} MB of its {} MB", spec.memory_mb),
                },
            ),
            Ok(Ok(RuntimeAnswer::Response(body))) => (Status::Success, InvokeOutcome::Response(body.to_vec())),
            Ok(Ok(RuntimeAnswer::Error { error_type, body })) => {
                (Status::Error, InvokeOutcome::FunctionError { error_type, payload: body.to_vec() })
            }
        };
        if let Some(metrics) = &self.metrics {
            let failed = if matches!(outcome, InvokeOutcome::Response(_)) { 0.0 } else { 1.0 };
            let duration = (answered_at - started).as_secs_f64() * 1000.0;
            for dimensions in lambda_dimensions(&spec, request.qualifier.as_deref()) {
                let dimensions: Vec<(&str, &str)> = dimensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
                metrics.record(Datum::now("AWS/Lambda", "Invocations", &dimensions, "Count", 1.0));
                metrics.record(Datum::now("AWS/Lambda", "Errors", &dimensions, "Count", failed));
                // "Invocation metrics are binary indicators of the outcome": a 0 when not throttled.
                metrics.record(Datum::now("AWS/Lambda", "Throttles", &dimensions, "Count", 0.0));
                metrics.record(Datum::now("AWS/Lambda", "Duration", &dimensions, "Milliseconds", duration));
            }
        }
        let produced = match &outcome {
            InvokeOutcome::Response(body) => body.len(),
            _ => 0,
        };
        self.sandbox.emit_platform(Platform::RuntimeDone(RuntimeDone {
            request_id: request_id.clone(),
            status: Some(status.clone()),
            error_type: outcome.error_type().map(str::to_owned),
            metrics: Some(RuntimeDoneMetrics {
                duration_ms: runtime_ms,
                produced_bytes: Some(produced as u64),
                other: Map::new(),
            }),
            tracing: Some(TraceContext::amzn_trace_id(&trace_id)),
            spans: timing.map(|(received, read)| response_spans(started, started_wall, received, read)),
            other: Map::new(),
        }));

        if matches!(outcome, InvokeOutcome::Response(_) | InvokeOutcome::FunctionError { .. }) {
            if let Some(respond) = respond.take() {
                let _ = respond.send(outcome.clone());
            }
            // The invoke phase ends when the runtime and every INVOKE extension called next.
            let done = tokio::time::timeout_at(
                timeout_at,
                self.sandbox.wait_for(|s| {
                    let extensions_done = s.extensions.iter().filter(|e| e.invoke).all(|e| e.waiting);
                    (s.runtime_waiting && extensions_done).then_some(())
                }),
            )
            .await;
            if done.is_err() {
                self.report(&request_id, Status::Timeout, None, started, first, &trace_id);
                self.healthy = false;
                self.shutdown(ShutdownReason::Timeout).await;
                return outcome;
            }
        }
        self.report(&request_id, status, outcome.error_type(), started, first, &trace_id);
        if let Some(observer) = &self.observer {
            let _ = observer.send(Observation::Invoke(InvokeTimeline {
                function: spec.name.clone(),
                request_id: request_id.clone(),
                runtime: answered_at - started,
                post_runtime: answered_at.elapsed(),
                cold: first,
            }));
        }
        self.sandbox.update(|s| s.current = None);
        match outcome {
            InvokeOutcome::Timeout => {
                self.healthy = false;
                self.shutdown(ShutdownReason::Timeout).await;
            }
            InvokeOutcome::Failed { .. } => {
                self.healthy = false;
                self.shutdown(ShutdownReason::Failure).await;
            }
            _ => self.freeze(),
        }
        self.last_used = Instant::now();
        outcome
    }

    fn report(
        &self,
        request_id: &str,
        status: Status,
        error_type: Option<&str>,
        started: Instant,
        first: bool,
        trace_id: &str,
    ) {
        let spec = &self.sandbox.spec;
        let duration = duration_ms(started.elapsed());
        let memory: u64 = self.runtime.iter().chain(&self.extensions).map(|p| process::peak_memory_mb(p.pid)).sum();
        let memory = memory.max(self.over_memory_mb);
        let report = Report {
            request_id: request_id.to_owned(),
            status: Some(status),
            error_type: error_type.map(str::to_owned),
            metrics: ReportMetrics {
                duration_ms: duration,
                billed_duration_ms: Some(duration.ceil() as u64),
                memory_size_mb: Some(u64::from(spec.memory_mb)),
                max_memory_used_mb: Some(memory),
                init_duration_ms: first.then(|| duration_ms(self.init_duration)),
                restore_duration_ms: None,
                other: Map::new(),
            },
            tracing: Some(TraceContext::amzn_trace_id(trace_id)),
            spans: None,
            other: Map::new(),
        };
        if let Some(observer) = &self.observer {
            let _ =
                observer.send(Observation::Report { function: spec.name.clone(), report: Box::new(report.clone()) });
        }
        self.sandbox.emit_platform(Platform::Report(report));
    }

    /// Shuts the environment down in the phases Lambda documents: with external extensions the
    /// runtime gets SIGTERM and its grace ([`SHUTDOWN_RUNTIME_GRACE`] unless set) to exit, then each extension
    /// its SHUTDOWN event with the phase's deadline ([`SHUTDOWN_WITH_EXTENSIONS`] from its
    /// start); without extensions the runtime is stopped at once. SIGKILL ends whatever is left;
    /// telemetry is delivered until the end.
    pub(super) async fn shutdown(&mut self, reason: ShutdownReason) {
        self.thaw();
        self.healthy = false;
        let started = Instant::now();
        let deadline = started + SHUTDOWN_WITH_EXTENSIONS;
        let deadline_ms = (std::time::SystemTime::now() + SHUTDOWN_WITH_EXTENSIONS)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let with_extensions = self.sandbox.update(|s| !s.extensions.is_empty());
        if let Some(runtime) = &self.runtime {
            if with_extensions {
                process::signal(runtime.pid, libc::SIGTERM);
                let _ = tokio::time::timeout(
                    self.runtime_grace,
                    self.sandbox.wait_for(|s| s.exited.iter().any(|n| n == "runtime").then_some(())),
                )
                .await;
            }
            process::signal_group(runtime.pid, libc::SIGKILL);
        }
        let subscribers: Vec<Arc<Subscriber>> = self.sandbox.subscribers();
        if with_extensions {
            // What the platform and the runtime had to say first (the report of an invocation
            // that timed out or crashed, the runtime's last lines) reaches the subscribers
            // before their SHUTDOWN, within half of the extensions' time.
            let flushing = deadline.saturating_duration_since(Instant::now()) / 2;
            let _ =
                tokio::time::timeout(flushing, futures::future::join_all(subscribers.iter().map(|s| s.flush()))).await;
            let event = json!({"eventType": "SHUTDOWN", "shutdownReason": reason.as_str(), "deadlineMs": deadline_ms});
            self.sandbox.update(|s| {
                for extension in s.extensions.iter_mut().filter(|e| e.shutdown) {
                    extension.events.push_back(event.clone());
                    extension.waiting = false;
                }
            });
            let everyone = self.runtime.iter().chain(&self.extensions).count();
            let _ = tokio::time::timeout_at(
                tokio::time::Instant::from_std(deadline),
                self.sandbox.wait_for(|s| (s.exited.len() >= everyone).then_some(())),
            )
            .await;
        }
        // Nothing the environment started outlives it: each process's whole group goes.
        for process in self.runtime.iter_mut().chain(self.extensions.iter_mut()) {
            process.end().await;
        }
        for subscriber in &subscribers {
            subscriber.close();
        }
        self.server.abort();
    }
}

impl Environment {
    /// Between invocations Lambda freezes the environment: once the runtime and every
    /// extension wait in `next` and nothing is queued, none of its processes (nor anything they
    /// started) gets CPU until the next event. Timers stop; a request in flight completes or
    /// times out on the peer's side only.
    fn freeze(&mut self) {
        if !self.freeze || self.frozen_since.is_some() {
            return;
        }
        for process in self.runtime.iter().chain(&self.extensions) {
            process::signal_group(process.pid, libc::SIGSTOP);
        }
        self.frozen_since = Some(Instant::now());
        if let Some(observer) = &self.observer {
            let _ = observer.send(Observation::Frozen { function: self.sandbox.spec.name.clone() });
        }
    }

    /// Thaws a frozen environment for its next event (an invocation or SHUTDOWN).
    fn thaw(&mut self) {
        let Some(since) = self.frozen_since.take() else { return };
        for process in self.runtime.iter().chain(&self.extensions) {
            process::signal_group(process.pid, libc::SIGCONT);
        }
        if let Some(observer) = &self.observer {
            let _ = observer
                .send(Observation::Thawed { function: self.sandbox.spec.name.clone(), frozen: since.elapsed() });
        }
    }
}

/// Lambda's error type for an environment over its memory size.
const OUT_OF_MEMORY: &str = "Runtime.OutOfMemory";
/// How often the environment's memory is sampled against its limit (its processes' own), and
/// every how many samples what they started is counted too (a scan of /proc).
const MEMORY_SAMPLING: Duration = Duration::from_millis(25);
const MEMORY_WHOLE_GROUPS_EVERY: u32 = 10;

/// How memory sizes are enforced here, for the user to read at start.
pub const MEMORY_ENFORCEMENT: &str = "each environment's memory size is enforced by sampling /proc every 25 ms, \
     not by a cgroup (the machine's cgroups are not books-local's to change): an allocation faster than that \
     can overshoot before Runtime.OutOfMemory ends it";

/// Resolves with the memory used once the environment (every process group of it) is over
/// `limit_mb`. Lambda's limit is the kernel's (a cgroup); the machine's cgroups are not ours to
/// change, so here it is enforced by sampling /proc every [`MEMORY_SAMPLING`]: an allocation
/// faster than that can overshoot before it is seen, never go unnoticed.
async fn over_memory(leaders: &[u32], limit_mb: u64) -> u64 {
    for sample in 1u32.. {
        // The scan of /proc comes last in each round, not first: this starts with every
        // invocation, and a scan at its start cost each one more CPU than the rest of its path
        // in books-local (make bench's profile: reading every process's stat).
        let used = process::groups_rss_mb(leaders, sample % MEMORY_WHOLE_GROUPS_EVERY == 0);
        if used > limit_mb {
            return used;
        }
        tokio::time::sleep(MEMORY_SAMPLING).await;
    }
    unreachable!("sampled until over the limit or cancelled")
}

/// runtimeDone's spans, as Lambda names them: `responseLatency` from the invocation's start to
/// the first of the runtime's answer, `responseDuration` for the answer's transfer.
fn response_spans(
    started: Instant,
    started_wall: std::time::SystemTime,
    received: Instant,
    read: Instant,
) -> Vec<Span> {
    let rfc3339 = |at: std::time::SystemTime| {
        chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let latency = received.saturating_duration_since(started);
    vec![
        Span {
            name: "responseLatency".into(),
            start: rfc3339(started_wall),
            duration_ms: duration_ms(latency),
            other: Map::new(),
        },
        Span {
            name: "responseDuration".into(),
            start: rfc3339(started_wall + latency),
            duration_ms: duration_ms(read.saturating_duration_since(received)),
            other: Map::new(),
        },
    ]
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn new_trace_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let random = http_util::uuid().replace('-', "");
    format!("Root=1-{now:08x}-{};Sampled=0", &random[..24])
}

/// The variables Lambda defines for the runtime, plus the function's own.
pub(super) fn runtime_environment(
    spec: &FunctionSpec,
    settings: &LambdaSettings,
    api: std::net::SocketAddr,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = spec.environment.clone();
    let stream =
        format!("{}/[{}]{}", chrono::Utc::now().format("%Y/%m/%d"), spec.version, http_util::uuid().replace('-', ""));
    let defined = [
        ("_HANDLER", spec.handler.clone()),
        ("AWS_REGION", settings.region.clone()),
        ("AWS_DEFAULT_REGION", settings.region.clone()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", spec.version.clone()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", spec.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("AWS_ACCESS_KEY_ID", settings.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", settings.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN", settings.session_token.clone()),
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("LAMBDA_TASK_ROOT", spec.task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", spec.task_root.display().to_string()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
        ("LD_LIBRARY_PATH", "/lib64:/usr/lib64:/opt/lib".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".to_owned()),
        ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000".to_owned()),
    ];
    env.extend(defined.into_iter().map(|(k, v)| (k.to_owned(), v)));
    if let Some(endpoint) = &settings.aws_endpoint_url {
        env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
    }
    env
}

/// Variables Lambda does not give extensions.
pub const HIDDEN_FROM_EXTENSIONS: [&str; 10] = [
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT",
    "_HANDLER",
];

pub(super) fn extension_environment(runtime: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    runtime
        .iter()
        .filter(|(k, _)| !HIDDEN_FROM_EXTENSIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The dimension sets Lambda publishes an invocation's metrics under: the function; and when
/// the caller named an alias or a version, that resource (`<name>:<qualifier>`); and for an
/// alias, the version that ran (`ExecutedVersion`), which is how a canary's errors are told
/// from the version it replaces.
pub(super) fn lambda_dimensions(spec: &FunctionSpec, qualifier: Option<&str>) -> Vec<Vec<(&'static str, String)>> {
    let mut sets = vec![vec![("FunctionName", spec.name.clone())]];
    if let Some(qualifier) = qualifier {
        let resource = vec![("FunctionName", spec.name.clone()), ("Resource", format!("{}:{qualifier}", spec.name))];
        if qualifier != spec.version {
            let mut executed = resource.clone();
            executed.push(("ExecutedVersion", spec.version.clone()));
            sets.push(resource);
            sets.push(executed);
        } else {
            sets.push(resource);
        }
    }
    sets
}
