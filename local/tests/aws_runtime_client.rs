//! Conformance with a runtime client nobody here wrote: a handler run by AWS's own Python
//! runtime interface client (`awslambdaric`, pinned in requirements.txt), as AWS's base images
//! run it (`python -m awslambdaric <module>.<function>`), invoked through the emulated Lambda
//! service. What the client hands the handler must be what the documentation says Lambda gives
//! it, and its error path must be Lambda's.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use books_local::lambda::{LambdaService, LambdaSettings};
use serde_json::{json, Value};
use support::Fixture;

fn awslambdaric_function() -> Fixture {
    let mut fixture = Fixture::new(Duration::from_secs(5), false, &[]);
    let handler = support::workspace().join("local/tests/fixtures/awslambdaric/handler.py");
    std::fs::copy(handler, fixture.spec.task_root.join("handler.py")).unwrap();
    fixture.spec.bootstrap_args = vec!["-m".into(), "awslambdaric".into(), "handler.handle".into()];
    fixture.spec.handler = "handler.handle".into();
    fixture
}

async fn invoke(service: &LambdaService, payload: Value) -> InvokeOutcome {
    let request = InvokeRequest {
        function_name: "fixture".into(),
        payload: payload.to_string().into_bytes(),
        client_context: Some("eyJjdXN0b20iOnsiYSI6ImIifX0=".into()),
        cognito_identity: Some(r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#.into()),
        ..Default::default()
    };
    service.invoke(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awslambdaric_runs_a_handler_with_the_documented_context() {
    let fixture = awslambdaric_function();
    let settings = LambdaSettings { aws_endpoint_url: Some("http://127.0.0.1:9".into()), ..LambdaSettings::default() };
    let service = LambdaService::new(vec![fixture.spec.clone()], settings);
    let mut pids = Vec::new();
    for n in 0..3 {
        let answer: Value = match invoke(&service, json!({"n": n})).await {
            InvokeOutcome::Response(body) => serde_json::from_slice(&body).unwrap(),
            other => panic!("invocation {n}: {other:?}"),
        };
        assert_eq!(answer["event"], json!({"n": n}));
        assert_eq!(answer["request_id"].as_str().unwrap().len(), 36);
        assert_eq!(answer["function_arn"], fixture.spec.arn.as_str());
        assert_eq!(answer["function_name"], "fixture");
        assert_eq!(answer["memory_limit_in_mb"], "256");
        let remaining = answer["remaining_ms"].as_u64().unwrap();
        assert!(remaining > 0 && remaining <= 5_000, "remaining {remaining} ms of a 5 s timeout");
        assert_eq!(answer["log_group_name"], "/aws/lambda/fixture");
        assert_eq!(answer["client_context"], true);
        assert_eq!(answer["identity_id"], "id-1");
        assert!(answer["trace_id"].as_str().unwrap().starts_with("Root=1-"), "{answer}");
        pids.push(answer["pid"].clone());
        service.idle("fixture").await;
    }
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "one warm environment served all three: {pids:?}");

    // An exception is a function error of the type the client reports, with its document.
    match invoke(&service, json!({"raise": "no such book"})).await {
        InvokeOutcome::FunctionError { payload, .. } => {
            let document: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(document["errorType"], "ValueError", "{document}");
            assert_eq!(document["errorMessage"], "no such book");
        }
        other => panic!("{other:?}"),
    }
    service.shutdown().await;
}
