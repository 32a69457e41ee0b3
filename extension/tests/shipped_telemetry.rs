//! What books-telemetry shipped from a whole local cloud, checked after `scripts/e2e-local` ran
//! the end-to-end suite and a burst and stopped the cloud at once (every extension got SHUTDOWN
//! and had to flush):
//!
//! - every line a function wrote (books-local echoes them as `[<function>] <line>` in its log)
//!   is in the function's log group exactly once, with its own fields intact and enriched;
//! - every line the extension wrote on stderr too (`[<function>/books-telemetry] <line>`),
//!   marked `source: extension`;
//! - every EMF value the functions wrote is there, aggregated, and nothing else was invented;
//! - every invoked function has every platform metric the extension derives
//!   ([`books_telemetry::PLATFORM_METRICS`]), one value per invocation where that is the rule.
//!
//! Ignored by a plain `cargo test`: `scripts/e2e-local` runs it with `--ignored`, giving it the
//! cloud's log in `BOOKS_LOCAL_LOG` and the local endpoint (`books-local up --linger` keeps it).

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use books_telemetry::{PLATFORM_METRICS, SERVICE_DIMENSION};
use serde_json::{Map, Value};
use telemetry_schema::emf::{Dimensions, Document};

/// Fields the extension adds to every line that does not carry them.
const ENRICHMENT: [&str; 3] = ["cold_start", "function_name", "function_version"];
/// The platform metrics' namespace in the local cloud (Terraform's default).
const NAMESPACE: &str = "Books";

type MetricKey = (String, Dimensions, String);

/// A line as the extension must ship it: a JSON object stays one, text becomes `{message}`.
fn as_structured(line: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => object,
        _ => Map::from_iter([("message".to_owned(), Value::String(line.trim_end().to_owned()))]),
    }
}

/// Every value of every metric of an EMF document, per dimension set.
fn emf_values(document: &Map<String, Value>) -> Vec<(MetricKey, f64)> {
    let document = Document::read(document).unwrap_or_else(|e| panic!("invalid EMF ({e}): {document:?}"));
    let mut values = Vec::new();
    for metric in document.metrics {
        for dimensions in &metric.dimension_sets {
            for value in &metric.values {
                values.push(((metric.namespace.clone(), dimensions.clone(), metric.name.clone()), *value));
            }
        }
    }
    values
}

/// Lines books-local echoed as `[<function>] line` (`extension: None`) or
/// `[<function>/<extension>] line`.
fn echoed_lines(log: &str, extension: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    for raw in log.lines() {
        let Some((label, line)) = raw.strip_prefix('[').and_then(|rest| rest.split_once("] ")) else { continue };
        let (function, source) = match label.split_once('/') {
            Some((function, source)) => (function, Some(source)),
            None => (label, None),
        };
        if source == extension && !function.contains(' ') {
            lines.entry(function.to_owned()).or_default().push(line.to_owned());
        }
    }
    lines
}

/// Removes and returns the shipped event holding every field of `original`, if any.
fn take_match(
    shipped: &mut HashMap<Value, Vec<Map<String, Value>>>,
    original: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let candidates = shipped.get_mut(original.get("message").unwrap_or(&Value::Null))?;
    let index = candidates.iter().position(|event| original.iter().all(|(k, v)| event.get(k) == Some(v)))?;
    Some(candidates.remove(index))
}

async fn shipped_messages(logs: &LogsClient, group: &str) -> Vec<String> {
    books_testkit::logs::group_messages(logs, group).await.unwrap_or_else(|e| panic!("reading {group}: {e:?}"))
}

/// Checks one function; returns what is wrong.
fn check_function(name: &str, written: &[String], extension_written: &[String], shipped: &[String]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut logs_shipped: HashMap<Value, Vec<Map<String, Value>>> = HashMap::new();
    let mut extension_shipped: HashMap<Value, Vec<Map<String, Value>>> = HashMap::new();
    let mut metrics_shipped: BTreeMap<MetricKey, Vec<f64>> = BTreeMap::new();
    for message in shipped {
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(message) else {
            failures.push(format!("{name}: a shipped event is not a JSON object: {message:.200}"));
            continue;
        };
        if telemetry_schema::emf::is_document(&event) {
            for (key, value) in emf_values(&event) {
                metrics_shipped.entry(key).or_default().push(value);
            }
        } else if event.get("source").and_then(Value::as_str) == Some("extension") {
            extension_shipped.entry(event.get("message").cloned().unwrap_or_default()).or_default().push(event);
        } else if !event.contains_key("type") {
            // Platform records (with a `type`) are checked through their metrics.
            logs_shipped.entry(event.get("message").cloned().unwrap_or_default()).or_default().push(event);
        }
    }

    let mut metrics_written: BTreeMap<MetricKey, Vec<f64>> = BTreeMap::new();
    let mut request_ids = std::collections::HashSet::new();
    let mut checked = 0;
    for line in written {
        let original = as_structured(line);
        if telemetry_schema::emf::is_document(&original) {
            for (key, value) in emf_values(&original) {
                metrics_written.entry(key).or_default().push(value);
            }
            continue;
        }
        if let Some(id) = original.get("request_id").and_then(Value::as_str) {
            request_ids.insert(id.to_owned());
        }
        let Some(shipped) = take_match(&mut logs_shipped, &original) else {
            failures.push(format!("{name}: not shipped (or altered): {line:.300}"));
            continue;
        };
        let missing: Vec<&str> = ENRICHMENT.into_iter().filter(|k| !shipped.contains_key(*k)).collect();
        if !missing.is_empty() {
            failures.push(format!("{name}: shipped without {missing:?}: {:.300}", Value::Object(shipped)));
        }
        checked += 1;
    }
    for line in extension_written {
        if take_match(&mut extension_shipped, &as_structured(line)).is_none() {
            failures.push(format!("{name}: extension line not shipped: {line:.300}"));
        }
    }
    let extra: Vec<&Map<String, Value>> = logs_shipped.values().flatten().collect();
    if !extra.is_empty() {
        failures.push(format!("{name}: {} shipped log events the function never wrote (duplicates?)", extra.len()));
        for event in extra.iter().take(5) {
            failures.push(format!("{name}:   unmatched: {:.400}", Value::Object((*event).clone())));
        }
    }

    for (key, values) in &metrics_written {
        let got = metrics_shipped.get(key).map_or(&[][..], Vec::as_slice);
        let (wrote, shipped): (f64, f64) = (values.iter().sum(), got.iter().sum());
        if got.len() != values.len() || (wrote - shipped).abs() > 1e-6_f64.max(wrote.abs() * 1e-9) {
            failures.push(format!(
                "{name}: metric {key:?}: wrote {} values (sum {wrote}), shipped {} (sum {shipped})",
                values.len(),
                got.len()
            ));
        }
    }

    if written.is_empty() {
        return failures;
    }
    let platform = |metric: &str| -> Vec<f64> {
        metrics_shipped
            .iter()
            .filter(|((namespace, dimensions, name), _)| {
                name == metric
                    && namespace == NAMESPACE
                    && dimensions.len() == 1
                    && dimensions[0].0 == SERVICE_DIMENSION
            })
            .flat_map(|(_, values)| values.iter().copied())
            .collect()
    };
    let absent: Vec<&str> = PLATFORM_METRICS.iter().map(|m| m.name).filter(|m| platform(m).is_empty()).collect();
    if !absent.is_empty() {
        failures.push(format!("{name}: platform metrics never shipped: {absent:?}"));
    }
    let invocations = platform(books_telemetry::DURATION.name).len();
    for per_invocation in [
        books_telemetry::COLD_START,
        books_telemetry::BILLED_DURATION,
        books_telemetry::MAX_MEMORY_USED,
        books_telemetry::ERRORS,
        books_telemetry::TIMEOUTS,
    ] {
        let count = platform(per_invocation.name).len();
        if count != invocations {
            failures.push(format!("{name}: {count} {} values for {invocations} invocations", per_invocation.name));
        }
    }
    if invocations < request_ids.len() {
        failures.push(format!("{name}: {invocations} Duration values for {} logged requests", request_ids.len()));
    }
    let cold_starts: f64 = platform(books_telemetry::COLD_START.name).iter().sum();
    let init_durations = platform(books_telemetry::INIT_DURATION.name).len();
    if init_durations == 0 || (cold_starts - init_durations as f64).abs() > f64::EPSILON {
        failures.push(format!("{name}: ColdStart {cold_starts} vs {init_durations} InitDuration values"));
    }
    let dropped: f64 = platform(books_telemetry::LOGS_DROPPED.name).iter().sum();
    if dropped != 0.0 {
        failures.push(format!("{name}: {dropped} log records dropped under normal load"));
    }
    println!(
        "  {name}: {checked} log lines and {} metric values shipped; {invocations} invocations, {cold_starts} cold starts",
        metrics_written.values().map(Vec::len).sum::<usize>()
    );
    failures
}

#[tokio::test]
#[ignore = "needs a stopped local cloud's log and endpoint: scripts/e2e-local runs it with --ignored"]
async fn everything_the_functions_wrote_reached_cloudwatch_logs() {
    let log_path =
        std::env::var("BOOKS_LOCAL_LOG").expect("BOOKS_LOCAL_LOG names books-local's log (scripts/e2e-local)");
    let log = std::fs::read_to_string(&log_path).unwrap_or_else(|e| panic!("reading {log_path}: {e}"));
    assert!(!log.contains("could not be shipped"), "an extension reported telemetry it could not ship at shutdown");
    let config = books_testkit::aws_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let logs = LogsClient::new(&config);
    let functions = lambda.list_functions().into_paginator().items().send().try_collect().await.unwrap();
    let written = echoed_lines(&log, None);
    let extension_written = echoed_lines(&log, Some("books-telemetry"));
    assert!(written.values().any(|lines| !lines.is_empty()), "no function output in {log_path}");

    let mut failures = Vec::new();
    for function in &functions {
        let name = function.function_name().unwrap_or_default();
        let group = function
            .environment()
            .and_then(|e| e.variables())
            .and_then(|v| v.get("BOOKS_TELEMETRY_LOG_GROUP"))
            .unwrap_or_else(|| panic!("{name} has no BOOKS_TELEMETRY_LOG_GROUP"));
        let shipped = shipped_messages(&logs, group).await;
        let none = Vec::new();
        failures.extend(check_function(
            name,
            written.get(name).unwrap_or(&none),
            extension_written.get(name).unwrap_or(&none),
            &shipped,
        ));
    }
    assert!(failures.is_empty(), "telemetry check failed:\n{}", failures.join("\n"));
}

#[test]
fn a_line_missing_from_cloudwatch_fails_the_check() {
    // The check itself, on a planted loss: one of two written lines never shipped.
    let written = ["plain one\n".to_owned(), r#"{"message":"two","request_id":"r"}"#.to_owned()];
    let shipped =
        [r#"{"message":"plain one","cold_start":true,"function_name":"f","function_version":"$LATEST"}"#.to_owned()];
    let failures = check_function("f", &written, &[], &shipped);
    assert!(failures.iter().any(|f| f.contains("not shipped") && f.contains("two")), "{failures:?}");
}
