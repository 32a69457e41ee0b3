//! The `books-telemetry` binary as the extension of a function run by the emulated Lambda
//! service (`books-local`), with its environments frozen between invocations as Lambda freezes
//! them, shipping to the local endpoint (moto, or a fault proxy in front of it):
//!
//! - an invocation that times out, crashes or runs out of memory is shipped — its lines, its
//!   `platform.report` with the status and its metrics — within the SHUTDOWN deadline that
//!   follows, by the background strategy that ships nothing at the end of an invocation;
//! - a `PutLogEvents` frozen mid-call, whose answer arrives after longer than the SDK's
//!   timeouts, is neither lost nor stored twice;
//! - under frequent traffic (adaptive strategy, in the background), an invocation that starts
//!   with a flush overdue ships what waited before its environment is frozen again.
//!
//! The function is the emulator's Python runtime fixture (`local/tests/fixtures/runtime.py`).

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

#[path = "../../local/tests/support/mod.rs"]
mod lambda;
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use books_local::lambda::{LambdaService, LambdaSettings};
use lambda::{process_state, Fixture};
use serde_json::{json, Value};
use support::{Fault, FaultProxy};

const STREAM: &str = "under-lambda";

/// A function whose one extension is books-telemetry, shipping to `endpoint`.
struct Rig {
    fixture: Fixture,
    service: Arc<LambdaService>,
    logs: LogsClient,
    group: String,
}

impl Rig {
    async fn new(name: &str, endpoint: &str, timeout: Duration, extra: &[(&str, &str)]) -> Self {
        let moto = books_testkit::endpoint();
        let logs = LogsClient::new(&support::sdk_config(moto).await);
        let group = support::log_group(&logs, name).await;
        let mut env = vec![
            ("BOOKS_TELEMETRY_LOG_GROUP", group.as_str()),
            ("BOOKS_TELEMETRY_LOG_STREAM", STREAM),
            ("BOOKS_TELEMETRY_SERVICE", "fixture"),
        ];
        env.extend_from_slice(extra);
        let extension = PathBuf::from(env!("CARGO_BIN_EXE_books-telemetry"));
        let fixture = Fixture::with_extension_binary(timeout, Some(extension), &env);
        let settings = LambdaSettings { aws_endpoint_url: Some(endpoint.to_owned()), ..LambdaSettings::default() };
        let service = LambdaService::new(vec![fixture.spec.clone()], settings);
        Self { fixture, service, logs, group }
    }

    /// Invokes, and insists on an answer: an invocation that never ran has no line to ship.
    async fn invoke_answered(&self, payload: Value) {
        let outcome = self.invoke(payload.clone()).await;
        assert!(matches!(outcome, InvokeOutcome::Response(_)), "{payload}: {outcome:?}");
    }

    async fn invoke(&self, payload: Value) -> InvokeOutcome {
        let request = InvokeRequest {
            function_name: "fixture".into(),
            payload: payload.to_string().into_bytes(),
            ..Default::default()
        };
        self.service.invoke(request).await
    }

    /// Every message shipped to the stream, parsed.
    async fn shipped(&self) -> Vec<Value> {
        support::read_stream(&self.logs, &self.group, STREAM)
            .await
            .into_iter()
            .map(|(_, message)| serde_json::from_str(&message).unwrap())
            .collect()
    }
}

/// Background flushes due at almost every invocation, through a fault proxy in front of moto.
async fn behind_a_proxy(name: &str) -> (Rig, FaultProxy) {
    let proxy = FaultProxy::start(books_testkit::endpoint()).await;
    let extra = [("BOOKS_TELEMETRY_FLUSH", "background"), ("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", "100")];
    let rig = Rig::new(name, &proxy.url, Duration::from_secs(30), &extra).await;
    (rig, proxy)
}

/// Each of `invoked` invocations' line (`invocation <n>`) shipped once, in order, and its report.
async fn each_invocation_shipped_once(rig: &Rig, invoked: usize) {
    let shipped = rig.shipped().await;
    let said: Vec<String> = lines(&shipped).into_iter().filter(|l| l.starts_with("invocation ")).collect();
    let expected: Vec<String> = (1..=invoked).map(|n| format!("invocation {n}")).collect();
    assert_eq!(said, expected, "each line once, in order");
    assert_eq!(reports(&shipped).len(), invoked, "one report per invocation");
}

/// The `message` of every function line shipped.
fn lines(shipped: &[Value]) -> Vec<String> {
    shipped.iter().filter_map(|m| m["message"].as_str()).map(str::to_owned).collect()
}

fn reports(shipped: &[Value]) -> Vec<&Value> {
    shipped.iter().filter(|m| m["type"] == "platform.report").map(|m| &m["record"]).collect()
}

/// The values of a platform metric in the EMF documents shipped.
fn metric(shipped: &[Value], name: &str) -> Vec<f64> {
    shipped
        .iter()
        .filter(|m| m.get("_aws").is_some())
        .filter_map(|m| m.get(name))
        .flat_map(|v| -> Vec<f64> {
            match v {
                Value::Array(values) => values.iter().filter_map(Value::as_f64).collect(),
                other => other.as_f64().into_iter().collect(),
            }
        })
        .collect()
}

/// Background flushing, the strategy that ships nothing at the end of an invocation: all an
/// ended environment's telemetry rides on its SHUTDOWN.
const BACKGROUND_ONLY: [(&str, &str); 2] =
    [("BOOKS_TELEMETRY_FLUSH", "background"), ("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", "600000")];

/// The function's timeout when the invocation is not meant to time out: ample, so that on a
/// loaded machine a crash or the memory limit ends it first.
const AMPLE: Duration = Duration::from_secs(30);

async fn ended_environment_is_shipped(
    name: &str,
    timeout: Duration,
    payload: Value,
    expected: (&str, Option<&str>, f64, f64),
) {
    let rig = Rig::new(name, books_testkit::endpoint(), timeout, &BACKGROUND_ONLY).await;
    let line = format!("the last words of {name}");
    let mut payload = payload;
    payload["print"] = json!([line]);
    let outcome = rig.invoke(payload).await;
    let (status, error_type, errors, timeouts) = expected;
    // The invocation itself ended as meant (not, say, its environment failing to start).
    match &outcome {
        InvokeOutcome::Timeout => assert_eq!(status, "timeout", "{outcome:?}"),
        InvokeOutcome::Failed { error_type: failed, .. } => assert_eq!(Some(failed.as_str()), error_type),
        other => panic!("{name}: {other:?}"),
    }
    // The invocation answers once its environment is gone: what it shipped, it shipped within
    // its SHUTDOWN.
    assert_eq!(rig.service.environments("fixture"), 0);
    let shipped = rig.shipped().await;
    assert!(lines(&shipped).contains(&line), "its lines: {shipped:?}");
    let reports = reports(&shipped);
    assert_eq!(reports.len(), 1, "{shipped:?}");
    assert_eq!(reports[0]["status"], status);
    assert_eq!(reports[0]["errorType"].as_str(), error_type);
    assert_eq!(metric(&shipped, "Errors"), [errors]);
    assert_eq!(metric(&shipped, "Timeouts"), [timeouts]);
    rig.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_invocation_is_shipped_within_its_shutdown() {
    ended_environment_is_shipped(
        "timeout",
        Duration::from_secs(2),
        json!({"sleep_ms": 30_000}),
        ("timeout", None, 0.0, 1.0),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_invocation_is_shipped_within_its_shutdown() {
    ended_environment_is_shipped("crash", AMPLE, json!({"exit": 3}), ("failure", Some("Runtime.ExitError"), 1.0, 0.0))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invocation_out_of_memory_is_shipped_within_its_shutdown() {
    let expected = ("error", Some("Runtime.OutOfMemory"), 1.0, 0.0);
    ended_environment_is_shipped("out-of-memory", AMPLE, json!({"allocate_mb": 400}), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_log_events_frozen_mid_call_is_neither_lost_nor_stored_twice() {
    let (rig, proxy) = behind_a_proxy("frozen-mid-call").await;
    let say = |n: usize| json!({"print": [format!("invocation {n}")]});
    // An invocation's background flush waits for its telemetry, which mostly comes after the
    // freeze: it runs at the next thaw, while the next invocation runs. Invoke until one flush
    // went through (the stream exists), then hold CloudWatch's answers until a PutLogEvents is
    // caught in flight by a freeze.
    let mut invoked = 0;
    let mut invoke_next = || {
        invoked += 1;
        assert!(invoked <= 100, "no background flush was caught by a freeze in 100 invocations");
        let payload = say(invoked);
        let rig = &rig;
        async move {
            rig.invoke_answered(payload).await;
            rig.service.idle("fixture").await;
        }
    };
    while proxy.count("PutLogEvents").1 == 0 {
        invoke_next().await;
    }
    proxy.set(Fault::HoldAnswer, usize::MAX);
    let runtime = rig.fixture.lines("runtime.jsonl")[0]["pid"].as_u64().unwrap();
    loop {
        invoke_next().await;
        // The flush this thaw started may still be on its way to the proxy.
        for _ in 0..40 {
            if proxy.count("PutLogEvents").1 > 0 && proxy.held() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if proxy.held() > 0 {
            break;
        }
    }
    lambda::eventually("the environment frozen with the answer held", || process_state(runtime) == 'T').await;
    let held_puts = proxy.count("PutLogEvents").1;
    // Frozen for longer than the SDK's attempt timeout (5 s); its answer comes after the thaw.
    tokio::time::sleep(Duration::from_secs(6)).await;
    invoke_next().await;
    proxy.release();
    rig.service.shutdown().await;
    each_invocation_shipped_once(&rig, invoked).await;
    assert!(held_puts >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_cloudwatch_under_freeze_loses_nothing_and_stores_nothing_twice() {
    let (rig, proxy) = behind_a_proxy("failing-under-freeze").await;
    let mut invoked = 0;
    // Throttled, then unavailable, then unreachable, each for a few calls, while invocations
    // come and go and the environment is frozen between them.
    for fault in [Fault::Throttle, Fault::Unavailable, Fault::Drop] {
        let faulted = proxy.count("PutLogEvents").0 + proxy.count("CreateLogStream").0;
        proxy.set(fault, 3);
        for _ in 0..100 {
            if proxy.count("PutLogEvents").0 + proxy.count("CreateLogStream").0 >= faulted + 3 {
                break;
            }
            invoked += 1;
            rig.invoke_answered(json!({"print": [format!("invocation {invoked}")]})).await;
            rig.service.idle("fixture").await;
        }
        assert_eq!(
            proxy.count("PutLogEvents").0 + proxy.count("CreateLogStream").0,
            faulted + 3,
            "{fault:?} met 3 calls within 100 invocations"
        );
    }
    rig.service.shutdown().await;
    each_invocation_shipped_once(&rig, invoked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invocation_that_starts_with_a_flush_overdue_ships_before_its_environment_freezes() {
    let moto = books_testkit::endpoint();
    // The default strategy (adaptive), its interval shortened to a second.
    let rig = Rig::new("overdue", moto, AMPLE, &[("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", "1000")]).await;
    let mut invoked = 0;
    let mut invoke_next = || {
        invoked += 1;
        let payload = json!({"print": [format!("invocation {invoked}")]});
        let rig = &rig;
        async move {
            rig.invoke_answered(payload).await;
            rig.service.idle("fixture").await;
        }
    };
    // A burst: frequent traffic, flushed in the background. Its last lines wait in the frozen
    // environment (a background flush needs the runtime's telemetry, delivered after the freeze).
    for _ in 0..10 {
        invoke_next().await;
    }
    // An interval without invocations: the next one starts with a flush overdue, while the
    // recent rate still says frequent (10 invocations in little more than the interval).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    invoke_next().await;
    // Idle: the runtime and the extension wait for the next event, the environment is frozen.
    // Nothing more will run in it, so what it shipped is all there is until the next invocation.
    let shipped = rig.shipped().await;
    let said: Vec<String> = lines(&shipped).into_iter().filter(|l| l.starts_with("invocation ")).collect();
    let expected: Vec<String> = (1..=invoked).map(|n| format!("invocation {n}")).collect();
    assert_eq!(said, expected, "every line shipped before the environment froze, once, in order");
    rig.service.shutdown().await;
}
