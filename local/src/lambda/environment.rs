//! One execution environment: its processes (extensions, then the runtime), its own loopback
//! endpoint serving the Runtime, Extensions and Telemetry APIs, and the lifecycle AWS documents
//! — init, invoke (done when the runtime and every INVOKE extension called next), shutdown.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

use super::observe::{ExtensionTimeline, InitTimeline, InvokeTimeline, Observation, Observer};
use super::process::{self, Process};
use super::telemetry_api::{log_record, platform_record, Stream, Subscriber};
use super::LambdaSettings;
use crate::http_util::{self, HttpClient};
use crate::invoke::{FunctionSpec, InvokeOutcome, InvokeRequest};

pub const INIT_LIMIT: Duration = Duration::from_secs(10);
const SHUTDOWN_WITH_EXTENSIONS: Duration = Duration::from_millis(2_000);
const SHUTDOWN_RUNTIME_ONLY: Duration = Duration::from_millis(500);

/// An invocation handed to the runtime's `next`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline_ms: u64,
    pub payload: Bytes,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// What the runtime posted for the current invocation.
#[derive(Debug, Clone)]
pub enum RuntimeAnswer {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

#[derive(Debug)]
pub struct Extension {
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
pub struct SandboxState {
    pub accepting_registrations: bool,
    pub extensions: Vec<Extension>,
    pub runtime_waiting: bool,
    pub pending: Option<Invocation>,
    pub current: Option<String>,
    pub answer: Option<RuntimeAnswer>,
    pub init_error: Option<String>,
    pub exit_errors: Vec<String>,
    pub exited: Vec<String>,
}

/// A record kept from the init phase, replayed to extensions that subscribe during init (they
/// cannot subscribe before `platform.initStart` has happened).
#[derive(Debug, Clone)]
enum Backlog {
    Platform(Value),
    Log(Stream, String),
}

pub struct Sandbox {
    pub spec: FunctionSpec,
    pub state: Mutex<SandboxState>,
    changed: Notify,
    pub subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Telemetry of the init phase; `None` once init is over.
    backlog: Mutex<Option<Vec<Backlog>>>,
    pub client: HttpClient,
}

impl Sandbox {
    pub fn update<T>(&self, change: impl FnOnce(&mut SandboxState) -> T) -> T {
        let result = match self.state.lock() {
            Ok(mut state) => change(&mut state),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        };
        self.changed.notify_waiters();
        result
    }

    /// Waits until `check` yields a value; it runs under the lock after every change.
    pub async fn wait_for<T>(&self, mut check: impl FnMut(&mut SandboxState) -> Option<T>) -> T {
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
    fn emit(&self, stream: Stream, record: impl Fn(bool) -> Value) {
        let Ok(subscribers) = self.subscribers.lock() else { return };
        for subscriber in subscribers.iter().filter(|s| s.wants(stream)) {
            subscriber.push(record(subscriber.subscription.structured_records()));
        }
    }

    pub fn emit_platform(&self, kind: &str, record: Value) {
        let record = platform_record(kind, record);
        if let Ok(mut backlog) = self.backlog.lock() {
            if let Some(backlog) = backlog.as_mut() {
                backlog.push(Backlog::Platform(record.clone()));
            }
        }
        self.emit(Stream::Platform, |_| record.clone());
    }

    /// A line a process wrote, as a `function` or `extension` record.
    pub fn emit_log(&self, stream: Stream, line: &str) {
        if let Ok(mut backlog) = self.backlog.lock() {
            if let Some(backlog) = backlog.as_mut() {
                backlog.push(Backlog::Log(stream, line.to_owned()));
            }
        }
        self.emit(stream, |structured| log_record(stream, line, structured));
    }

    /// Adds a subscriber and replays the init phase's records it asked for.
    pub fn subscribe(&self, subscriber: Arc<Subscriber>) {
        if let Ok(backlog) = self.backlog.lock() {
            for record in backlog.iter().flatten() {
                match record {
                    Backlog::Platform(value) if subscriber.wants(Stream::Platform) => subscriber.push(value.clone()),
                    Backlog::Log(stream, line) if subscriber.wants(*stream) => {
                        subscriber.push(log_record(*stream, line, subscriber.subscription.structured_records()))
                    }
                    _ => {}
                }
            }
        }
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.push(subscriber);
        }
    }

    fn end_backlog(&self) {
        if let Ok(mut backlog) = self.backlog.lock() {
            *backlog = None;
        }
    }
}

/// Why an environment is shut down (the `shutdownReason` of the SHUTDOWN event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    Spindown,
    Timeout,
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

pub struct Environment {
    pub sandbox: Arc<Sandbox>,
    pub api_address: std::net::SocketAddr,
    runtime: Option<Process>,
    extensions: Vec<Process>,
    server: tokio::task::JoinHandle<()>,
    pub init_duration: Duration,
    pub invocations: u64,
    pub last_used: Instant,
    pub healthy: bool,
    observer: Option<Observer>,
}

impl Environment {
    /// Starts the API endpoint and the processes, and runs the init phase.
    pub async fn init(spec: &FunctionSpec, settings: &LambdaSettings) -> Result<Self, (String, String)> {
        let started = Instant::now();
        let sandbox = Arc::new(Sandbox {
            spec: spec.clone(),
            state: Mutex::new(SandboxState { accepting_registrations: true, ..Default::default() }),
            changed: Notify::new(),
            subscribers: Mutex::new(Vec::new()),
            backlog: Mutex::new(Some(Vec::new())),
            client: http_util::client(),
        });
        let listener =
            TcpListener::bind("127.0.0.1:0").await.map_err(|e| ("Runtime.ApiError".into(), e.to_string()))?;
        let api_address = listener.local_addr().map_err(|e| ("Runtime.ApiError".into(), e.to_string()))?;
        let server = tokio::spawn(serve(listener, Arc::clone(&sandbox)));
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
        };
        sandbox.emit_platform(
            "platform.initStart",
            json!({"initializationType": "on-demand", "phase": "init", "functionName": spec.name,
                   "functionVersion": spec.version, "runtimeVersion": "provided:al2023",
                   "instanceId": http_util::uuid(), "instanceMaxMemory": spec.memory_mb as u64 * 1024 * 1024}),
        );
        let mut spawns = Vec::new();
        match environment.run_init(settings, started, &mut spawns).await {
            Ok(()) => {
                environment.init_duration = started.elapsed();
                environment.observe_init(started, &spawns);
                let ms = duration_ms(environment.init_duration);
                sandbox.emit_platform(
                    "platform.initRuntimeDone",
                    json!({"initializationType": "on-demand", "phase": "init", "status": "success"}),
                );
                sandbox.emit_platform(
                    "platform.initReport",
                    json!({"initializationType": "on-demand", "phase": "init", "status": "success",
                           "metrics": {"durationMs": ms}}),
                );
                sandbox.end_backlog();
                Ok(environment)
            }
            Err((error_type, message)) => {
                sandbox.emit_platform(
                    "platform.initRuntimeDone",
                    json!({"initializationType": "on-demand", "phase": "init", "status": "failure", "errorType": error_type}),
                );
                sandbox.emit_platform(
                    "platform.initReport",
                    json!({"initializationType": "on-demand", "phase": "init", "status": "failure", "errorType": error_type,
                           "metrics": {"durationMs": duration_ms(started.elapsed())}}),
                );
                environment.shutdown(ShutdownReason::Failure).await;
                Err((error_type, message))
            }
        }
    }

    /// Runs the init phase; `spawns` gets each extension's name and start time.
    async fn run_init(
        &mut self,
        settings: &LambdaSettings,
        started: Instant,
        spawns: &mut Vec<(String, Instant)>,
    ) -> Result<(), (String, String)> {
        let sandbox_ref = Arc::clone(&self.sandbox);
        let spec = &sandbox_ref.spec;
        let deadline = tokio::time::Instant::from_std(started + INIT_LIMIT);
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
                sandbox.emit_log(Stream::Extension, line);
            };
            spawns.push((name.clone(), Instant::now()));
            let process = process::spawn(&name, path, &[], &spec.task_root, &extension_env, on_line)
                .map_err(|e| ("Extension.LaunchError".to_owned(), format!("{}: {e}", path.display())))?;
            self.watch_exit(&process);
            self.extensions.push(process);
        }
        // Extensions register before the runtime starts.
        let expected = self.extensions.len();
        let registered = tokio::time::timeout_at(
            deadline,
            self.sandbox.wait_for(|s| {
                if let Some(name) = s.exited.first() {
                    return Some(Err(("Extension.Crash".to_owned(), format!("extension {name} exited during init"))));
                }
                (s.extensions.len() >= expected).then_some(Ok(()))
            }),
        )
        .await;
        match registered {
            Err(_) => return Err(("Extension.InitTimeout".into(), "extensions did not register in time".into())),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(())) => {}
        }
        self.sandbox.update(|s| s.accepting_registrations = false);

        let sandbox = Arc::clone(&self.sandbox);
        let label = spec.name.clone();
        let on_line = move |line: &str| {
            eprintln!("[{label}] {line}");
            sandbox.emit_log(Stream::Function, line);
        };
        let runtime =
            process::spawn("runtime", &spec.bootstrap, &spec.bootstrap_args, &spec.task_root, &runtime_env, on_line)
                .map_err(|e| ("Runtime.InvalidEntrypoint".to_owned(), format!("{}: {e}", spec.bootstrap.display())))?;
        self.watch_exit(&runtime);
        self.runtime = Some(runtime);

        let ready = tokio::time::timeout_at(
            deadline,
            self.sandbox.wait_for(|s| {
                if let Some(error) = &s.init_error {
                    return Some(Err(("Runtime.InitError".to_owned(), error.clone())));
                }
                if let Some(name) = s.exited.first() {
                    return Some(Err(("Runtime.ExitError".to_owned(), format!("{name} exited during init"))));
                }
                (s.runtime_waiting && s.extensions.iter().all(|e| e.waiting)).then_some(Ok(()))
            }),
        )
        .await;
        match ready {
            Err(_) => Err(("Sandbox.Timedout".into(), format!("init did not finish within {INIT_LIMIT:?}"))),
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
            // Poll for exit without taking the child (shutdown may still signal it).
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let alive = std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
                if !alive {
                    sandbox.update(|s| s.exited.push(name.clone()));
                    return;
                }
            }
        });
    }

    /// Runs one invocation; afterwards the environment is either ready again or unhealthy. As in
    /// Lambda, the caller gets the function's response or error (taken from `respond`) as soon
    /// as the runtime posts it, while the environment stays busy until every extension is done
    /// with the invocation (the post-runtime phase). Returns the outcome when the invoke phase
    /// is over; `respond` is left for failures, which are answered once the environment is gone.
    pub async fn invoke(
        &mut self,
        request: &InvokeRequest,
        respond: &mut Option<oneshot::Sender<InvokeOutcome>>,
    ) -> InvokeOutcome {
        let spec = self.sandbox.spec.clone();
        let request_id = http_util::uuid();
        let started = Instant::now();
        let deadline = std::time::SystemTime::now() + spec.timeout;
        let deadline_ms =
            deadline.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let trace_id = request.trace_id.clone().unwrap_or_else(new_trace_id);
        let first = self.invocations == 0;
        self.invocations += 1;
        self.last_used = Instant::now();

        self.sandbox.emit_platform(
            "platform.start",
            json!({"requestId": request_id, "version": spec.version,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id}}),
        );
        let invocation = Invocation {
            request_id: request_id.clone(),
            deadline_ms,
            payload: Bytes::from(request.payload.clone()),
            trace_id: trace_id.clone(),
            client_context: request.client_context.clone(),
            cognito_identity: request.cognito_identity.clone(),
        };
        let invoke_event = json!({"eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
            "invokedFunctionArn": spec.arn, "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id}});
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

        let timeout_at = tokio::time::Instant::from_std(started + spec.timeout);
        let answered = tokio::time::timeout_at(
            timeout_at,
            self.sandbox.wait_for(|s| {
                if let Some(answer) = s.answer.take() {
                    return Some(Ok(answer));
                }
                s.exited.iter().any(|n| n == "runtime").then_some(Err(()))
            }),
        )
        .await;
        let answered_at = Instant::now();
        let runtime_ms = duration_ms(answered_at - started);
        let (status, outcome) = match answered {
            Err(_) => ("timeout", InvokeOutcome::Timeout),
            Ok(Err(())) => (
                "failure",
                InvokeOutcome::Failed { error_type: "Runtime.ExitError".into(), message: "the runtime exited".into() },
            ),
            Ok(Ok(RuntimeAnswer::Response(body))) => ("success", InvokeOutcome::Response(body.to_vec())),
            Ok(Ok(RuntimeAnswer::Error { error_type, body })) => {
                ("error", InvokeOutcome::FunctionError { error_type, payload: body.to_vec() })
            }
        };
        let produced = match &outcome {
            InvokeOutcome::Response(body) => body.len(),
            _ => 0,
        };
        self.sandbox.emit_platform(
            "platform.runtimeDone",
            json!({"requestId": request_id, "status": status,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
            "metrics": {"durationMs": runtime_ms, "producedBytes": produced}}),
        );

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
                self.report(&request_id, "timeout", started, first, &trace_id);
                self.healthy = false;
                self.shutdown(ShutdownReason::Timeout).await;
                return outcome;
            }
        }
        self.report(&request_id, status, started, first, &trace_id);
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
            _ => {}
        }
        self.last_used = Instant::now();
        outcome
    }

    fn report(&self, request_id: &str, status: &str, started: Instant, first: bool, trace_id: &str) {
        let spec = &self.sandbox.spec;
        let duration = duration_ms(started.elapsed());
        let memory: u64 = self.runtime.iter().chain(&self.extensions).map(|p| process::peak_memory_mb(p.pid)).sum();
        let mut metrics = json!({"durationMs": duration, "billedDurationMs": duration.ceil() as u64,
            "memorySizeMB": spec.memory_mb, "maxMemoryUsedMB": memory});
        if first {
            metrics["initDurationMs"] = json!(duration_ms(self.init_duration));
        }
        self.sandbox.emit_platform(
            "platform.report",
            json!({"requestId": request_id, "status": status,
            "metrics": metrics, "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id}}),
        );
    }

    /// Shuts the environment down: runtime SIGTERM, SHUTDOWN events to extensions, SIGKILL at
    /// the deadline; telemetry is delivered until the end.
    pub async fn shutdown(&mut self, reason: ShutdownReason) {
        self.healthy = false;
        let limit = if self.extensions.is_empty() { SHUTDOWN_RUNTIME_ONLY } else { SHUTDOWN_WITH_EXTENSIONS };
        let deadline = Instant::now() + limit;
        let deadline_ms = (std::time::SystemTime::now() + limit)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        if let Some(runtime) = &self.runtime {
            process::signal(runtime.pid, libc::SIGTERM);
        }
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
        for process in self.runtime.iter_mut().chain(self.extensions.iter_mut()) {
            let _ = process.child.start_kill();
            let _ = process.child.wait().await;
        }
        let subscribers: Vec<Arc<Subscriber>> = self.sandbox.subscribers.lock().map(|s| s.clone()).unwrap_or_default();
        for subscriber in &subscribers {
            subscriber.close();
        }
        self.server.abort();
    }
}

fn duration_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

fn new_trace_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let random = http_util::uuid().replace('-', "");
    format!("Root=1-{now:08x}-{};Sampled=0", &random[..24])
}

/// The variables Lambda defines for the runtime, plus the function's own.
pub fn runtime_environment(
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

pub fn extension_environment(runtime: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    runtime
        .iter()
        .filter(|(k, _)| !HIDDEN_FROM_EXTENSIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn serve(listener: TcpListener, sandbox: Arc<Sandbox>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let sandbox = Arc::clone(&sandbox);
        tokio::spawn(async move {
            let service = service_fn(move |req| super::route(Arc::clone(&sandbox), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
