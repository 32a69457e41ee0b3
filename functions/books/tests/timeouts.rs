//! The functions' AWS calls under a stalled DynamoDB (the local endpoint's fault switch holds the
//! requests): each attempt is given up after `config::ATTEMPT_TIMEOUT` and retried by the SDK,
//! and the call ends in a timeout error after `config::OPERATION_TIMEOUT`, before the function's
//! own timeout would end the invocation without an answer.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

/// One request to the endpoint's fault switch (`/_books/faults`, docs/local-endpoint-protocol.md),
/// with a body or none; its JSON answer. The answer is read to the connection's end
/// within a bound, so an endpoint that never ends it fails the test instead of hanging it.
fn fault_switch(method: &str, body: Option<&Value>) -> Value {
    let authority = books_testkit::endpoint().trim_start_matches("http://").to_owned();
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} /_books/faults HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(&authority).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    if let Err(error) = stream.read_to_string(&mut answer) {
        panic!("the fault switch did not end its answer to {method} within {BOUND:?} ({error}): {answer:?}");
    }
    let (_, document) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(document).unwrap()
}

/// Far beyond any wait of the test (the operation timeout is 8 s): reached, it is a hang.
const BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_call_is_retried_per_attempt_and_ends_in_a_timeout() {
    // A table of its own: the fault matches only this test's requests.
    let table = format!("stalled-{}", ulid::Ulid::new());
    let created = fault_switch(
        "POST",
        Some(&json!({"operation": "GetItem", "match": {"TableName": table}, "delay": 30, "status": 500})),
    );
    assert_eq!(created["delay"], json!(30.0), "{created}");

    let config = aws_sdk_dynamodb::config::Builder::from(&books_testkit::aws_config().await)
        .timeout_config(books::config::timeouts())
        .build();
    let call = aws_sdk_dynamodb::Client::from_conf(config)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("BOOK#1".into()))
        .send();
    let outcome = tokio::time::timeout(BOUND, call).await.expect("the operation timeout ended the call");

    let faults = fault_switch("GET", None);
    let held = faults["faults"].as_array().unwrap().iter().find(|f| f["match"]["TableName"] == json!(table)).unwrap();
    let attempts = held["failed"].as_u64().unwrap();
    fault_switch("DELETE", None);
    assert!(matches!(outcome, Err(SdkError::TimeoutError(_))), "not a timeout: {outcome:?}");
    assert!(attempts >= 2, "the SDK gave up the first attempt and retried: {attempts} attempt(s) reached the endpoint");
}
