//! Telemetry pipeline throughput on one core: Telemetry API deliveries parsed, enriched,
//! aggregated and cut into `PutLogEvents` batches, everything but the network. Printed as
//! records per second and bytes shipped per record, next to a baseline measured in the same
//! run (only parsing the deliveries' JSON), so the ratio survives a noisy machine.
//!
//! `make bench` runs it (and reads back the JSON summary it writes to `$BENCH_JSON`);
//! `cargo bench -p books-telemetry --bench pipeline` alone works too.

use std::hint::black_box;
use std::time::{Duration, Instant};

use books_telemetry::batch;
use books_telemetry::Config;
use books_telemetry::Pipeline;
use books_telemetry::EVENT_OVERHEAD_BYTES;
use serde_json::{json, Value};

const INVOCATIONS_PER_DELIVERY: usize = 20;
const ROUNDS: usize = 7;
const MEASURE_FOR: Duration = Duration::from_millis(1500);

/// One invocation's records as a busy function produces them: start, four JSON log lines, one
/// EMF document, runtimeDone and report.
fn invocation(n: usize) -> Vec<Value> {
    let at = format!("2026-11-24T10:{:02}:{:02}.{:03}Z", (n / 60_000) % 60, (n / 1000) % 60, n % 1000);
    let id = format!("8476a536-e9f4-11e8-9739-{n:012}");
    let mut records = vec![json!({"time": at, "type": "platform.start", "record": {"requestId": id,
        "version": "$LATEST", "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"}}})];
    for line in 0..4 {
        let text = format!(
            r#"{{"timestamp":"{at}","level":"INFO","message":"request handled","operation":"GetBook","method":"GET","path":"/v1/books/01J{n:023}","status":200,"duration_ms":3.{line}4,"request_id":"{id}","cold_start":false,"service":"query"}}"#
        );
        records.push(json!({"time": at, "type": "function", "record": text}));
    }
    let emf = format!(
        r#"{{"_aws":{{"Timestamp":1764000000000,"CloudWatchMetrics":[{{"Namespace":"Books","Dimensions":[["Service","Operation"]],"Metrics":[{{"Name":"RequestLatency","Unit":"Milliseconds"}},{{"Name":"DynamoDbLatency","Unit":"Milliseconds"}}]}}]}},"Service":"query","Operation":"GetBook","RequestLatency":3.{n},"DynamoDbLatency":[2.1,1.{n}]}}"#
    );
    records.push(json!({"time": at, "type": "function", "record": emf}));
    records.push(json!({"time": at, "type": "platform.runtimeDone",
        "record": {"requestId": id, "status": "success", "metrics": {"durationMs": 3.5, "producedBytes": 412}}}));
    records.push(json!({"time": at, "type": "platform.report", "record": {"requestId": id, "status": "success",
        "metrics": {"durationMs": 4.1, "billedDurationMs": 5, "memorySizeMB": 256, "maxMemoryUsedMB": 31}}}));
    records
}

fn deliveries() -> (Vec<Vec<u8>>, usize) {
    let mut records = 0;
    let bodies = (0..50)
        .map(|d| {
            let batch: Vec<Value> =
                (0..INVOCATIONS_PER_DELIVERY).flat_map(|i| invocation(d * INVOCATIONS_PER_DELIVERY + i)).collect();
            records += batch.len();
            serde_json::to_vec(&batch).expect("JSON")
        })
        .collect();
    (bodies, records)
}

fn config() -> Config {
    Config::from_lookup(|name| match name {
        "BOOKS_TELEMETRY_LOG_GROUP" => Some("/books/bench/query".into()),
        "AWS_LAMBDA_FUNCTION_NAME" => Some("books-bench-query".into()),
        "BOOKS_TELEMETRY_BUFFER_BYTES" => Some((256 << 20).to_string()),
        _ => None,
    })
    .expect("bench configuration")
}

/// Records per second over repeated passes of `work` for about `MEASURE_FOR`, and what one
/// pass returned.
fn rate(records_per_pass: usize, mut work: impl FnMut() -> usize) -> (f64, usize) {
    let started = Instant::now();
    let (mut passes, mut last) = (0usize, 0usize);
    while started.elapsed() < MEASURE_FOR {
        last = work();
        passes += 1;
    }
    ((passes * records_per_pass) as f64 / started.elapsed().as_secs_f64(), last)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (bodies, records) = deliveries();
    let input_bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "telemetry pipeline, one core: {records} records in {} deliveries ({input_bytes} bytes) per pass",
        bodies.len()
    );
    let (mut pipeline_rates, mut parse_rates, mut shipped) = (Vec::new(), Vec::new(), 0);
    for round in 1..=ROUNDS {
        // Interleaved: the baseline and the pipeline see the same machine load.
        let (parse, _) = rate(records, || {
            bodies
                .iter()
                .map(|b| black_box(serde_json::from_slice::<Value>(b).expect("JSON")).as_array().map_or(0, Vec::len))
                .sum()
        });
        let (full, bytes) = rate(records, || {
            let pipeline = Pipeline::new(&config());
            for body in &bodies {
                pipeline.ingest(body);
            }
            let outgoing = pipeline.take_outgoing(1_764_000_000_000);
            let mut events = outgoing.documents;
            events.extend(outgoing.logs);
            let batches = batch::into_batches(events.into_iter().map(batch::fit).collect());
            black_box(&batches).iter().flatten().map(|e| e.message.len() + EVENT_OVERHEAD_BYTES).sum()
        });
        println!("  round {round}: pipeline {full:>10.0} records/s   JSON parse only {parse:>10.0} records/s");
        pipeline_rates.push(full);
        parse_rates.push(parse);
        shipped = bytes;
    }
    let rounds = json!({"pipeline_records_per_s": pipeline_rates, "parse_records_per_s": parse_rates});
    let (full, parse) = (median(pipeline_rates), median(parse_rates));
    println!(
        "median: pipeline {full:.0} records/s/core; JSON parse only {parse:.0}; the pipeline costs {:.2}x parsing",
        parse / full
    );
    println!(
        "bytes shipped per record: {:.1} (delivered: {:.1} bytes per record)",
        shipped as f64 / records as f64,
        input_bytes as f64 / records as f64
    );
    // `make bench` reads the figures back for its report.
    if let Ok(path) = std::env::var("BENCH_JSON") {
        let summary = json!({"records_per_pass": records, "deliveries_per_pass": bodies.len(), "rounds": rounds,
            "pipeline_records_per_s": full, "parse_records_per_s": parse,
            "shipped_bytes_per_record": shipped as f64 / records as f64,
            "delivered_bytes_per_record": input_bytes as f64 / records as f64});
        std::fs::write(&path, summary.to_string()).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
}
