//! Logs and metrics set-up shared by the functions: one JSON object per line on stdout with
//! `request_id`, `cold_start` and `service` at the top level, and EMF metrics flushed to stdout
//! once per invocation (and before that whenever a histogram could overflow a document).
//! Lambda hands both to the Telemetry API, where `books-telemetry` reads them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;
use metrics_cloudwatch_embedded::lambda::MetricsLayer;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::vars;

/// Default EMF namespace; `BOOKS_TELEMETRY_NAMESPACE` overrides it.
pub const DEFAULT_NAMESPACE: &str = "Books";

/// The service name from `BOOKS_SERVICE`, else the given default (the binary's role).
pub fn service_name(default: &str) -> String {
    std::env::var(vars::BOOKS_SERVICE).ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Installs the JSON log subscriber and the EMF metrics recorder, and returns the layers to
/// put around the function's handler: `runtime.layer(metrics).layer(invocations)`.
pub fn init(service: &str) -> Result<(MetricsLayer, InvocationLayer), metrics_cloudwatch_embedded::Error> {
    let filter = EnvFilter::try_from_env(vars::BOOKS_LOG).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines::new(service))
        .with_writer(std::io::stdout)
        .init();
    let namespace = std::env::var("BOOKS_TELEMETRY_NAMESPACE").unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension(crate::metrics::SERVICE, service.to_owned())
        .with_lambda_request_id("request_id")
        .with_lambda_xray_trace_id("trace_id")
        .init()?;
    crate::metrics::describe();
    // One lock for the whole flush: its documents are written in pieces, which log lines of
    // other tasks must not split.
    crate::metrics::flush_early(move || {
        let flushed = collector.flush(std::io::stdout().lock());
        if let Err(err) = flushed {
            tracing::warn!(error = %err, "metrics could not be flushed early");
        }
    });
    Ok((MetricsLayer::new(collector), InvocationLayer))
}

/// A subscriber for tests: the same format, written to `writer`.
pub fn test_subscriber<W>(service: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("debug"))
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines::new(service))
        .with_writer(writer)
        .finish()
}

/// The line format of the observability contract. tracing-subscriber's own JSON format nests
/// span fields under `span`/`spans`; the contract wants them at the top level, so this small
/// formatter merges them (inner spans win, event fields win over span fields).
pub(crate) struct JsonLines {
    service: String,
}

impl JsonLines {
    pub(crate) fn new(service: &str) -> Self {
        Self { service: service.to_owned() }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(crate::domain::timestamp(chrono::Utc::now())));
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("target".into(), Value::String(event.metadata().target().to_owned()));
        line.insert("service".into(), Value::String(self.service.clone()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.fields.as_str()) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), serde_json::json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

/// Whether the next invocation is this process's first (a cold start).
static COLD: AtomicBool = AtomicBool::new(true);

/// Runs every invocation inside an `invocation` span carrying `request_id`, `cold_start` and
/// the X-Ray trace id, so every log line of the invocation has them.
#[derive(Clone, Copy)]
pub struct InvocationLayer;

impl<S> Layer<S> for InvocationLayer {
    type Service = InvocationService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        InvocationService { inner }
    }
}

/// The handler wrapped by [`InvocationLayer`].
pub struct InvocationService<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for InvocationService<S>
where
    S: Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let cold_start = COLD.swap(false, Ordering::Relaxed);
        crate::metrics::invocation_started();
        let context = &invocation.context;
        let span = tracing::info_span!(
            "invocation",
            request_id = %context.request_id,
            cold_start,
            trace_id = context.xray_trace_id.as_deref().unwrap_or_default(),
        );
        self.inner.call(invocation).instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn lines_are_json_objects_with_the_contract_fields_at_the_top() {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(test_subscriber("command", buffer.clone()), || {
            let span = tracing::info_span!("invocation", request_id = "req-1", cold_start = true);
            let _entered = span.enter();
            tracing::info!(book_id = "01J", attempts = 2, "book created");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line["message"], "book created");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "books::telemetry::tests");
        assert_eq!(line["service"], "command");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["cold_start"], true);
        assert_eq!(line["book_id"], "01J");
        assert_eq!(line["attempts"], 2);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
