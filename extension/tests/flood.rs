//! The extension's memory under a flood, measured on the process as Lambda runs it (its binary
//! against a fake Extensions and Telemetry API): far more telemetry than it can ship, while
//! CloudWatch hangs, and its peak resident memory stays under a stated ceiling, because every
//! stage holds a bounded amount (the listener's queue and body limit, the log buffer, the
//! metrics cap, one shipment in flight). Once CloudWatch answers again, SHUTDOWN ships what
//! was kept and counts what was not.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use books_telemetry::now_ms;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{ExtensionProcess, FakeLambda, Fault, FaultProxy};

/// The ceiling of the extension's peak resident memory under the flood. What it may hold with
/// the settings below: a 1 MiB log buffer and 256 KiB of metrics (each twice: waiting, and in
/// the shipment in flight, with the SDK's copy of the request), eight deliveries of about 1 MiB
/// queued or being read, the one being parsed (several times its size as records), and the
/// binary itself (unoptimised, with its TLS roots and the SDK). Measured when this was written:
/// about 45 MiB; 140 MiB without the metrics cap, 290 MiB without the log buffer's.
const PEAK_RSS_CEILING_MIB: u64 = 64;
/// Senders posting at once, as the Telemetry API never does (it waits for each answer), to
/// press on the listener harder than Lambda would.
const SENDERS: usize = 16;
/// Deliveries per sender; about 0.8 MiB each: 128 MiB in all, twice the ceiling.
const DELIVERIES_PER_SENDER: usize = 10;

/// One invocation's records, about 0.8 MiB: start, 650 plain lines of 1 KiB, 320 EMF
/// documents each with a dimension value of its own (a new metric group each: what an
/// aggregator without a bound would keep growing by) and 100 values, runtimeDone and report.
fn delivery(request_id: &str) -> Vec<u8> {
    let time = chrono::DateTime::from_timestamp_millis(now_ms()).unwrap().to_rfc3339();
    let record = |kind: &str, record: String| format!(r#"{{"time":"{time}","type":"{kind}","record":{record}}}"#);
    let mut records = vec![record("platform.start", format!(r#"{{"requestId":"{request_id}"}}"#))];
    let pad = "x".repeat(1_000);
    records.extend((0..650).map(|n| record("function", format!(r#""{request_id} line {n:03} {pad}""#))));
    let values = vec!["1"; 100].join(",");
    records.extend((0..320).map(|n| {
        let document = format!(
            r#"{{"_aws":{{"Timestamp":{},"CloudWatchMetrics":[{{"Namespace":"Flood","Dimensions":[["Tenant"]],"Metrics":[{{"Name":"Work","Unit":"Count"}}]}}]}},"Tenant":"{request_id}-{n:04}","Work":[{values}]}}"#,
            now_ms()
        );
        record("function", serde_json::to_string(&document).unwrap())
    }));
    records.push(record(
        "platform.runtimeDone",
        format!(r#"{{"requestId":"{request_id}","status":"success","metrics":{{"durationMs":3.0}}}}"#),
    ));
    records.push(record(
        "platform.report",
        format!(
            r#"{{"requestId":"{request_id}","status":"success","metrics":{{"durationMs":4.0,"billedDurationMs":4,"memorySizeMB":128,"maxMemoryUsedMB":40}}}}"#
        ),
    ));
    format!("[{}]", records.join(",")).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_while_cloudwatch_hangs_stays_under_the_memory_ceiling_and_every_drop_is_counted() {
    let moto = books_testkit::endpoint();
    let logs = LogsClient::new(&support::sdk_config(moto).await);
    let group = support::log_group(&logs, "flood").await;
    let proxy = FaultProxy::start(moto).await;
    proxy.set(Fault::Stall, usize::MAX);
    let lambda = Arc::new(FakeLambda::start().await);
    let mut extension = ExtensionProcess::start(
        &lambda,
        &proxy.url,
        &[
            ("BOOKS_TELEMETRY_LOG_GROUP", &group),
            ("BOOKS_TELEMETRY_LOG_STREAM", "flood"),
            ("BOOKS_TELEMETRY_BUFFER_BYTES", "1048576"),
            ("BOOKS_TELEMETRY_METRICS_BYTES", "262144"),
            ("BOOKS_TELEMETRY_FLUSH", "background"),
            ("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", "100"),
        ],
    );
    let listener = format!("http://127.0.0.1:{}/", lambda.listener_port(Duration::from_secs(60)).await);

    // Made beforehand, so that they come as fast as the listener takes them.
    let floods: Vec<Vec<(String, Bytes)>> = (0..SENDERS)
        .map(|sender| {
            (0..DELIVERIES_PER_SENDER)
                .map(|n| {
                    let request_id = format!("flood-{sender}-{n:03}");
                    let body = Bytes::from(delivery(&request_id));
                    (request_id, body)
                })
                .collect()
        })
        .collect();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let started = std::time::Instant::now();
    let mut senders = Vec::new();
    for flood in floods {
        let (client, listener, lambda) = (client.clone(), listener.clone(), Arc::clone(&lambda));
        senders.push(tokio::spawn(async move {
            let mut bytes = 0;
            for (request_id, body) in flood {
                lambda.invoke(&request_id, now_ms() + 600_000);
                bytes += body.len();
                let request = hyper::Request::post(&listener).body(Full::new(body)).unwrap();
                let status = client.request(request).await.expect("the listener answers").status();
                assert_eq!(status, 200, "a delivery within the limit is taken");
            }
            bytes
        }));
    }
    let mut flooded: usize = 0;
    for sender in senders {
        flooded += tokio::time::timeout(Duration::from_secs(600), sender).await.expect("the flood ends").unwrap();
    }
    let peak_mib = extension.peak_rss_kib() / 1024;
    println!(
        "flooded {} MiB in {:?}; the extension's peak resident memory: {peak_mib} MiB",
        flooded >> 20,
        started.elapsed()
    );
    assert!(flooded as u64 >> 20 >= 2 * PEAK_RSS_CEILING_MIB, "the flood is larger than the ceiling by far");
    assert!(
        peak_mib < PEAK_RSS_CEILING_MIB,
        "peak resident memory {peak_mib} MiB, over the {PEAK_RSS_CEILING_MIB} MiB ceiling"
    );

    // CloudWatch answers again: SHUTDOWN ships what was kept, with the count of what was not.
    proxy.heal();
    lambda.shutdown(now_ms() + 30_000);
    let status = extension.exit(Duration::from_secs(90)).await;
    assert!(status.success(), "{status}: {:?}", extension.diagnostics());
    let shipped = support::read_stream(&logs, &group, "flood").await;
    let dropped: f64 = support::metric_values(&shipped, "LogsDropped").iter().sum();
    let lines = support::messages(&shipped).len();
    assert!(lines > 0 && dropped > 0.0, "kept {lines} lines, counted {dropped} dropped");
}
