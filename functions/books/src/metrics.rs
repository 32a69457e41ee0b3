//! The custom metrics the functions emit, in one list: the names, units and dimensions that
//! dashboards and alarms are checked against. Dimensions stay low-cardinality by construction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use metrics::Unit;

pub(crate) const BOOKS_CREATED: &str = "BooksCreated";
pub(crate) const BOOKS_UPDATED: &str = "BooksUpdated";
pub(crate) const BOOKS_DELETED: &str = "BooksDeleted";
pub(crate) const CONCURRENCY_CONFLICTS: &str = "ConcurrencyConflicts";
pub(crate) const ISBN_CONFLICTS: &str = "IsbnConflicts";
pub(crate) const VALIDATION_ERRORS: &str = "ValidationErrors";
pub(crate) const IDEMPOTENT_REPLAYS: &str = "IdempotentReplays";
pub(crate) const SERVER_ERRORS: &str = "ServerErrors";
pub(crate) const REQUEST_LATENCY: &str = "RequestLatency";
pub(crate) const DYNAMODB_LATENCY: &str = "DynamoDbLatency";
pub(crate) const EVENTS_PROJECTED: &str = "EventsProjected";
pub(crate) const PROJECTION_FAILURES: &str = "ProjectionFailures";
pub(crate) const PROJECTION_LAG: &str = "ProjectionLag";

/// The dimension every metric carries (set once per process from `BOOKS_SERVICE`).
pub const SERVICE: &str = "Service";
/// The bounded per-metric dimension: an API operation or a DynamoDB API name.
pub const OPERATION: &str = "Operation";

/// One metric the functions emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The CloudWatch metric name.
    pub name: &'static str,
    /// Milliseconds makes it a histogram, anything else a counter (see [`describe`]).
    pub unit: Unit,
    /// Dimension names, `Service` first.
    pub dimensions: &'static [&'static str],
    /// What one count or one value is.
    pub description: &'static str,
}

const S: &[&str] = &[SERVICE];
const SO: &[&str] = &[SERVICE, OPERATION];

/// Every custom metric of the functions.
pub const ALL: [MetricDef; 13] = [
    MetricDef { name: BOOKS_CREATED, unit: Unit::Count, dimensions: S, description: "books created" },
    MetricDef { name: BOOKS_UPDATED, unit: Unit::Count, dimensions: S, description: "books replaced" },
    MetricDef { name: BOOKS_DELETED, unit: Unit::Count, dimensions: S, description: "books deleted" },
    MetricDef {
        name: CONCURRENCY_CONFLICTS,
        unit: Unit::Count,
        dimensions: S,
        description: "writes refused with 412 because If-Match was stale",
    },
    MetricDef {
        name: ISBN_CONFLICTS,
        unit: Unit::Count,
        dimensions: S,
        description: "writes refused for a taken ISBN",
    },
    MetricDef { name: VALIDATION_ERRORS, unit: Unit::Count, dimensions: S, description: "requests refused with 400" },
    MetricDef {
        name: IDEMPOTENT_REPLAYS,
        unit: Unit::Count,
        dimensions: S,
        description: "creates answered from the idempotency record",
    },
    MetricDef { name: SERVER_ERRORS, unit: Unit::Count, dimensions: SO, description: "requests answered with 5xx" },
    MetricDef {
        name: REQUEST_LATENCY,
        unit: Unit::Milliseconds,
        dimensions: SO,
        description: "time to answer a request",
    },
    MetricDef {
        name: DYNAMODB_LATENCY,
        unit: Unit::Milliseconds,
        dimensions: SO,
        description: "time of one DynamoDB call, by API",
    },
    MetricDef {
        name: EVENTS_PROJECTED,
        unit: Unit::Count,
        dimensions: S,
        description: "book stream records applied to the view",
    },
    MetricDef {
        name: PROJECTION_FAILURES,
        unit: Unit::Count,
        dimensions: S,
        description: "stream records reported as batch item failures",
    },
    MetricDef {
        name: PROJECTION_LAG,
        unit: Unit::Milliseconds,
        dimensions: S,
        description: "age of a stream record when the projector applied it",
    },
];

/// Registers units and descriptions with the recorder (EMF needs the unit per metric).
pub fn describe() {
    for def in ALL {
        match def.unit {
            Unit::Milliseconds => metrics::describe_histogram!(def.name, def.unit, def.description),
            _ => metrics::describe_counter!(def.name, def.unit, def.description),
        }
    }
}

/// Histogram values recorded since the last flush, across every histogram: an upper bound of
/// what any one histogram holds.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Flushes the collector before it fills: installed once per process by [`flush_early`].
static EARLY_FLUSH: OnceLock<Box<dyn Fn() + Send + Sync>> = OnceLock::new();
/// The collector keeps at most 100 values of a histogram between flushes (EMF's limit for one
/// metric of a document) and drops the rest with an error line. Flushing at half of that leaves
/// room for the values other tasks record while the flush runs.
const FLUSH_AT: usize = 50;

/// Makes `flush` run whenever [`FLUSH_AT`] histogram values are pending, so that an invocation
/// recording more than a document holds (a projector batch: one lag per record, one latency per
/// write) emits several EMF documents instead of losing values. metrics_cloudwatch_embedded
/// flushes only when an invocation ends and offers no hook for this, hence this counter in
/// front of it. Returns false if a flush was installed already.
pub fn flush_early(flush: impl Fn() + Send + Sync + 'static) -> bool {
    EARLY_FLUSH.set(Box::new(flush)).is_ok()
}

/// Called as an invocation starts: the previous invocation's values were flushed when it ended.
pub(crate) fn invocation_started() {
    PENDING.store(0, Ordering::Relaxed);
}

/// Records one value in milliseconds, then flushes if enough are pending that the collector
/// could fill up. Every histogram of the functions is recorded through here (clippy.toml).
#[allow(clippy::disallowed_methods)] // the funnel itself
pub(crate) fn record_ms(histogram: &metrics::Histogram, value_ms: f64) {
    histogram.record(value_ms);
    // Of the tasks that cross the mark together, the one that takes the count flushes.
    if PENDING.fetch_add(1, Ordering::Relaxed) + 1 >= FLUSH_AT && PENDING.swap(0, Ordering::Relaxed) >= FLUSH_AT {
        if let Some(flush) = EARLY_FLUSH.get() {
            flush();
        }
    }
}

/// The API operations, the values of the `Operation` dimension of request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    CreateBook,
    GetBook,
    ListBooks,
    ReplaceBook,
    DeleteBook,
    Unrouted,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::CreateBook => "CreateBook",
            Self::GetBook => "GetBook",
            Self::ListBooks => "ListBooks",
            Self::ReplaceBook => "ReplaceBook",
            Self::DeleteBook => "DeleteBook",
            Self::Unrouted => "Unrouted",
        }
    }
}

/// Times DynamoDB calls into `DynamoDbLatency{Operation=<api>}`: `client.get_item()….send().timed("GetItem")`.
pub(crate) trait Timed: std::future::Future + Sized {
    async fn timed(self, api: &'static str) -> Self::Output {
        let started = std::time::Instant::now();
        let result = self.await;
        record_ms(&metrics::histogram!(DYNAMODB_LATENCY, OPERATION => api), started.elapsed().as_secs_f64() * 1000.0);
        result
    }
}

impl<F: std::future::Future> Timed for F {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dimensions_bounded() {
        let mut names: Vec<&str> = ALL.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.iter().all(|d| d.dimensions.first() == Some(&SERVICE) && d.dimensions.len() <= 2));
    }
}
