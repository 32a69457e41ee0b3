//! `books-telemetry`: an external Lambda extension that takes the function's logs, EMF metrics
//! and the platform's telemetry from the Telemetry API and ships them to CloudWatch Logs,
//! buffered, bounded and without adding latency to responses.
//!
//! The data path reads top to bottom in the module tree, one named type per stage:
//! `lifecycle` (register, subscribe, lifecycle events) → `telemetry` (listener; each delivery
//! read once into [`telemetry_schema::Record`]s) → `pipeline`, which sends a function's
//! [`telemetry_schema::LogLine`] through `enrich` into the byte-capped `buffer` as a
//! [`LogEvent`], merges EMF documents and the platform metrics of each
//! [`telemetry_schema::Report`] into the `emf` aggregator → `ship` (`PutLogEvents` batches),
//! with `flush` deciding when. `config` is the bottom; nothing depends on `lifecycle`.
//!
//! The public items are what the binary, the integration tests and the benchmark drive.

mod buffer;
mod config;
mod emf;
mod enrich;
mod flush;
mod lifecycle;
mod pipeline;
mod ship;
mod telemetry;

pub use buffer::{EventKind, LogEvent, EVENT_OVERHEAD_BYTES};
pub use config::{Config, ConfigError, Strategy, VARIABLES};
pub use emf::{
    MetricDef, BILLED_DURATION, COLD_START, DURATION, ERRORS, INIT_DURATION, LOGS_DROPPED, MAX_MEMORY_USED,
    MEMORY_UTILIZATION, PLATFORM_METRICS, POST_RUNTIME_DURATION, SERVICE_DIMENSION, TIMEOUTS,
};
pub use flush::{FlushReport, Flusher, END_FLUSH_BUDGET, TELEMETRY_SILENCE_LIMIT};
pub use lifecycle::{run, run_disabled, Error};
pub use pipeline::{now_ms, Backlog, Outgoing, Pipeline, Progress};
pub use ship::{batch, Refusal, Shipment, Shipper};
