//! Conformance of the emulated Lambda execution environment: the Runtime, Extensions and
//! Telemetry APIs as the fixtures in `tests/fixtures` see them, and the documented lifecycle.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use books_local::invoke::{AliasRoute, FunctionSpec, InvokeOutcome, InvokeRequest, Invoker};
use books_local::lambda::observe::Observation;
use books_local::lambda::{LambdaService, LambdaSettings, SHUTDOWN_WITH_EXTENSIONS};
use serde_json::{json, Value};
use support::{alive, eventually, process_state, Fixture};

fn settings() -> LambdaSettings {
    LambdaSettings { aws_endpoint_url: Some("http://127.0.0.1:9".into()), ..LambdaSettings::default() }
}

async fn invoke(service: &LambdaService, payload: Value) -> InvokeOutcome {
    let request = InvokeRequest {
        function_name: "fixture".into(),
        payload: payload.to_string().into_bytes(),
        client_context: Some("eyJjdXN0b20iOnt9fQ==".into()),
        cognito_identity: Some(r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#.into()),
        ..Default::default()
    };
    service.invoke(request).await
}

/// The init and invocation timelines observed so far (freeze and thaw left out).
fn timelines(observations: &mut tokio::sync::mpsc::UnboundedReceiver<Observation>) -> Vec<Observation> {
    let mut seen = Vec::new();
    while let Ok(observation) = observations.try_recv() {
        if matches!(observation, Observation::Init(_) | Observation::Invoke(_)) {
            seen.push(observation);
        }
    }
    seen
}

fn response(outcome: InvokeOutcome) -> Value {
    match outcome {
        InvokeOutcome::Response(body) => serde_json::from_slice(&body).unwrap(),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invocation_reaches_the_runtime_with_the_documented_headers() {
    let fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let answer = response(invoke(&service, json!({"echo": "hello"})).await);
    assert_eq!(answer["echo"], "hello");
    let headers = &answer["headers"];
    let header = |name: &str| {
        headers[name.to_ascii_lowercase()].as_str().unwrap_or_else(|| panic!("header {name} in {headers}")).to_owned()
    };
    assert_eq!(header("Lambda-Runtime-Aws-Request-Id").len(), 36);
    assert_eq!(header("Content-Type"), "application/json");
    assert_eq!(header("Lambda-Runtime-Invoked-Function-Arn"), fixture.spec.arn);
    assert!(header("Lambda-Runtime-Trace-Id").starts_with("Root=1-"));
    // Invoked with base64 (the Invoke API's encoding), delivered as the JSON it encodes.
    assert_eq!(header("Lambda-Runtime-Client-Context"), r#"{"custom":{}}"#);
    assert_eq!(
        header("Lambda-Runtime-Cognito-Identity"),
        r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#
    );
    let deadline: u64 = header("Lambda-Runtime-Deadline-Ms").parse().unwrap();
    assert!(deadline >= before + 4_000 && deadline <= before + 15_000, "deadline {deadline} vs {before}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runtime_and_extensions_get_the_documented_environment() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[("MY_SETTING", "42")]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    response(invoke(&service, json!({})).await);
    let runtime = &fixture.lines("runtime.jsonl")[0]["env"];
    for (name, value) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "fixture"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/fixture"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("_HANDLER", "runtime.py"),
        ("TZ", ":UTC"),
        ("MY_SETTING", "42"),
    ] {
        assert_eq!(runtime[name], value, "{name}");
    }
    for name in ["AWS_LAMBDA_RUNTIME_API", "AWS_ACCESS_KEY_ID", "AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_TASK_ROOT"] {
        assert!(runtime[name].is_string(), "{name} is set for the runtime");
    }
    assert!(runtime.get("HOME").is_none() && runtime.get("CARGO").is_none(), "nothing leaks from the host");
    let extension = &fixture.extension("register")[0]["env"];
    for hidden in books_local::lambda::HIDDEN_FROM_EXTENSIONS {
        assert!(extension.get(hidden).is_none(), "{hidden} is hidden from extensions");
    }
    assert_eq!(extension["AWS_LAMBDA_FUNCTION_NAME"], "fixture");
    assert_eq!(extension["MY_SETTING"], "42");
    assert_eq!(extension["AWS_LAMBDA_RUNTIME_API"], runtime["AWS_LAMBDA_RUNTIME_API"]);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_function_error_keeps_its_type() {
    let fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    match invoke(&service, json!({"error": "Books.Broken"})).await {
        InvokeOutcome::FunctionError { error_type, payload } => {
            assert_eq!(error_type, "Books.Broken");
            assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap()["errorType"], "Books.Broken");
        }
        other => panic!("{other:?}"),
    }
    service.idle("fixture").await;
    response(invoke(&service, json!({"echo": 1})).await);
    assert_eq!(fixture.lines("runtime.jsonl").len(), 1, "a function error keeps the environment");
    service.shutdown().await;
}

/// Versions and aliases as Lambda has them: an alias runs the version it names, with its own
/// configuration; a weighted alias splits invocations between two; moving it moves the next
/// invocations; nothing runs `$LATEST` unless asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alias_runs_the_versions_it_names_and_follows_them_when_they_move() {
    let fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let good = FunctionSpec { version: "1".into(), ..fixture.spec.clone() };
    // Version 2 is a bad release: its init fails.
    let mut bad = FunctionSpec { version: "2".into(), ..fixture.spec.clone() };
    bad.environment.insert("FIXTURE_INIT_ERROR".into(), "1".into());
    let service = LambdaService::new(vec![fixture.spec.clone(), good, bad], settings());
    let via = |qualifier: &str| InvokeRequest {
        function_name: "fixture".into(),
        qualifier: Some(qualifier.into()),
        payload: b"{}".to_vec(),
        ..Default::default()
    };
    let to = |version: &str, additional: Option<(&str, f64)>| AliasRoute {
        version: version.into(),
        additional: additional.map(|(v, w)| (v.into(), w)),
    };
    assert!(!service.set_alias("fixture", "live", to("9", None)), "a version the function lacks is refused");
    assert!(service.set_alias("fixture", "live", to("1", None)));
    assert_eq!(service.invoke(via("canary")).await, InvokeOutcome::NotFound, "no such alias");
    assert_eq!(service.invoke(via("7")).await, InvokeOutcome::NotFound, "no such version");

    let answer = response(service.invoke(via("live")).await);
    service.idle("fixture").await;
    assert_eq!(answer["headers"]["lambda-runtime-invoked-function-arn"], format!("{}:live", fixture.spec.arn));

    // Half of the invocations to version 2: both outcomes come (all 40 on one side: 2^-39).
    assert!(service.set_alias("fixture", "live", to("1", Some(("2", 0.5)))));
    let (mut answered, mut failed) = (0, 0);
    for _ in 0..40 {
        // Each after the last is wholly over (post-runtime included): one warm environment.
        service.idle("fixture").await;
        match service.invoke(via("live")).await {
            InvokeOutcome::Response(_) => answered += 1,
            InvokeOutcome::Failed { error_type, .. } if error_type == "Runtime.InitError" => failed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(answered > 0 && failed > 0, "answered {answered}, failed {failed}");

    // Rolled back: every invocation answered, and no environment of version 2 started again.
    assert!(service.set_alias("fixture", "live", to("1", None)));
    for _ in 0..10 {
        service.idle("fixture").await;
        response(service.invoke(via("live")).await);
    }
    let started: Vec<String> = fixture
        .lines("runtime.jsonl")
        .iter()
        .map(|l| l["env"]["AWS_LAMBDA_FUNCTION_VERSION"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(started.iter().all(|v| v == "1" || v == "2"), "only the alias's versions ran: {started:?}");
    assert_eq!(started.iter().filter(|v| *v == "1").count(), 1, "version 1 stayed warm throughout: {started:?}");
    assert_eq!(started.iter().filter(|v| *v == "2").count(), 2 * failed, "two inits per failed invocation");
    assert_eq!(service.environments("fixture"), 1);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_errors_fail_the_invocation() {
    let fixture = Fixture::new(Duration::from_secs(5), false, &[("FIXTURE_INIT_ERROR", "1")]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    match invoke(&service, json!({})).await {
        InvokeOutcome::Failed { error_type, message } => {
            assert_eq!(error_type, "Runtime.InitError");
            assert!(message.contains("Runtime.ConfigError"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fixture.lines("runtime.jsonl").len(), 2, "the failed init is retried once, in the invoke phase");
    assert_eq!(service.environments("fixture"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_init_over_its_limit_is_retried_inside_the_first_invocation_within_its_timeout() {
    let fixture = Fixture::new(
        Duration::from_secs(30),
        true,
        &[("FIXTURE_TELEMETRY", LAMBDA_DEFAULT_BUFFERING), ("FIXTURE_SLOW_INIT_ONCE_MS", "4000")],
    );
    let settings = LambdaSettings { init_limit: Duration::from_secs(2), ..settings() };
    let service = LambdaService::new(vec![fixture.spec.clone()], settings);
    let answer = response(invoke(&service, json!({"echo": "after a retried init"})).await);
    assert_eq!(answer["echo"], "after a retried init");
    service.shutdown().await;
    assert_eq!(fixture.lines("runtime.jsonl").len(), 2, "the runtime started twice");
    let records = fixture.telemetry();
    let of = |kind: &str| -> Vec<Value> {
        records.iter().filter(|r| r["type"] == kind).map(|r| r["record"].clone()).collect()
    };
    let phases: Vec<Value> = of("platform.initStart").iter().map(|r| r["phase"].clone()).collect();
    assert_eq!(phases, [json!("init"), json!("invoke")]);
    let reports = of("platform.initReport");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(
        (&reports[0]["phase"], &reports[0]["status"], &reports[0]["errorType"]),
        (&json!("init"), &json!("timeout"), &json!("Sandbox.Timedout"))
    );
    assert_eq!((&reports[1]["phase"], &reports[1]["status"]), (&json!("invoke"), &json!("success")));
    let shutdowns: Vec<Value> =
        fixture.extension("event").into_iter().filter(|e| e["eventType"] == "SHUTDOWN").collect();
    assert_eq!(shutdowns[0]["shutdownReason"], "FAILURE", "the timed-out init's environment is shut down");
}

/// Lines the runtime fixture wrote when it got SIGTERM.
fn sigterms(fixture: &Fixture) -> Vec<Value> {
    fixture.lines("runtime.jsonl.sigterm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_extensions_the_runtime_gets_sigterm_and_its_share_before_the_extensions_get_shutdown() {
    let fixture = Fixture::new(
        Duration::from_secs(5),
        true,
        // Quick deliveries: a runtime still talking after SHUTDOWN would be heard.
        &[("FIXTURE_TELEMETRY", r#"{"timeoutMs": 25}"#), ("FIXTURE_IGNORE_SIGTERM", "1")],
    );
    // Lambda's 300 ms is what a Python runtime thawed on a loaded 2-core machine sometimes needs
    // just to run its handler (a CI run saw no SIGTERM line): the emulator's order of things is
    // under test here, not that bound, so the runtime gets longer.
    let settings = LambdaSettings { shutdown_runtime_grace: Duration::from_millis(1_200), ..settings() };
    let service = LambdaService::new(vec![fixture.spec.clone()], settings);
    response(invoke(&service, json!({})).await);
    service.shutdown().await;
    let sigterm = sigterms(&fixture);
    assert_eq!(sigterm.len(), 1, "the runtime got SIGTERM once");
    let (before, after) = split_at_shutdown(&fixture);
    let function_lines = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["kind"] == "telemetry")
            .flat_map(|l| l["value"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["type"] == "function")
            .map(|r| r["record"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let said = function_lines(&before);
    assert!(said.iter().any(|l| l == "runtime got SIGTERM"), "{said:?}");
    assert!(said.iter().filter(|l| l.starts_with("draining")).count() >= 3, "it ran on after SIGTERM: {said:?}");
    assert_eq!(function_lines(&after), Vec::<String>::new(), "the runtime was stopped before SHUTDOWN went out");
    let deadline = after[0]["value"]["deadlineMs"].as_f64().unwrap();
    let sigterm_ms = sigterm[0]["at"].as_f64().unwrap() * 1000.0;
    let phase = SHUTDOWN_WITH_EXTENSIONS.as_millis() as f64;
    assert!(
        deadline > sigterm_ms && deadline - sigterm_ms <= phase + 50.0,
        "deadline {deadline}, SIGTERM at {sigterm_ms}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_extensions_the_runtime_is_stopped_without_sigterm() {
    let fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    response(invoke(&service, json!({})).await);
    let runtime = fixture.lines("runtime.jsonl")[0]["pid"].as_u64().unwrap();
    service.shutdown().await;
    assert_eq!(sigterms(&fixture), Vec::<Value>::new(), "no graceful shutdown without extensions (0 ms)");
    assert!(!std::path::Path::new(&format!("/proc/{runtime}")).exists(), "the runtime is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_kills_the_environment_and_the_next_call_starts_a_new_one() {
    let fixture = Fixture::new(Duration::from_secs(1), true, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let started = Instant::now();
    assert_eq!(invoke(&service, json!({"sleep_ms": 5_000})).await, InvokeOutcome::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout cut the invocation short");
    assert_eq!(service.environments("fixture"), 0);
    let shutdowns: Vec<Value> =
        fixture.extension("event").into_iter().filter(|e| e["eventType"] == "SHUTDOWN").collect();
    assert_eq!(shutdowns[0]["shutdownReason"], "TIMEOUT");
    response(invoke(&service, json!({"echo": "again"})).await);
    let starts = fixture.lines("runtime.jsonl");
    assert_eq!(starts.len(), 2, "re-initialised");
    assert_ne!(starts[0]["pid"], starts[1]["pid"]);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_is_a_failure_and_extensions_hear_failure() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    match invoke(&service, json!({"exit": 3})).await {
        InvokeOutcome::Failed { error_type, .. } => assert_eq!(error_type, "Runtime.ExitError"),
        other => panic!("{other:?}"),
    }
    let shutdowns: Vec<Value> =
        fixture.extension("event").into_iter().filter(|e| e["eventType"] == "SHUTDOWN").collect();
    assert_eq!(shutdowns.len(), 1);
    assert_eq!(shutdowns[0]["shutdownReason"], "FAILURE");
    assert_eq!(service.environments("fixture"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn extensions_register_then_get_invoke_and_shutdown_events() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let first = response(invoke(&service, json!({})).await);
    service.idle("fixture").await;
    response(invoke(&service, json!({})).await);
    service.shutdown().await;
    let register = &fixture.extension("register")[0]["body"];
    assert_eq!(*register, json!({"functionName": "fixture", "functionVersion": "$LATEST", "handler": "runtime.py"}));
    let events = fixture.extension("event");
    let kinds: Vec<&str> = events.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["INVOKE", "INVOKE", "SHUTDOWN"]);
    let invoke_event = &events[0];
    assert_eq!(invoke_event["requestId"], first["headers"]["lambda-runtime-aws-request-id"]);
    assert_eq!(invoke_event["invokedFunctionArn"], fixture.spec.arn);
    assert_eq!(invoke_event["tracing"]["type"], "X-Amzn-Trace-Id");
    assert!(invoke_event["deadlineMs"].as_u64().unwrap() > 0);
    assert_eq!(events[2]["shutdownReason"], "SPINDOWN");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(events[2]["deadlineMs"].as_u64().unwrap() <= now + 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_caller_gets_the_response_while_the_environment_waits_for_its_extensions() {
    let fixture = Fixture::new(
        Duration::from_secs(5),
        true,
        &[("FIXTURE_AFTER_INVOKE_MS", "1500"), ("FIXTURE_TELEMETRY", r#"{"timeoutMs": 25}"#)],
    );
    let (observer, mut observations) = tokio::sync::mpsc::unbounded_channel();
    let service =
        LambdaService::new(vec![fixture.spec.clone()], LambdaSettings { observer: Some(observer), ..settings() });
    response(invoke(&service, json!({})).await);
    // The extension still works on the invocation for 1.5 s: its invoke phase is not over...
    let seen = timelines(&mut observations);
    assert!(matches!(seen.as_slice(), [Observation::Init(_)]), "only the init is over: {seen:?}");
    // ...so its environment is busy, and the next call starts another one.
    response(invoke(&service, json!({})).await);
    assert_eq!(service.environments("fixture"), 2);
    service.shutdown().await;
    assert_eq!(service.environments("fixture"), 0, "shutdown waited for the busy environments");
    let telemetry = fixture.telemetry();
    let record =
        |kind: &str| telemetry.iter().find(|r| r["type"] == kind).unwrap_or_else(|| panic!("{kind}"))["record"].clone();
    let runtime_ms = record("platform.runtimeDone")["metrics"]["durationMs"].as_f64().unwrap();
    let report_ms = record("platform.report")["metrics"]["durationMs"].as_f64().unwrap();
    assert!(report_ms >= runtime_ms + 300.0, "post-runtime time shows in the report: {runtime_ms} vs {report_ms}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_observer_gets_the_init_and_invocation_timelines() {
    let fixture = Fixture::new(
        Duration::from_secs(5),
        true,
        &[("FIXTURE_AFTER_INVOKE_MS", "200"), ("FIXTURE_TELEMETRY", r#"{"timeoutMs": 25}"#)],
    );
    let (observer, mut observations) = tokio::sync::mpsc::unbounded_channel();
    let service =
        LambdaService::new(vec![fixture.spec.clone()], LambdaSettings { observer: Some(observer), ..settings() });
    for _ in 0..2 {
        response(invoke(&service, json!({})).await);
        // The environment is busy until its invoke phase is over: then the next call reuses it.
        service.idle("fixture").await;
    }
    service.shutdown().await;
    let seen = timelines(&mut observations);
    let [Observation::Init(init), Observation::Invoke(cold), Observation::Invoke(warm)] = seen.as_slice() else {
        panic!("one init then two invocations, got {seen:?}");
    };
    assert_eq!(init.function, "fixture");
    let [extension] = init.extensions.as_slice() else { panic!("one extension: {init:?}") };
    assert!(extension.pid > 0 && init.runtime_pid > 0 && extension.pid != init.runtime_pid);
    let subscribed = extension.subscribed.expect("the fixture subscribes to telemetry");
    let ready = extension.ready.expect("the extension called next");
    assert!(extension.spawned <= extension.registered && extension.registered <= subscribed && subscribed <= ready);
    assert!(ready <= init.init, "init ends once every extension waits: {init:?}");
    assert_eq!(extension.ready_after_spawn(), Some(ready - extension.spawned));
    assert!(cold.cold && !warm.cold && cold.request_id != warm.request_id);
    for invocation in [cold, warm] {
        // The extension sleeps 200 ms after its INVOKE event, which came when the runtime's did.
        let whole = invocation.runtime + invocation.post_runtime;
        assert!(whole >= Duration::from_millis(200), "the extension kept the invocation open: {invocation:?}");
        assert!(
            invocation.post_runtime > Duration::from_millis(100),
            "mostly after the runtime's answer: {invocation:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telemetry_carries_platform_events_function_and_extension_logs() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[("FIXTURE_TELEMETRY", r#"{"timeoutMs": 25}"#)]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let answer = response(
        invoke(&service, json!({"print": ["plain text", r#"{"level":"INFO","message":"structured"}"#]})).await,
    );
    service.shutdown().await;
    let telemetry = fixture.telemetry();
    let kinds: Vec<&str> = telemetry.iter().map(|r| r["type"].as_str().unwrap()).collect();
    for kind in [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.telemetrySubscription",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
        "function",
        "extension",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(position("platform.start") < position("platform.runtimeDone"));
    assert!(position("platform.runtimeDone") < position("platform.report"));
    let functions: Vec<&Value> = telemetry.iter().filter(|r| r["type"] == "function").map(|r| &r["record"]).collect();
    assert!(functions.contains(&&json!("plain text")));
    assert!(functions.contains(&&json!({"level": "INFO", "message": "structured"})), "JSON lines are objects");
    let report = &telemetry[position("platform.report")]["record"];
    assert_eq!(report["requestId"], answer["headers"]["lambda-runtime-aws-request-id"]);
    assert_eq!(report["status"], "success");
    let metrics = &report["metrics"];
    assert!(metrics["maxMemoryUsedMB"].as_u64().unwrap() > 0, "memory from /proc: {metrics}");
    assert_eq!(metrics["memorySizeMB"], 256);
    assert!(metrics["billedDurationMs"].as_u64().unwrap() as f64 >= metrics["durationMs"].as_f64().unwrap());
    assert!(metrics["initDurationMs"].as_f64().unwrap() > 0.0, "the cold start's report has the init duration");
    assert!(telemetry.iter().any(|r| r["type"] == "extension" && r["record"] == "extension ready"));
    // runtimeDone as AWS documents it: the response's latency, then its transfer, back to back.
    let done = &telemetry[position("platform.runtimeDone")]["record"];
    let spans = done["spans"].as_array().unwrap_or_else(|| panic!("runtimeDone without spans: {done}"));
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["responseLatency", "responseDuration"]);
    let start = |span: &Value| chrono::DateTime::parse_from_rfc3339(span["start"].as_str().unwrap()).unwrap();
    let latency = spans[0]["durationMs"].as_f64().unwrap();
    assert!(latency > 0.0 && latency <= done["metrics"]["durationMs"].as_f64().unwrap() + 1.0, "{done}");
    assert!(spans[1]["durationMs"].as_f64().unwrap() >= 0.0);
    let gap = (start(&spans[1]) - start(&spans[0])).num_milliseconds() as f64;
    assert!((gap - latency).abs() <= 2.0, "the transfer starts when the latency ends: {spans:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_oldest_schema_delivers_function_lines_as_strings() {
    let fixture = Fixture::new(
        Duration::from_secs(5),
        true,
        &[("FIXTURE_TELEMETRY", r#"{"timeoutMs": 25}"#), ("FIXTURE_SCHEMA", "2022-07-01")],
    );
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    response(invoke(&service, json!({"print": [r#"{"message":"json"}"#]})).await);
    service.shutdown().await;
    let line = fixture.telemetry().into_iter().find(|r| r["type"] == "function").unwrap();
    assert_eq!(line["record"], r#"{"message":"json"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telemetry_batches_respect_max_items_and_lose_nothing() {
    let fixture =
        Fixture::new(Duration::from_secs(20), true, &[("FIXTURE_TELEMETRY", r#"{"maxItems": 1000, "timeoutMs": 25}"#)]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let lines: Vec<String> = (0..2_500).map(|n| format!("line {n}")).collect();
    response(invoke(&service, json!({"print": lines})).await);
    service.shutdown().await;
    let batches = fixture.extension("telemetry");
    assert!(batches.iter().all(|b| b.as_array().unwrap().len() <= 1_000), "maxItems honoured");
    let delivered: Vec<String> = fixture
        .telemetry()
        .into_iter()
        .filter(|r| r["type"] == "function")
        .map(|r| r["record"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = lines;
    expected.push("runtime got SIGTERM".into()); // its last words, at spin-down
    assert_eq!(delivered, expected, "every line, once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_cannot_keep_up_gets_logs_dropped_with_what_it_lost() {
    let fixture = Fixture::new(
        Duration::from_secs(60),
        true,
        &[("FIXTURE_TELEMETRY", r#"{"maxItems": 1000, "timeoutMs": 25}"#), ("FIXTURE_TELEMETRY_DELAY_MS", "300")],
    );
    // Not frozen: the slow subscriber takes its batches between invocations too.
    let service = LambdaService::new(vec![fixture.spec.clone()], LambdaSettings { freeze: false, ..settings() });
    // More lines at once than the platform keeps for a subscriber this slow.
    let printed = 30_000;
    let lines: Vec<String> = (0..printed).map(|n| format!("line {n}")).collect();
    response(invoke(&service, json!({"print": lines})).await);
    let tally = |records: &[Value]| -> (u64, u64) {
        let delivered = records
            .iter()
            .filter(|r| r["type"] == "function" && r["record"].as_str().is_some_and(|l| l.starts_with("line ")))
            .count() as u64;
        let dropped = records
            .iter()
            .filter(|r| r["type"] == "platform.logsDropped")
            .map(|r| r["record"]["droppedRecords"].as_u64().unwrap())
            .sum::<u64>();
        (delivered, dropped)
    };
    eventually("every line delivered or counted as dropped", || {
        let (delivered, dropped) = tally(&fixture.telemetry());
        delivered + dropped >= printed as u64
    })
    .await;
    service.shutdown().await;
    let records = fixture.telemetry();
    let (delivered, dropped) = tally(&records);
    assert!(dropped > 0, "the platform dropped and said so");
    assert!(records.iter().filter(|r| r["type"] == "platform.logsDropped").all(|r| r["record"]["droppedBytes"]
        .as_u64()
        .unwrap()
        > 0
        && r["record"]["reason"].as_str().is_some_and(|reason| !reason.is_empty())));
    // Every line is either delivered or counted, once; the drops may also count a few other
    // records (the invocation's platform.start, runtimeDone and report, the SIGTERM line).
    let accounted = delivered + dropped;
    assert!(
        (printed as u64..=printed as u64 + 4).contains(&accounted),
        "{delivered} delivered + {dropped} dropped of {printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_scales_out_to_the_reserved_limit_then_throttles() {
    let fixture = Fixture::new(Duration::from_secs(10), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let service_ref = &service;
    let outcomes =
        futures::future::join_all((0..3).map(|_| async move { invoke(service_ref, json!({"sleep_ms": 1_500})).await }))
            .await;
    let responses = outcomes.iter().filter(|o| matches!(o, InvokeOutcome::Response(_))).count();
    let throttled = outcomes.iter().filter(|o| **o == InvokeOutcome::Throttled).count();
    assert_eq!((responses, throttled), (2, 1), "{outcomes:?}");
    assert_eq!(service.environments("fixture"), 2, "two cold starts, reserved concurrency 2");
    service.idle("fixture").await;
    response(invoke(&service, json!({})).await);
    assert_eq!(fixture.lines("runtime.jsonl").len(), 2, "a warm environment was reused");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserving_zero_concurrency_throttles_even_a_warm_function_until_it_is_removed() {
    let fixture = Fixture::new(Duration::from_secs(10), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    response(invoke(&service, json!({})).await);
    service.idle("fixture").await;
    // The console's "Throttle": PutFunctionConcurrency with 0.
    assert!(service.set_reserved_concurrency("fixture", Some(0)));
    assert_eq!(invoke(&service, json!({})).await, InvokeOutcome::Throttled, "a warm environment is no way round it");
    assert_eq!(service.environments("fixture"), 1, "the idle environment stays");
    // DeleteFunctionConcurrency: the account's default again, and the warm environment serves.
    assert!(service.set_reserved_concurrency("fixture", None));
    response(invoke(&service, json!({})).await);
    assert_eq!(fixture.lines("runtime.jsonl").len(), 1, "one init: the warm environment served");
    // Lowered: the invocations beyond the limit are throttled (an environment counts until its
    // extensions are done with the invocation, hence the wait).
    service.idle("fixture").await;
    assert!(service.set_reserved_concurrency("fixture", Some(1)));
    let service_ref = &service;
    let outcomes =
        futures::future::join_all((0..2).map(|_| async move { invoke(service_ref, json!({"sleep_ms": 1_500})).await }))
            .await;
    let throttled = outcomes.iter().filter(|o| **o == InvokeOutcome::Throttled).count();
    assert_eq!(throttled, 1, "{outcomes:?}");
    assert!(!service.set_reserved_concurrency("no-such-function", Some(1)));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_hanging_up_loses_neither_the_invocation_nor_its_environment() {
    let fixture = Fixture::new(Duration::from_secs(10), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    for _ in 0..3 {
        // The caller gives up while the function still works (as a client closing its connection).
        let gave_up =
            tokio::time::timeout(Duration::from_millis(300), invoke(&service, json!({"sleep_ms": 600}))).await;
        assert!(gave_up.is_err(), "neither throttled nor failed: the call outlived its caller");
        tokio::time::timeout(Duration::from_secs(30), service.idle("fixture"))
            .await
            .expect("the abandoned invocation ended in its environment, which is free again");
    }
    // Reserved concurrency is 2: had the abandoned invocations kept their slots, the third call
    // above and this one would be throttled.
    response(invoke(&service, json!({})).await);
    assert!(service.environments("fixture") <= 2, "abandoned invocations finished in their environments");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_environments_are_spun_down() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[]);
    let settings = LambdaSettings { idle_timeout: Duration::from_millis(300), ..settings() };
    let service: Arc<LambdaService> = LambdaService::new(vec![fixture.spec.clone()], settings);
    response(invoke(&service, json!({})).await);
    eventually("the idle environment to spin down", || service.environments("fixture") == 0).await;
    eventually("the extension to hear SPINDOWN", || {
        fixture.extension("event").iter().any(|e| e["eventType"] == "SHUTDOWN" && e["shutdownReason"] == "SPINDOWN")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_function_is_not_found() {
    let fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let request = InvokeRequest { function_name: "nope".into(), ..Default::default() };
    assert_eq!(service.invoke(request).await, InvokeOutcome::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_extension_on_the_lambda_extension_crate_runs_under_the_emulator() {
    let fixture = Fixture::with_extension_binary(Duration::from_secs(5), Some(support::crate_extension()), &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let first = response(invoke(&service, json!({})).await);
    service.idle("fixture").await;
    response(invoke(&service, json!({})).await);
    service.shutdown().await;
    let events = fixture.extension("event");
    let kinds: Vec<&str> = events.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["INVOKE", "INVOKE", "SHUTDOWN"]);
    assert!(events.iter().all(|e| e["source"] == "lambda-extension"));
    assert_eq!(events[0]["requestId"], first["headers"]["lambda-runtime-aws-request-id"]);
    assert_eq!(events[2]["shutdownReason"], "SPINDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_apis_refuse_unknown_invocations_oversize_responses_and_late_registrations() {
    let fixture = Fixture::new(Duration::from_secs(10), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let answer = response(invoke(&service, json!({"probe": true})).await);
    // Extensions register during the init phase only.
    assert_eq!(answer["echo"], json!({"unknown_id": 400, "too_large": 413, "late_registration": 403}));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_a_function_started_outlives_its_environment() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let child = response(invoke(&service, json!({"spawn": true})).await)["echo"]["child"].as_u64().unwrap();
    assert!(alive(child), "the fixture's child {child} runs while its environment does");
    service.shutdown().await;
    eventually("the child ended with its environment", || !alive(child)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_an_environment_started_outlives_the_emulator_killed() {
    let fixture = Fixture::new(Duration::from_secs(30), true, &[]);
    let spec = &fixture.spec;
    let mut host = std::process::Command::new(support::example("lambda-host"))
        .arg(&spec.bootstrap)
        .arg(&spec.bootstrap_args[0])
        .arg(&spec.task_root)
        .arg(spec.extensions_dir.as_ref().unwrap())
        .arg(json!({"spawn": true}).to_string())
        .envs(&spec.environment)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = host.stdout.take().unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let child = serde_json::from_str::<Value>(&answer).unwrap()["echo"]["child"].as_u64().unwrap();
    let (runtime, extension) = fixture_pids(&fixture);
    for pid in [runtime, extension, child] {
        assert!(alive(pid), "{pid} runs while the emulator does");
    }
    // SIGKILL: no destructor, no shutdown; the environment (running, not frozen) is left as it was.
    host.kill().unwrap();
    host.wait().unwrap();
    eventually("the runtime, the extension and what the function started ended with the emulator", || {
        [runtime, extension, child].iter().all(|pid| !alive(*pid))
    })
    .await;
}

/// The Telemetry API's default buffering: records wait up to a second for company.
const LAMBDA_DEFAULT_BUFFERING: &str = r#"{"timeoutMs": 1000, "maxItems": 1000, "maxBytes": 262144}"#;

/// The extension's journal (extension.jsonl) from its first SHUTDOWN on, and what came before.
fn split_at_shutdown(fixture: &Fixture) -> (Vec<Value>, Vec<Value>) {
    let lines = fixture.lines("extension.jsonl");
    let at = lines
        .iter()
        .position(|l| l["kind"] == "event" && l["value"]["eventType"] == "SHUTDOWN")
        .expect("the extension got SHUTDOWN");
    let (before, after) = lines.split_at(at);
    (before.to_vec(), after.to_vec())
}

fn platform_records(lines: &[Value], kind: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["kind"] == "telemetry")
        .flat_map(|l| l["value"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["type"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_invocation_reaches_the_extensions_before_their_shutdown() {
    let fixture = Fixture::new(Duration::from_secs(1), true, &[("FIXTURE_TELEMETRY", LAMBDA_DEFAULT_BUFFERING)]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    assert_eq!(invoke(&service, json!({"sleep_ms": 5_000})).await, InvokeOutcome::Timeout);
    let (before, after) = split_at_shutdown(&fixture);
    assert_eq!(after[0]["value"]["shutdownReason"], "TIMEOUT");
    let done = platform_records(&before, "platform.runtimeDone");
    let report = platform_records(&before, "platform.report");
    assert_eq!(done.len(), 1, "runtimeDone before SHUTDOWN: {before:?}");
    assert_eq!(report.len(), 1, "report before SHUTDOWN: {before:?}");
    assert_eq!(done[0]["record"]["status"], "timeout");
    assert_eq!(report[0]["record"]["status"], "timeout");
    assert!(report[0]["record"]["metrics"]["durationMs"].as_f64().unwrap() >= 1_000.0);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_invocation_reaches_the_extensions_before_their_shutdown() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[("FIXTURE_TELEMETRY", LAMBDA_DEFAULT_BUFFERING)]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    assert!(matches!(invoke(&service, json!({"exit": 3})).await, InvokeOutcome::Failed { .. }));
    let (before, after) = split_at_shutdown(&fixture);
    assert_eq!(after[0]["value"]["shutdownReason"], "FAILURE");
    let report = platform_records(&before, "platform.report");
    assert_eq!(report.len(), 1, "report before SHUTDOWN: {before:?}");
    assert_eq!(report[0]["record"]["status"], "failure");
    assert_eq!(report[0]["record"]["errorType"], "Runtime.ExitError");
    service.shutdown().await;
}

fn fixture_pids(fixture: &Fixture) -> (u64, u64) {
    let runtime = fixture.lines("runtime.jsonl").last().unwrap()["pid"].as_u64().unwrap();
    let extension = fixture.extension("pid").last().and_then(Value::as_u64).unwrap();
    (runtime, extension)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_environment_is_frozen_between_invocations_and_thawed_for_the_next() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[]);
    let (observer, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let service =
        LambdaService::new(vec![fixture.spec.clone()], LambdaSettings { observer: Some(observer), ..settings() });
    let child = response(invoke(&service, json!({"spawn": true})).await)["echo"]["child"].as_u64().unwrap();
    let (runtime, extension) = fixture_pids(&fixture);
    // Runtime, extension and what the function started: none gets CPU until the next event.
    eventually("the environment is frozen", || {
        [runtime, extension, child].iter().all(|pid| process_state(*pid) == 'T')
    })
    .await;
    assert_eq!(response(invoke(&service, json!({"echo": "thawed"})).await)["echo"], "thawed");
    let mut observed = Vec::new();
    while let Ok(observation) = seen.try_recv() {
        observed.push(observation);
    }
    let thawed: Vec<_> = observed.iter().filter(|o| matches!(o, Observation::Thawed { .. })).collect();
    assert_eq!(thawed.len(), 1, "{observed:?}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_environment_s_timers_stop_and_its_sockets_wait_for_the_thaw() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let log = fixture.dir.0.join("background.jsonl");
    let url = format!("http://{}/", peer.local_addr().unwrap());
    response(invoke(&service, json!({"background": {"url": url, "log": log, "linger_ms": 300}})).await);
    // The request went out before the freeze; the peer holds its answer until the freeze. A
    // connection that closes before a whole request head is not the fixture's (a process of
    // another test reaching a port number it used before, since reused by this listener).
    let accept_the_fixture_s = async {
        loop {
            let (mut socket, _) = peer.accept().await.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && matches!(socket.read(&mut byte).await, Ok(1)) {
                request.push(byte[0]);
            }
            if request.starts_with(b"GET / ") && request.ends_with(b"\r\n\r\n") {
                break socket;
            }
        }
    };
    let mut socket = tokio::time::timeout(Duration::from_secs(60), accept_the_fixture_s)
        .await
        .expect("the fixture's request arrives");
    let runtime = fixture.lines("runtime.jsonl")[0]["pid"].as_u64().unwrap();
    eventually("the environment frozen", || process_state(runtime) == 'T').await;
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let frozen_at = now();
    // On the peer's side the exchange completes while the client is frozen.
    socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nanswer").await.unwrap();
    socket.shutdown().await.unwrap();
    // A window in which a running environment would tick about 25 times.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let thawed_at = now();
    // Long enough running for the background threads to be scheduled before the next freeze.
    response(invoke(&service, json!({"echo": "thaw", "sleep_ms": 500})).await);
    let entries = || -> Vec<Value> {
        std::fs::read_to_string(&log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    };
    eventually("the answer read after the thaw", || entries().iter().any(|e| e["response"] == "answer")).await;
    eventually("ticks after the thaw", || {
        entries().iter().any(|e| e["tick"] == true && e["at"].as_f64().unwrap() > thawed_at)
    })
    .await;
    let entries = entries();
    let at = |e: &Value| e["at"].as_f64().unwrap();
    let read = entries.iter().find(|e| e["response"] == "answer").unwrap();
    assert!(at(read) >= thawed_at, "the frozen process read its answer only once thawed");
    let ticks: Vec<f64> = entries.iter().filter(|e| e["tick"] == true).map(at).collect();
    assert!(ticks.iter().any(|t| *t < frozen_at), "it ticked before the freeze");
    let while_frozen: Vec<f64> = ticks.iter().copied().filter(|t| *t > frozen_at && *t < thawed_at).collect();
    assert_eq!(while_frozen, Vec::<f64>::new(), "no timer fired while frozen");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_freeze_off_an_environment_keeps_running_between_invocations() {
    let fixture = Fixture::new(Duration::from_secs(5), true, &[]);
    let service = LambdaService::new(vec![fixture.spec.clone()], LambdaSettings { freeze: false, ..settings() });
    response(invoke(&service, json!({"echo": 1})).await);
    service.idle("fixture").await;
    let (runtime, extension) = fixture_pids(&fixture);
    assert!([runtime, extension].iter().all(|pid| process_state(*pid) != 'T'));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_panic_is_a_function_error_and_the_environment_stays_warm() {
    // Built as the functions are (lambda_runtime, the workspace's panic strategy): its catch of
    // handler panics works only with panic = "unwind".
    let mut fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    fixture.spec.bootstrap = support::example("panicking-runtime");
    fixture.spec.bootstrap_args = Vec::new();
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    let pid = response(invoke(&service, json!({})).await)["pid"].clone();
    service.idle("fixture").await;
    match invoke(&service, json!({"panic": true})).await {
        InvokeOutcome::FunctionError { payload, .. } => {
            let document: Value = serde_json::from_slice(&payload).unwrap();
            assert!(document["errorMessage"].as_str().unwrap().contains("panicked on purpose"), "{document}");
        }
        other => panic!("a handler panic must be a function error, got {other:?}"),
    }
    service.idle("fixture").await;
    assert_eq!(response(invoke(&service, json!({})).await)["pid"], pid, "the same environment, still warm");
    assert_eq!(service.environments("fixture"), 1);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_its_memory_size_an_invocation_ends_out_of_memory_and_the_environment_is_replaced() {
    let mut fixture = Fixture::new(Duration::from_secs(10), true, &[("FIXTURE_TELEMETRY", LAMBDA_DEFAULT_BUFFERING)]);
    fixture.spec.memory_mb = 128;
    let service = LambdaService::new(vec![fixture.spec.clone()], settings());
    match invoke(&service, json!({"allocate_mb": 256})).await {
        InvokeOutcome::Failed { error_type, message } => {
            assert_eq!(error_type, "Runtime.OutOfMemory", "{message}");
        }
        other => panic!("256 MB in a 128 MB function: {other:?}"),
    }
    assert_eq!(service.environments("fixture"), 0, "the environment is gone");
    let (before, after) = split_at_shutdown(&fixture);
    assert_eq!(after[0]["value"]["shutdownReason"], "FAILURE");
    let report = platform_records(&before, "platform.report");
    assert_eq!(report.len(), 1, "{before:?}");
    assert_eq!(report[0]["record"]["status"], "error");
    assert_eq!(report[0]["record"]["errorType"], "Runtime.OutOfMemory");
    assert!(report[0]["record"]["metrics"]["maxMemoryUsedMB"].as_u64().unwrap() > 128);
    // Within its memory, the next invocation runs in a new environment.
    assert_eq!(response(invoke(&service, json!({"allocate_mb": 16})).await)["echo"], 16 * 1024 * 1024);
    assert_eq!(fixture.lines("runtime.jsonl").len(), 2, "re-initialised");
    service.shutdown().await;
}
