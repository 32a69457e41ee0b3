//! What the emulated platform sees of each environment, as timelines: when the extensions
//! registered, subscribed and became ready during init, and how long each invocation kept the
//! runtime and then the extensions busy (Lambda's `PostRuntimeExtensionsDuration`), and each
//! invocation's `platform.report`. The benchmark and `books-local invoke` read them; nothing in
//! the emulator depends on anyone listening.

use std::time::Duration;

/// Where the emulator sends its observations (see [`crate::lambda::LambdaSettings::observer`]).
pub(crate) type Observer = tokio::sync::mpsc::UnboundedSender<Observation>;

/// One observation of the platform.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// An init phase ended.
    Init(InitTimeline),
    /// An invocation ended (its post-runtime phase included).
    Invoke(InvokeTimeline),
    /// An environment was frozen after its invocation (every process stopped).
    Frozen {
        /// The function.
        function: String,
    },
    /// An invocation's `platform.report`, as the Telemetry API delivers it.
    Report {
        /// The function.
        function: String,
        /// The record (boxed: it is much larger than the other observations).
        report: Box<telemetry_schema::Report>,
    },
    /// A frozen environment was thawed for its next event.
    Thawed {
        /// The function.
        function: String,
        /// How long it stayed frozen.
        frozen: Duration,
    },
}

/// One successful init phase; every offset counts from the environment's creation.
#[derive(Debug, Clone, PartialEq)]
pub struct InitTimeline {
    /// The function.
    pub function: String,
    /// Creation until the runtime and every extension waited in `next` (`InitDuration`).
    pub init: Duration,
    /// Each extension's steps.
    pub extensions: Vec<ExtensionTimeline>,
    /// The runtime's process id.
    pub runtime_pid: u32,
}

/// One extension's init steps, as offsets from the environment's creation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionTimeline {
    /// Its name (the file in `/opt/extensions`).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// When its process started.
    pub spawned: Duration,
    /// When it registered with the Extensions API.
    pub registered: Duration,
    /// Its Telemetry API subscription, if it made one.
    pub subscribed: Option<Duration>,
    /// Its first `event/next`: done with its own init.
    pub ready: Option<Duration>,
    /// Its main thread's time on a CPU and waiting for one, up to the end of the init phase
    /// (parked in `next` once ready): what its init cost, and what other processes' init cost it.
    pub main_thread: Option<Scheduled>,
}

/// The scheduler's account of a thread: time it ran, and time it was runnable but waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// On a CPU.
    pub on_cpu: Duration,
    /// Runnable, waiting in a run queue for a CPU.
    pub runqueue: Duration,
}

impl ExtensionTimeline {
    /// From its start until it was registered, subscribed (if it subscribes) and waiting.
    pub fn ready_after_spawn(&self) -> Option<Duration> {
        let last = self.ready?.max(self.subscribed.unwrap_or_default());
        Some(last.saturating_sub(self.spawned))
    }
}

/// One invocation that reached the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeTimeline {
    /// The function.
    pub(crate) function: String,
    /// The invocation.
    pub request_id: String,
    /// Invoke until the runtime posted its response or error.
    pub runtime: Duration,
    /// The runtime's answer until the runtime and every INVOKE extension waited in `next`.
    pub post_runtime: Duration,
    /// Whether it followed the environment's init.
    pub cold: bool,
}
