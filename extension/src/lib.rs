//! `books-telemetry`: an external Lambda extension that takes the function's logs, EMF metrics
//! and the platform's telemetry from the Telemetry API and ships them to CloudWatch Logs,
//! buffered, bounded and without adding latency to responses.
//!
//! The data path reads top to bottom: [`lifecycle`] (register, subscribe, events) →
//! [`telemetry`] (listener, records) → [`pipeline`] (enrichment, platform metrics) →
//! [`buffer`] (byte-capped) → [`emf`] (aggregation) → [`ship`] (batches, CloudWatch Logs),
//! with [`flush`] deciding when. Start with `lifecycle::run`.

pub mod buffer;
pub mod config;
pub mod emf;
pub mod flush;
pub mod lifecycle;
pub mod pipeline;
pub mod ship;
pub mod telemetry;
