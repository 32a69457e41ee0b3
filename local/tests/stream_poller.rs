//! The stream poller on a real moto DynamoDB stream, with a scripted function: batches in order
//! within the batch size, partial batch failures retried from the failed record, bisection of
//! failing batches, and records skipped once their retries are spent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use books_local::cloud::StreamMapping;
use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use books_local::stream_poller::StreamPoller;
use books_testkit::TestTables;
use futures::future::BoxFuture;
use serde_json::{json, Value};

type Script = Box<dyn Fn(&[Value]) -> InvokeOutcome + Send + Sync>;

/// Keeps every batch it was given and answers what the script says.
struct Function {
    script: Script,
    batches: Mutex<Vec<Vec<Value>>>,
}

impl Invoker for Function {
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome> {
        let event: Value = serde_json::from_slice(&request.payload).unwrap();
        let records = event["Records"].as_array().unwrap().clone();
        let answer = (self.script)(&records);
        self.batches.lock().unwrap().push(records);
        Box::pin(async move { answer })
    }
}

fn key(record: &Value) -> String {
    record["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_owned()
}

fn ok() -> InvokeOutcome {
    InvokeOutcome::Response(json!({"batchItemFailures": []}).to_string().into_bytes())
}

async fn setup(items: &[&str], batch_size: usize, script: Script) -> (TestTables, StreamPoller, Arc<Function>) {
    let tables = TestTables::create().await;
    for pk in items {
        tables
            .client
            .put_item()
            .table_name(&tables.books)
            .item("pk", AttributeValue::S((*pk).to_owned()))
            .send()
            .await
            .unwrap();
    }
    let described = tables.client.describe_table().table_name(&tables.books).send().await.unwrap();
    let mapping = StreamMapping {
        function_name: "projector".into(),
        stream_arn: described.table.unwrap().latest_stream_arn.unwrap(),
        batch_size,
        maximum_retry_attempts: Some(2),
        bisect_on_error: true,
        maximum_record_age: None,
        report_batch_item_failures: true,
        trim_horizon: true,
        enabled: true,
    };
    let function = Arc::new(Function { script, batches: Mutex::new(Vec::new()) });
    let config = books_testkit::aws_config().await;
    let poller = StreamPoller::new(mapping, &config, function.clone());
    (tables, poller, function)
}

async fn drain(poller: &StreamPoller) {
    let mut iterators = HashMap::new();
    for _ in 0..5 {
        poller.poll_once(&mut iterators).await;
    }
}

fn keys_of(function: &Function) -> Vec<Vec<String>> {
    function.batches.lock().unwrap().iter().map(|b| b.iter().map(key).collect()).collect()
}

#[tokio::test]
async fn records_arrive_in_order_in_batches_of_at_most_the_batch_size() {
    let items = ["BOOK#1", "BOOK#2", "BOOK#3", "BOOK#4", "BOOK#5"];
    let (_tables, poller, function) = setup(&items, 2, Box::new(|_| ok())).await;
    drain(&poller).await;
    let batches = keys_of(&function);
    assert!(batches.iter().all(|b| b.len() <= 2), "{batches:?}");
    assert_eq!(batches.concat(), items, "every record once, in order");
    let first = &function.batches.lock().unwrap()[0][0];
    assert_eq!(first["eventName"], "INSERT");
    assert_eq!(first["eventSource"], "aws:dynamodb");
    assert!(first["eventSourceARN"].as_str().unwrap().contains("/stream/"));
    assert_eq!(first["dynamodb"]["NewImage"]["pk"]["S"], "BOOK#1");
    assert!(first["dynamodb"]["SequenceNumber"].is_string());
}

#[tokio::test]
async fn a_partial_failure_is_retried_from_the_failed_record() {
    let failed_once = Arc::new(Mutex::new(false));
    let flag = failed_once.clone();
    let script: Script = Box::new(move |records| {
        let second = records.iter().find(|r| key(r) == "BOOK#2");
        let mut failed = flag.lock().unwrap();
        match second {
            Some(record) if !*failed => {
                *failed = true;
                let sequence = record["dynamodb"]["SequenceNumber"].clone();
                InvokeOutcome::Response(
                    json!({"batchItemFailures": [{"itemIdentifier": sequence}]}).to_string().into_bytes(),
                )
            }
            _ => ok(),
        }
    });
    let (_tables, poller, function) = setup(&["BOOK#1", "BOOK#2", "BOOK#3"], 3, script).await;
    drain(&poller).await;
    assert_eq!(keys_of(&function), vec![vec!["BOOK#1", "BOOK#2", "BOOK#3"], vec!["BOOK#2", "BOOK#3"]]);
    assert!(*failed_once.lock().unwrap());
}

#[tokio::test]
async fn a_failing_batch_is_bisected_and_a_poison_record_skipped_after_its_retries() {
    let script: Script = Box::new(|records| {
        if records.iter().any(|r| key(r) == "BOOK#poison") {
            InvokeOutcome::FunctionError { error_type: "Unhandled".into(), payload: b"{}".to_vec() }
        } else {
            ok()
        }
    });
    let (_tables, poller, function) = setup(&["BOOK#1", "BOOK#2", "BOOK#3", "BOOK#poison"], 4, script).await;
    tokio::time::timeout(Duration::from_secs(30), drain(&poller)).await.expect("the poller moves on");
    let batches = keys_of(&function);
    assert_eq!(batches[0], ["BOOK#1", "BOOK#2", "BOOK#3", "BOOK#poison"]);
    assert!(batches.contains(&vec!["BOOK#1".to_owned(), "BOOK#2".to_owned()]), "bisected: {batches:?}");
    let poison_alone = batches.iter().filter(|b| b.as_slice() == ["BOOK#poison"]).count();
    assert_eq!(poison_alone, 3, "tried once and retried twice (maximum_retry_attempts = 2): {batches:?}");
    let succeeded: Vec<&String> = batches.iter().filter(|b| !b.iter().any(|k| k == "BOOK#poison")).flatten().collect();
    for pk in ["BOOK#1", "BOOK#2", "BOOK#3"] {
        assert!(succeeded.iter().any(|k| *k == pk), "{pk} delivered in a good batch");
    }
}
