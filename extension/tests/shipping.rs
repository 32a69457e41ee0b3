//! Shipping to CloudWatch Logs for real (moto), through a proxy that injects CloudWatch's
//! failures: everything arrives in order, throttling loses nothing, an unreachable CloudWatch
//! keeps the newest events within the buffer bound and counts every drop, a refused destination
//! (access denied, log group deleted) drops and counts instead of retrying, then is tried once
//! per cool-down, and SHUTDOWN right after a burst ships it all.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use books_telemetry::Flusher;
use books_telemetry::{now_ms, Backlog, Pipeline};
use books_telemetry::{Refusal, Shipper};
use serde_json::{json, Value};
use support::{Diagnostics, Fault, FaultProxy};

struct Rig {
    logs: LogsClient,
    proxy: FaultProxy,
    group: String,
    stream: String,
    flusher: Arc<Flusher>,
}

impl Rig {
    async fn new(name: &str, extra: &[(&str, &str)]) -> Self {
        let moto = books_testkit::endpoint();
        let logs = LogsClient::new(&support::sdk_config(moto).await);
        let group = support::log_group(&logs, name).await;
        let proxy = FaultProxy::start(moto).await;
        let config = support::config(&group, extra);
        let shipper =
            Shipper::new((&support::sdk_config(&proxy.url).await).into(), group.clone(), config.log_stream.clone());
        let flusher = Arc::new(Flusher::new(Arc::new(Pipeline::new(&config)), shipper, &config));
        Self { logs, proxy, group, stream: config.log_stream, flusher }
    }

    fn deliver(&self, lines: &[String]) {
        self.flusher.pipeline().ingest(&support::function_lines(now_ms(), lines));
    }

    async fn shipped(&self) -> Vec<(i64, String)> {
        support::read_stream(&self.logs, &self.group, &self.stream).await
    }

    /// Like `shipped`, before the stream may exist.
    async fn shipped_or_empty(&self) -> Vec<(i64, String)> {
        let streams = self.logs.describe_log_streams().log_group_name(&self.group).send().await.unwrap();
        if streams.log_streams().iter().any(|s| s.log_stream_name() == Some(self.stream.as_str())) {
            self.shipped().await
        } else {
            Vec::new()
        }
    }
}

fn lines(prefix: &str, count: usize, pad: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:05}-{}", "x".repeat(pad))).collect()
}

#[tokio::test]
async fn every_record_reaches_the_stream_in_order_with_the_emf_header() {
    let rig = Rig::new("order", &[]).await;
    let sent = lines("line", 50, 10);
    let start = now_ms();
    let mut records = vec![json!({"time": rfc3339(start), "type": "platform.start", "record": {"requestId": "req-1"}})];
    records.extend(sent.iter().map(|l| json!({"time": rfc3339(start + 1), "type": "function", "record": l})));
    records.push(json!({"time": rfc3339(start + 2), "type": "platform.runtimeDone",
        "record": {"requestId": "req-1", "status": "success", "metrics": {"durationMs": 10.0}}}));
    records.push(json!({"time": rfc3339(start + 3), "type": "platform.report", "record": {"requestId": "req-1",
        "status": "success", "metrics": {"durationMs": 12.0, "billedDurationMs": 12, "memorySizeMB": 128,
        "maxMemoryUsedMB": 20, "initDurationMs": 50.0}}}));
    rig.flusher.pipeline().ingest(Value::Array(records).to_string().as_bytes());

    let report = rig.flusher.flush(None).await;
    assert_eq!((report.unsent, report.rejected), (0, 0), "{report:?}");

    let shipped = rig.shipped().await;
    assert_eq!(support::messages(&shipped), sent, "every line, once, in order");
    let line: Value = serde_json::from_str(&shipped.iter().find(|(_, m)| m.contains("line-00000")).unwrap().1).unwrap();
    assert_eq!(line["request_id"], "req-1");
    assert_eq!(line["cold_start"], true);
    assert_eq!(line["function_name"], "books-test-command");
    assert_eq!(support::metric_values(&shipped, "ColdStart"), [1.0]);
    assert_eq!(support::metric_values(&shipped, "InitDuration"), [50.0]);
    assert_eq!(support::metric_values(&shipped, "PostRuntimeDuration"), [2.0]);
    assert!(shipped.windows(2).all(|w| w[0].0 <= w[1].0), "chronological");
    let headers = rig.proxy.put_headers.lock().unwrap().clone();
    assert!(!headers.is_empty());
    assert!(headers.iter().all(|h| h.get("x-amzn-logs-format").is_some_and(|v| v == "json/emf")));
}

#[tokio::test]
async fn throttling_is_retried_and_loses_nothing() {
    let rig = Rig::new("throttle", &[]).await;
    let sent = lines("throttled", 300, 40);
    rig.deliver(&sent);
    rig.proxy.set(Fault::Throttle, 3);

    let report = rig.flusher.flush(None).await;
    assert_eq!(report.unsent, 0, "{report:?}");
    assert_eq!(rig.proxy.count("CreateLogStream").0 + rig.proxy.count("PutLogEvents").0, 3, "faults were injected");
    assert_eq!(support::messages(&rig.shipped().await), sent);
}

#[tokio::test]
async fn server_errors_are_retried_and_lose_nothing() {
    let rig = Rig::new("unavailable", &[]).await;
    let sent = lines("retried", 20, 5);
    rig.deliver(&sent);
    rig.proxy.set(Fault::Unavailable, 2);
    let report = rig.flusher.flush(None).await;
    assert_eq!(report.unsent, 0, "{report:?}");
    assert_eq!(support::messages(&rig.shipped().await), sent);
}

#[tokio::test]
async fn unreachable_cloudwatch_keeps_the_newest_within_the_bound_and_counts_every_drop() {
    let rig = Rig::new("unreachable", &[("BOOKS_TELEMETRY_BUFFER_BYTES", "65536")]).await;
    rig.proxy.set(Fault::Drop, usize::MAX);
    let mut all = Vec::new();
    for round in 0..3 {
        let batch = lines(&format!("r{round}"), 100, 600);
        rig.deliver(&batch);
        all.extend(batch);
        let report = rig.flusher.flush(None).await;
        assert_eq!(report.sent, 0);
        assert!(report.unsent > 0, "CloudWatch is unreachable: {report:?}");
        assert!(rig.flusher.pipeline().buffered_bytes().0 <= 65536, "the buffer stays within its bound");
    }
    rig.proxy.heal();
    let report = rig.flusher.flush(None).await;
    assert_eq!(report.unsent, 0, "{report:?}");

    let shipped = rig.shipped().await;
    let kept = support::messages(&shipped);
    let dropped: f64 = support::metric_values(&shipped, "LogsDropped").iter().sum();
    assert!(!kept.is_empty() && dropped > 0.0, "kept {} dropped {dropped}", kept.len());
    assert_eq!(kept.len() + dropped as usize, all.len(), "every line is shipped or counted as dropped");
    assert_eq!(kept, all[all.len() - kept.len()..], "the newest are kept, in order");
}

#[tokio::test]
async fn shutdown_right_after_a_burst_ships_everything() {
    let rig = Rig::new("shutdown", &[]).await;
    let mut all = Vec::new();
    for burst in 0..10 {
        let batch = lines(&format!("b{burst}"), 500, 30);
        rig.deliver(&batch);
        all.extend(batch);
    }
    let deadline = (now_ms() + 2_000) as u64;
    let backlog = rig.flusher.on_shutdown(deadline).await;
    assert_eq!(backlog, Backlog::default());
    assert!(now_ms() <= deadline as i64, "finished before the deadline");
    // The bursts overlap in time, and CloudWatch keeps time order: compare as multisets.
    let mut shipped = support::messages(&rig.shipped().await);
    shipped.sort();
    all.sort();
    assert!(shipped == all, "shipped {} lines, expected {} (each exactly once)", shipped.len(), all.len());
}

#[tokio::test]
async fn shutdown_with_cloudwatch_down_reports_what_it_could_not_send() {
    let rig = Rig::new("shutdown-down", &[("BOOKS_TELEMETRY_SHUTDOWN_MARGIN_MS", "100")]).await;
    rig.proxy.set(Fault::Drop, usize::MAX);
    rig.deliver(&lines("lost", 40, 10));
    let deadline = (now_ms() + 1_500) as u64;
    let backlog = rig.flusher.on_shutdown(deadline).await;
    assert!(now_ms() <= deadline as i64, "gave up before the deadline");
    assert_eq!(backlog.logs, 40, "{backlog:?}");
    assert!(backlog.documents >= 1, "the LogsDropped document waits too: {backlog:?}");
}

#[tokio::test]
async fn shutdown_bounds_a_background_flush_in_flight_and_counts_what_it_held() {
    let rig = Rig::new("shutdown-in-flight", &[("BOOKS_TELEMETRY_SHUTDOWN_MARGIN_MS", "100")]).await;
    rig.deliver(&lines("held", 25, 10));
    // A background flush whose PutLogEvents never returns (the SDK would retry it for 4 × 5 s).
    rig.proxy.set(Fault::Stall, usize::MAX);
    let flusher = Arc::clone(&rig.flusher);
    let in_flight = tokio::spawn(async move { flusher.flush(None).await });
    for _ in 0..600 {
        if rig.proxy.count("PutLogEvents").1 > 0 || rig.proxy.count("CreateLogStream").1 > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let deadline = (now_ms() + 1_500) as u64;
    let backlog = rig.flusher.on_shutdown(deadline).await;
    assert!(now_ms() <= deadline as i64, "SHUTDOWN's deadline held despite the flush in flight");
    assert_eq!(backlog.logs, 25, "what the stalled flush held is counted, not lost: {backlog:?}");
    let report =
        tokio::time::timeout(std::time::Duration::from_secs(5), in_flight).await.expect("the flush ended").unwrap();
    assert!(report.unsent >= 25, "the stalled flush gave its events back: {report:?}");
}

#[tokio::test]
async fn oversized_line_is_truncated_with_a_marker() {
    let rig = Rig::new("oversized", &[]).await;
    rig.deliver(&["y".repeat(400_000)]);
    assert_eq!(rig.flusher.flush(None).await.unsent, 0);
    let shipped = rig.shipped().await;
    let truncated: Vec<Value> = shipped
        .iter()
        .filter_map(|(_, m)| serde_json::from_str::<Value>(m).ok())
        .filter(|v| v.get(books_telemetry::batch::TRUNCATED_MARKER).is_some())
        .collect();
    assert_eq!(truncated.len(), 1);
    assert!(truncated[0]["original_bytes"].as_u64().unwrap() > 400_000);
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

#[tokio::test]
async fn events_cloudwatch_refuses_by_time_are_counted_as_dropped() {
    let rig = Rig::new("rejected", &[]).await;
    let day = 24 * 60 * 60 * 1000;
    let now = now_ms();
    let records = json!([
        {"time": rfc3339(now - 20 * day), "type": "function", "record": "too old"},
        {"time": rfc3339(now), "type": "function", "record": "on time 1"},
        {"time": rfc3339(now + 1), "type": "function", "record": "on time 2"},
        {"time": rfc3339(now + 3 * 60 * 60 * 1000), "type": "function", "record": "too new"},
    ]);
    rig.flusher.pipeline().ingest(records.to_string().as_bytes());
    let report = rig.flusher.flush(None).await;
    assert_eq!((report.sent, report.rejected, report.unsent), (3, 2, 0), "{report:?}");
    rig.flusher.flush(None).await;
    let shipped = rig.shipped().await;
    assert_eq!(support::messages(&shipped), ["on time 1", "on time 2"]);
    assert_eq!(support::metric_values(&shipped, "LogsDropped").iter().sum::<f64>(), 2.0);
}

fn invocation_records(request_id: &str, lines: &[&str]) -> Vec<u8> {
    let now = now_ms();
    let mut records =
        vec![json!({"time": rfc3339(now), "type": "platform.start", "record": {"requestId": request_id}})];
    records.extend(lines.iter().map(|l| json!({"time": rfc3339(now), "type": "function", "record": l})));
    Value::Array(records).to_string().into_bytes()
}

fn runtime_done(request_id: &str) -> Vec<u8> {
    json!([{"time": rfc3339(now_ms()), "type": "platform.runtimeDone",
        "record": {"requestId": request_id, "status": "success", "metrics": {"durationMs": 3.0}}}])
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn end_of_invocation_flush_waits_for_the_runtime_to_answer() {
    let rig = Rig::new("end", &[("BOOKS_TELEMETRY_FLUSH", "end")]).await;
    let flusher = Arc::clone(&rig.flusher);
    let invocation = tokio::spawn(async move { flusher.on_invoke("req-end".into(), (now_ms() + 10_000) as u64).await });
    rig.flusher.pipeline().ingest(&invocation_records("req-end", &["working"]));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!invocation.is_finished(), "the extension holds its next event until the runtime answered");
    assert_eq!(rig.proxy.count("PutLogEvents"), (0, 0), "nothing shipped while the runtime works");

    rig.flusher.pipeline().ingest(&runtime_done("req-end"));
    tokio::time::timeout(std::time::Duration::from_secs(5), invocation).await.expect("done after runtimeDone").unwrap();
    assert_eq!(support::messages(&rig.shipped().await), ["working"], "flushed before the next event");
}

#[tokio::test]
async fn an_end_of_invocation_flush_holds_the_invocation_no_longer_than_its_budget() {
    let rig = Rig::new("end-budget", &[("BOOKS_TELEMETRY_FLUSH", "end")]).await;
    rig.deliver(&["first".to_owned()]);
    rig.flusher.flush(None).await; // the stream exists: the next flush is one PutLogEvents
    rig.proxy.set(Fault::HoldAnswer, usize::MAX);
    rig.flusher.pipeline().ingest(&invocation_records("req-slow", &["shipped late"]));
    rig.flusher.pipeline().ingest(&runtime_done("req-slow"));
    // Past the deadline, well within the SDK's 5 s attempt timeout.
    let deadline_ms = now_ms() + 2_000;
    let invocation = rig.flusher.on_invoke("req-slow".into(), deadline_ms as u64);
    // CloudWatch holds its answer until released: the invocation must end without it.
    tokio::time::timeout(Duration::from_secs(30), invocation).await.expect("the extension asked for its next event");
    assert_eq!(rig.proxy.held(), 1, "ended while CloudWatch still held the PutLogEvents answer");
    // The answer comes after the invocation's deadline (in Lambda: the environment was frozen
    // meanwhile), and must still count: the flush that went on is not bound by that deadline.
    while now_ms() < deadline_ms + 300 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    rig.proxy.release();
    let bound = Instant::now() + Duration::from_secs(60);
    while support::messages(&rig.shipped().await).len() < 2 {
        assert!(Instant::now() < bound, "the flush never ended in the background");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.flusher.flush(None).await;
    assert_eq!(
        support::messages(&rig.shipped().await),
        ["first", "shipped late"],
        "shipped once, by the flush that went on"
    );
    assert_eq!(rig.proxy.count("PutLogEvents"), (1, 1), "the held call, and no other made again");
}

#[tokio::test]
async fn background_flush_never_holds_the_invocation() {
    let rig = Rig::new(
        "background",
        &[("BOOKS_TELEMETRY_FLUSH", "background"), ("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", "100")],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    rig.flusher.pipeline().ingest(&invocation_records("req-bg", &["in the background"]));
    let started = std::time::Instant::now();
    rig.flusher.on_invoke("req-bg".into(), (now_ms() + 10_000) as u64).await;
    assert!(rig.proxy.count("PutLogEvents") == (0, 0), "returned before any flush");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    rig.flusher.pipeline().ingest(&runtime_done("req-bg"));
    for _ in 0..600 {
        if !support::messages(&rig.shipped_or_empty().await).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(support::messages(&rig.shipped().await), ["in the background"]);
}

#[tokio::test]
async fn silent_telemetry_never_holds_an_invocation_until_its_deadline() {
    let rig = Rig::new("silent", &[("BOOKS_TELEMETRY_FLUSH", "end")]).await;
    let started = std::time::Instant::now();
    rig.flusher.on_invoke("req-silent".into(), (now_ms() + 60_000) as u64).await;
    let held = started.elapsed();
    assert!(
        held >= books_telemetry::TELEMETRY_SILENCE_LIMIT && held < std::time::Duration::from_secs(30),
        "held {held:?}: waits for the platform a while, never for the whole 60 s deadline"
    );
}

/// The cool-down after a refusal in the tests below: long enough that a retry before it ends
/// shows, short enough to wait for.
const COOL_DOWN: Duration = Duration::from_millis(1_500);

/// Flushes every 20 ms until the proxy has seen more than `requests` requests (or a generous
/// bound); the report of the flush that made them.
async fn flush_until_a_request_past(rig: &Rig, requests: usize) -> books_telemetry::FlushReport {
    let bound = Instant::now() + Duration::from_secs(60);
    loop {
        let report = rig.flusher.flush(None).await;
        if rig.proxy.requests() > requests {
            return report;
        }
        assert!(Instant::now() < bound, "no request past {requests} within 60 s: {report:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn access_denied_drops_and_counts_the_events_and_is_tried_again_once_per_cool_down() {
    let cool_down = COOL_DOWN.as_millis().to_string();
    let rig = Rig::new("denied", &[("BOOKS_TELEMETRY_REFUSAL_COOLDOWN_MS", &cool_down)]).await;
    let diagnostics = Diagnostics::capture();
    rig.proxy.set(Fault::Deny, usize::MAX);
    rig.deliver(&lines("denied", 30, 10));

    let refused_at = Instant::now();
    let report = rig.flusher.flush(None).await;
    assert_eq!(report.refusal, Some(Refusal::AccessDenied), "{report:?}");
    assert_eq!((report.sent, report.dropped), (0, 30), "the lines are dropped, counted: {report:?}");
    assert_eq!(rig.proxy.requests(), 1, "access denied is not retried");

    // During the cool-down nothing is tried, however often a flush comes; what arrives waits.
    rig.deliver(&lines("waiting", 5, 10));
    let report = flush_until_a_request_past(&rig, 1).await;
    assert!(refused_at.elapsed() >= COOL_DOWN, "tried again {:?} after the refusal", refused_at.elapsed());
    assert_eq!(rig.proxy.requests(), 2, "one try per cool-down");
    assert_eq!((report.refusal, report.dropped), (Some(Refusal::AccessDenied), 5), "{report:?}");
    let errors = diagnostics.at("ERROR");
    assert_eq!(errors.len(), 1, "the refusal is written once, not per flush: {errors:?}");
    assert_eq!(errors[0]["fields"]["reason"], "access denied");

    // Permission granted: picked up after the cool-down, without a restart.
    rig.proxy.heal();
    let shipped = lines("granted", 10, 10);
    rig.deliver(&shipped);
    let report = flush_until_a_request_past(&rig, 2).await;
    assert_eq!((report.refusal, report.unsent), (None, 0), "{report:?}");
    let events = rig.shipped().await;
    assert_eq!(support::messages(&events), shipped);
    let dropped: f64 = support::metric_values(&events, "LogsDropped").iter().sum();
    assert_eq!(dropped, 35.0, "every line refused is counted as dropped, once");
}

#[tokio::test]
async fn a_deleted_log_group_drops_and_counts_the_events_until_it_is_created_again() {
    let cool_down = COOL_DOWN.as_millis().to_string();
    let rig = Rig::new("deleted", &[("BOOKS_TELEMETRY_REFUSAL_COOLDOWN_MS", &cool_down)]).await;
    let diagnostics = Diagnostics::capture();
    rig.deliver(&lines("before", 10, 10));
    let report = rig.flusher.flush(None).await;
    assert_eq!((report.unsent, report.refusal), (0, None), "{report:?}");

    rig.logs.delete_log_group().log_group_name(&rig.group).send().await.unwrap();
    rig.deliver(&lines("lost", 20, 10));
    let requests = rig.proxy.requests();
    let refused_at = Instant::now();
    let report = rig.flusher.flush(None).await;
    assert_eq!(report.refusal, Some(Refusal::LogGroupMissing), "{report:?}");
    assert_eq!((report.sent, report.dropped), (0, 20), "{report:?}");
    assert_eq!(
        rig.proxy.requests() - requests,
        2,
        "PutLogEvents (not found), then CreateLogStream (its group is gone), and no retry"
    );

    // Re-created at once; shipping resumes after the cool-down, into a new stream of the new group.
    rig.logs.create_log_group().log_group_name(&rig.group).send().await.unwrap();
    let shipped = lines("after", 10, 10);
    rig.deliver(&shipped);
    let report = flush_until_a_request_past(&rig, requests + 2).await;
    assert!(refused_at.elapsed() >= COOL_DOWN, "tried again {:?} after the refusal", refused_at.elapsed());
    assert_eq!((report.refusal, report.unsent), (None, 0), "{report:?}");
    let events = rig.shipped().await;
    assert_eq!(support::messages(&events), shipped);
    let dropped: f64 = support::metric_values(&events, "LogsDropped").iter().sum();
    assert_eq!(dropped, 20.0, "every line refused is counted as dropped, once");
    let errors = diagnostics.at("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["fields"]["reason"], "log group missing");
}
