//! The records of AWS's "Lambda Telemetry API `Event` schema reference" read as their types
//! and written back unchanged; what the schema does not know is kept, never a failure.
//!
//! The example records below carry the reference's values. Two of its examples are not valid
//! JSON as published (a missing comma in `platform.initRuntimeDone`, a trailing comma in
//! `platform.report`); they appear here with the JSON fixed and nothing else changed.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};
use telemetry_schema::subscription::{SubscribeRequest, SubscriptionError};
use telemetry_schema::{
    parse_delivery, Event, InitializationType, LogLine, NotADelivery, Phase, Platform, Record, SchemaVersion, Status,
    StreamType,
};

fn documented() -> Vec<Value> {
    let trace = json!({"spanId": "54565fb41ac79632", "type": "X-Amzn-Trace-Id",
        "value": "Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"});
    vec![
        json!({"time": "2022-10-12T00:00:15.064Z", "type": "platform.initStart", "record": {
            "initializationType": "on-demand", "phase": "init", "runtimeVersion": "nodejs-14.v3",
            "runtimeVersionArn": "arn", "functionName": "myFunction", "functionVersion": "$LATEST",
            "instanceId": "82561ce0-53dd-47d1-90e0-c8f5e063e62e", "instanceMaxMemory": 256}}),
        json!({"time": "2022-10-12T00:01:15.000Z", "type": "platform.initRuntimeDone", "record": {
            "initializationType": "on-demand", "status": "success",
            "spans": [{"name": "someTimeSpan", "start": "2022-06-02T12:02:33.913Z", "durationMs": 70.5}]}}),
        json!({"time": "2022-10-12T00:01:15.000Z", "type": "platform.initReport", "record": {
            "initializationType": "on-demand", "status": "success", "phase": "init", "metrics": {"durationMs": 125.33},
            "spans": [{"name": "someTimeSpan", "start": "2022-06-02T12:02:33.913Z", "durationMs": 90.1}]}}),
        json!({"time": "2022-10-12T00:00:15.064Z", "type": "platform.start", "record": {
            "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa", "version": "$LATEST", "tracing": trace}}),
        json!({"time": "2022-10-12T00:01:15.000Z", "type": "platform.runtimeDone", "record": {
            "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa", "status": "success", "tracing": trace,
            "spans": [{"name": "someTimeSpan", "start": "2022-08-02T12:01:23:521Z", "durationMs": 80.0}],
            "metrics": {"durationMs": 140.0, "producedBytes": 16}}}),
        json!({"time": "2022-10-12T00:01:15.000Z", "type": "platform.report", "record": {
            "metrics": {"billedDurationMs": 694, "durationMs": 693.92, "initDurationMs": 397.68,
                "maxMemoryUsedMB": 84, "memorySizeMB": 128},
            "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa"}}),
        json!({"time": "2022-10-12T00:00:15.064Z", "type": "platform.restoreStart", "record": {
            "runtimeVersion": "nodejs-14.v3", "runtimeVersionArn": "arn", "functionName": "myFunction",
            "functionVersion": "$LATEST", "instanceId": "82561ce0-53dd-47d1-90e0-c8f5e063e62e",
            "instanceMaxMemory": 256}}),
        json!({"time": "2022-10-12T00:00:15.064Z", "type": "platform.restoreRuntimeDone", "record": {
            "status": "success",
            "spans": [{"name": "someTimeSpan", "start": "2022-08-02T12:01:23:521Z", "durationMs": 80.0}]}}),
        json!({"time": "2022-10-12T00:00:15.064Z", "type": "platform.restoreReport", "record": {
            "status": "success", "metrics": {"durationMs": 15.19},
            "spans": [{"name": "someTimeSpan", "start": "2022-08-02T12:01:23:521Z", "durationMs": 30.0}]}}),
        json!({"time": "2022-10-12T00:02:15.000Z", "type": "platform.extension", "record": {
            "events": ["INVOKE", "SHUTDOWN"], "name": "my-telemetry-extension", "state": "Ready"}}),
        json!({"time": "2022-10-12T00:02:35.000Z", "type": "platform.telemetrySubscription", "record": {
            "name": "my-telemetry-extension", "state": "Subscribed", "types": ["platform", "function"]}}),
        json!({"time": "2022-10-12T00:02:35.000Z", "type": "platform.logsDropped", "record": {
            "droppedBytes": 12345, "droppedRecords": 123,
            "reason": "Some logs were dropped because the downstream consumer is slower than the logs production rate"}}),
        json!({"time": "2022-10-12T00:03:50.000Z", "type": "function", "record": "[INFO] Hello world, I am a function!"}),
        json!({"time": "2022-10-12T00:03:50.000Z", "type": "function", "record": {
            "timestamp": "2022-10-12T00:03:50.000Z", "level": "INFO",
            "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189", "message": "Hello world, I am a function!"}}),
        json!({"time": "2022-10-12T00:03:50.000Z", "type": "extension", "record": "[INFO] Hello world, I am an extension!"}),
    ]
}

#[test]
fn every_documented_record_reads_as_its_type() {
    let records: Vec<Record> = documented().into_iter().map(Record::from_value).collect();
    for record in &records {
        assert!(!matches!(record.event, Event::Unknown(_)), "not read as its type: {record:?}");
    }
    let types: Vec<&str> = records.iter().map(Record::type_name).collect();
    assert_eq!(&types[..12], Platform::TYPES);

    let Event::Platform(Platform::InitStart(init)) = &records[0].event else { panic!("{:?}", records[0]) };
    assert_eq!((&init.initialization_type, &init.phase), (&InitializationType::OnDemand, &Phase::Init));
    assert_eq!(init.instance_max_memory, Some(256));
    let Event::Platform(Platform::RuntimeDone(done)) = &records[4].event else { panic!("{:?}", records[4]) };
    assert_eq!(done.status, Some(Status::Success));
    assert_eq!(done.metrics.as_ref().map(|m| (m.duration_ms, m.produced_bytes)), Some((140.0, Some(16))));
    assert_eq!(done.tracing.as_ref().map(|t| t.span_id.as_deref()), Some(Some("54565fb41ac79632")));
    let Event::Platform(Platform::Report(report)) = &records[5].event else { panic!("{:?}", records[5]) };
    assert_eq!(report.status, None, "the documented example has no status");
    assert_eq!(report.metrics.init_duration_ms, Some(397.68));
    assert_eq!(report.metrics.max_memory_used_mb, Some(84));
    let Event::Platform(Platform::TelemetrySubscription(subscription)) = &records[10].event else { panic!() };
    assert_eq!(subscription.types, [StreamType::Platform, StreamType::Function]);
    assert_eq!(records[12].event, Event::Function(LogLine::Text("[INFO] Hello world, I am a function!".into())));
    assert!(matches!(&records[13].event, Event::Function(LogLine::Object(o)) if o["level"] == "INFO"));
    assert!(matches!(&records[14].event, Event::Extension(LogLine::Text(_))));
    assert_eq!(records[0].time_ms(), Some(1_665_532_815_064));
}

#[test]
fn every_documented_record_is_written_back_as_delivered() {
    for original in documented() {
        let written = serde_json::to_value(Record::from_value(original.clone())).unwrap();
        assert_eq!(written, original);
    }
}

#[test]
fn fields_and_values_the_schema_does_not_know_survive_a_round_trip() {
    // As Lambda Managed Instances send it (schema 2025-01-29): a report with only durationMs.
    let original = json!({"time": "2025-02-01T00:00:00.000Z", "type": "platform.report", "record": {
        "requestId": "r", "status": "success", "metrics": {"durationMs": 12.5},
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}});
    let record = Record::from_value(original.clone());
    let Event::Platform(Platform::Report(report)) = &record.event else { panic!("{record:?}") };
    assert_eq!(report.metrics.billed_duration_ms, None);
    assert_eq!(report.other["functionArn"], "arn:aws:lambda:us-east-1:123456789012:function:f");
    assert_eq!(serde_json::to_value(&record).unwrap(), original);

    let original = json!({"time": "t", "type": "platform.initStart", "record": {"initializationType": "on-demand-2030",
        "phase": "init", "functionName": "f", "functionVersion": "$LATEST"}});
    let record = Record::from_value(original.clone());
    let Event::Platform(Platform::InitStart(init)) = &record.event else { panic!("{record:?}") };
    assert_eq!(init.initialization_type, InitializationType::Other("on-demand-2030".into()));
    assert_eq!(serde_json::to_value(&record).unwrap(), original);
}

#[test]
fn records_the_schema_cannot_read_are_kept_whole() {
    let unknown = [
        json!({"time": "2030-01-01T00:00:00Z", "type": "platform.future", "record": {"x": 1}}),
        json!({"time": "2022-10-12T00:00:00Z", "type": "platform.start", "record": {"no": "requestId"}}),
        json!({"time": "2022-10-12T00:00:00Z", "type": "function", "record": 42}),
        json!({"type": "function"}),
        json!(42),
        json!("text"),
    ];
    let body = serde_json::to_vec(&unknown).unwrap();
    let records = parse_delivery(&body).unwrap();
    assert_eq!(records.len(), unknown.len());
    for (record, original) in records.iter().zip(&unknown) {
        assert_eq!(record.event, Event::Unknown(original.clone()));
        assert_eq!(&serde_json::to_value(record).unwrap(), original);
    }
    assert_eq!(records[3].time_ms(), None);
}

#[test]
fn a_body_that_is_not_an_array_is_not_a_delivery() {
    assert_eq!(parse_delivery(b"{not json"), Err(NotADelivery::Text("{not json".into())));
    assert_eq!(parse_delivery(b"{\"a\":1}"), Err(NotADelivery::Json(json!({"a": 1}))));
}

#[test]
fn log_lines_are_objects_only_from_schema_2022_12_13() {
    let line = r#"{"level":"INFO","message":"hi"}"#;
    let structured = |version: SchemaVersion| LogLine::from_output(line, version.structured_log_lines());
    assert!(matches!(structured(SchemaVersion::V2022_07_01), LogLine::Text(_)));
    assert!(matches!(structured(SchemaVersion::V2022_12_13), LogLine::Object(_)));
    assert!(matches!(structured(SchemaVersion::V2025_01_29), LogLine::Object(_)));
    assert_eq!(LogLine::from_output("plain", true), LogLine::Text("plain".into()));
    assert_eq!(LogLine::from_output("[1, 2]", true), LogLine::Text("[1, 2]".into()));
}

#[test]
fn the_documented_subscription_reads_with_its_buffering() {
    // The reference's request, with its `256*1024` written as the number it means.
    let body = json!({"schemaVersion": "2025-01-29", "types": ["platform", "function", "extension"],
        "buffering": {"maxItems": 1000, "maxBytes": 262_144, "timeoutMs": 100},
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080"}});
    let (request, buffering) = SubscribeRequest::parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.schema_version, SchemaVersion::V2025_01_29);
    assert_eq!((buffering.max_items, buffering.max_bytes, buffering.timeout.as_millis()), (1000, 262_144, 100));
    assert_eq!(serde_json::to_value(&request).unwrap(), body);
}

#[test]
fn subscriptions_outside_the_documented_limits_are_refused() {
    let request = |change: &dyn Fn(&mut Value)| {
        let mut body = json!({"schemaVersion": "2022-12-13", "types": ["platform"],
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080"}});
        change(&mut body);
        SubscribeRequest::parse(body.to_string().as_bytes()).map(|(_, buffering)| buffering)
    };
    let defaults = request(&|_| {}).unwrap();
    assert_eq!((defaults.max_items, defaults.max_bytes, defaults.timeout.as_millis()), (1000, 262_144, 1000));
    for (field, bad) in [("maxItems", 999), ("maxItems", 10_001), ("maxBytes", 2_000_000), ("timeoutMs", 24)] {
        let refused = request(&|b| b["buffering"] = json!({field: bad})).unwrap_err();
        assert!(matches!(refused, SubscriptionError::Buffering { value, .. } if value == bad), "{field}: {refused}");
    }
    assert_eq!(request(&|b| b["types"] = json!([])).unwrap_err(), SubscriptionError::NoTypes);
    assert_eq!(request(&|b| b["types"] = json!(["logs"])).unwrap_err(), SubscriptionError::UnknownType("logs".into()));
    assert!(matches!(request(&|b| b["schemaVersion"] = json!("2021-01-01")), Err(SubscriptionError::Shape(_))));
    assert!(matches!(
        request(&|b| b["destination"]["protocol"] = json!("TCP")),
        Err(SubscriptionError::Destination(_))
    ));
    assert!(matches!(
        request(&|b| b["destination"]["URI"] = json!("https://x:1")),
        Err(SubscriptionError::Destination(_))
    ));
    for portless in [
        "http://sandbox.localdomain",
        "http://sandbox.localdomain/telemetry",
        "http://sandbox.localdomain:/x",
        "http://x:0",
    ] {
        assert_eq!(
            request(&|b| b["destination"]["URI"] = json!(portless)).unwrap_err(),
            SubscriptionError::Destination("URI port is not provided"),
            "{portless}"
        );
    }
    assert!(request(&|b| b["destination"]["URI"] = json!("http://sandbox.localdomain:8080/telemetry")).is_ok());
}

proptest! {
    #[test]
    fn any_bytes_read_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_delivery(&body);
    }

    #[test]
    fn one_record_per_item_and_function_lines_as_written(lines in proptest::collection::vec(".*", 0..50)) {
        let body = Value::Array(
            lines.iter().map(|l| json!({"time": "2024-01-01T00:00:00Z", "type": "function", "record": l})).collect(),
        );
        let records = parse_delivery(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(records.len(), lines.len());
        for (record, line) in records.iter().zip(&lines) {
            prop_assert_eq!(&record.event, &Event::Function(LogLine::Text(line.clone())));
        }
    }
}
