//! The emulator against an extension written only from AWS's public documentation
//! (`tests/fixtures/doc_extension.py`, Python): every shape, status and sequence it observes must
//! be the documented one, through successes, a function error, a timeout, a crash and a spin-down.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use books_local::lambda::{LambdaService, LambdaSettings};
use serde_json::{json, Value};
use support::{eventually, Fixture};

const TIMEOUT: Duration = Duration::from_secs(3);

async fn invoke(service: &LambdaService, payload: Value) -> InvokeOutcome {
    let request = InvokeRequest {
        function_name: "fixture".into(),
        payload: payload.to_string().into_bytes(),
        ..Default::default()
    };
    service.invoke(request).await
}

/// The request id of a successful invocation (the runtime fixture echoes its headers).
fn answered(outcome: InvokeOutcome) -> String {
    match outcome {
        InvokeOutcome::Response(body) => {
            let body: Value = serde_json::from_slice(&body).unwrap();
            body["headers"]["lambda-runtime-aws-request-id"].as_str().unwrap().to_owned()
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Each extension instance's summary (one per execution environment), by the reason it was shut
/// down for.
fn summaries(fixture: &Fixture) -> BTreeMap<String, Value> {
    fixture
        .lines("extension.jsonl")
        .into_iter()
        .filter_map(|line| line.get("summary").cloned())
        .map(|summary| (summary["shutdownReason"].as_str().unwrap_or("none").to_owned(), summary))
        .collect()
}

/// What the extension found the emulator doing differently from the documentation.
fn discrepancies(fixture: &Fixture) -> Vec<Value> {
    fixture.lines("extension.jsonl").into_iter().filter(|line| line.get("check").is_some()).collect()
}

/// Shows the discrepancies when the test fails before it asserts there are none (an invocation
/// that went wrong because the emulator accepted a request it should have refused).
struct ShowDiscrepancies<'a>(&'a Fixture);

impl Drop for ShowDiscrepancies<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for discrepancy in discrepancies(self.0) {
                eprintln!("discrepancy: {discrepancy}");
            }
        }
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

/// Statuses of the environment's platform.report records, in the order of its INVOKE events.
fn statuses(summary: &Value) -> Vec<&str> {
    strings(&summary["requestIds"])
        .into_iter()
        .map(|id| summary["statuses"][id].as_str().unwrap_or_else(|| panic!("no report for {id}: {summary}")))
        .collect()
}

fn count(summary: &Value, kind: &str) -> u64 {
    summary["telemetry"][kind].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_extension_written_from_the_documentation_finds_nothing_to_disagree_with() {
    let extension = support::python_script_extension("doc_extension.py");
    let fixture = Fixture::with_extension_binary(TIMEOUT, Some(extension), &[]);
    let settings = LambdaSettings { aws_endpoint_url: Some("http://127.0.0.1:9".into()), ..LambdaSettings::default() };
    let _show = ShowDiscrepancies(&fixture);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings);

    // One environment: two successes and a function error keep it; the timeout ends it.
    let first = answered(invoke(&service, json!({"print": ["doc line 1"]})).await);
    service.idle("fixture").await;
    let second = answered(invoke(&service, json!({"print": ["doc line 2"]})).await);
    service.idle("fixture").await;
    let failed = invoke(&service, json!({"print": ["doc line error"], "error": "Doc.Failure"})).await;
    assert!(matches!(failed, InvokeOutcome::FunctionError { .. }), "{failed:?}");
    service.idle("fixture").await;
    assert_eq!(invoke(&service, json!({"sleep_ms": 20_000})).await, InvokeOutcome::Timeout);
    // A second one, ended by its runtime's crash.
    let crashed = invoke(&service, json!({"exit": 3})).await;
    assert!(matches!(crashed, InvokeOutcome::Failed { .. }), "{crashed:?}");
    // A third, spun down with the service.
    let last = answered(invoke(&service, json!({"print": ["doc line 3"]})).await);
    service.shutdown().await;

    eventually("a summary from each environment's extension", || summaries(&fixture).len() == 3).await;
    let discrepancies = discrepancies(&fixture);
    assert!(
        discrepancies.is_empty(),
        "the emulator disagrees with AWS's documentation:\n{}",
        discrepancies.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
    );
    let summaries = summaries(&fixture);
    let reasons: Vec<&str> = summaries.keys().map(String::as_str).collect();
    assert_eq!(reasons, ["FAILURE", "SPINDOWN", "TIMEOUT"]);
    for summary in summaries.values() {
        assert_eq!(summary["discrepancies"], 0, "{summary}");
        assert!(summary["checks"].as_u64().unwrap() > 100, "the checks ran: {summary}");
        assert_eq!(summary["extension"], "fixture-extension", "named by its file: {summary}");
        assert_eq!(summary["extensionLineSeen"], true, "its own output came back as extension telemetry");
        for kind in ["platform.initStart", "platform.initRuntimeDone", "platform.initReport"] {
            assert_eq!(count(summary, kind), 1, "{kind}: {summary}");
        }
        for kind in ["platform.extension", "platform.telemetrySubscription"] {
            assert!(count(summary, kind) >= 1, "{kind}: {summary}");
        }
        let invocations = summary["requestIds"].as_array().unwrap().len() as u64;
        for kind in ["platform.start", "platform.runtimeDone", "platform.report"] {
            assert_eq!(count(summary, kind), invocations, "one {kind} per INVOKE: {summary}");
        }
        for margin in summary["deadlineMarginsMs"].as_array().unwrap() {
            let margin = margin.as_u64().unwrap();
            assert!(margin > 0 && margin <= TIMEOUT.as_millis() as u64, "INVOKE deadline {margin} ms away");
        }
        for id in strings(&summary["requestIds"]) {
            if summary["statuses"][id] == "error" || summary["statuses"][id] == "failure" {
                assert!(summary["errorTypes"][id].is_string(), "a failed report says why: {summary}");
            }
        }
    }

    let timed_out = &summaries["TIMEOUT"];
    assert_eq!(strings(&timed_out["requestIds"])[..2], [first.as_str(), second.as_str()]);
    let outcomes = statuses(timed_out);
    assert_eq!(outcomes[..2], ["success", "success"]);
    assert!(outcomes[2..].iter().all(|s| *s != "success"), "the function error and the timeout: {outcomes:?}");
    let lines = timed_out["functionLines"].as_array().unwrap();
    for line in ["doc line 1", "doc line 2", "doc line error"] {
        assert!(lines.contains(&json!(line)), "{line} in {lines:?}");
    }

    let crashed = &summaries["FAILURE"];
    assert_eq!(crashed["requestIds"].as_array().unwrap().len(), 1);
    assert_ne!(statuses(crashed), ["success"]);

    let spun_down = &summaries["SPINDOWN"];
    assert_eq!(strings(&spun_down["requestIds"]), [last.as_str()]);
    assert_eq!(statuses(spun_down), ["success"]);
    assert!(spun_down["functionLines"].as_array().unwrap().contains(&json!("doc line 3")));
}
