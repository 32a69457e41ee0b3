//! The event source mapping played on a real moto table and stream, with a recording invoker:
//! batch size and order, the record shape, partial batch responses, bisection, retry limits.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod cloud_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use books_local::cloud::{EventSourceMapping, StartingPosition};
use books_local::invoke::{InvokeOutcome, InvokeRequest, Invoker};
use books_local::stream_poller::StreamPoller;
use books_testkit::TestTables;
use cloud_support::RecordingInvoker;
use serde_json::{json, Value};

fn mapping(stream_arn: &str, batch_size: usize) -> EventSourceMapping {
    EventSourceMapping {
        uuid: "test".into(),
        function_name: "books-projector".into(),
        qualifier: None,
        event_source_arn: stream_arn.into(),
        batch_size,
        maximum_retry_attempts: None,
        bisect_batch_on_function_error: false,
        maximum_record_age: None,
        report_batch_item_failures: false,
        starting_position: StartingPosition::TrimHorizon,
        enabled: true,
        on_failure: None,
    }
}

async fn write_books(tables: &TestTables, numbers: std::ops::Range<usize>) {
    for n in numbers {
        tables
            .client
            .put_item()
            .table_name(&tables.books)
            .item("pk", AttributeValue::S(format!("BOOK#{n:03}")))
            .item("n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .expect("put item");
    }
}

fn pks(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().expect("pk").to_owned())
        .collect()
}

fn books(numbers: impl IntoIterator<Item = usize>) -> Vec<String> {
    numbers.into_iter().map(|n| format!("BOOK#{n:03}")).collect()
}

/// The poller, running until the returned guard stops it.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<BTreeMap<String, String>>,
}

impl Running {
    fn start(mapping: EventSourceMapping, aws: &aws_config::SdkConfig, invoker: &RecordingInvoker) -> Self {
        Self::resume(mapping, aws, invoker, BTreeMap::new())
    }

    /// A poller going on from an earlier one's checkpoints.
    fn resume(
        mapping: EventSourceMapping,
        aws: &aws_config::SdkConfig,
        invoker: &RecordingInvoker,
        checkpoints: BTreeMap<String, String>,
    ) -> Self {
        let invoker: Arc<dyn Invoker> = Arc::new(invoker.clone());
        let poller = StreamPoller::new(mapping, aws, invoker)
            .with_idle_poll(Duration::from_millis(50))
            .with_retry_backoff(Duration::from_millis(10))
            .with_checkpoints(checkpoints);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(poller.run(async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// Stops it; its checkpoints.
    async fn stop(self) -> BTreeMap<String, String> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task).await.expect("the poller stops").expect("poller task")
    }
}

/// Waits (generously: the machine may be loaded) until the invoker has seen `count` batches.
async fn until_batches(invoker: &RecordingInvoker, count: usize) -> Vec<Vec<String>> {
    let batches = || invoker.events().iter().map(pks).collect::<Vec<Vec<String>>>();
    books_testkit::eventually(Duration::from_secs(30), || std::future::ready(batches().len() >= count)).await;
    batches()
}

fn sequence_numbers(request: &InvokeRequest) -> Vec<(String, String)> {
    let event: Value = serde_json::from_slice(&request.payload).expect("event");
    event["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .map(|r| {
            (
                r["dynamodb"]["Keys"]["pk"]["S"].as_str().expect("pk").to_owned(),
                r["dynamodb"]["SequenceNumber"].as_str().expect("sequence number").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn batches_arrive_in_stream_order_within_the_batch_size() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    write_books(&tables, 0..10).await;
    let invoker = RecordingInvoker::answering(Value::Null);
    let aws = cloud_support::aws().await;
    let running = Running::start(mapping(&stream_arn, 4), &aws, &invoker);
    let batches = until_batches(&invoker, 3).await;
    running.stop().await;

    assert_eq!(batches, [books(0..4), books(4..8), books(8..10)]);
    let requests = invoker.requests();
    assert!(requests.iter().all(|r| r.function_name == "books-projector"));
    let event = &invoker.events()[0];
    let record = &event["Records"][0];
    assert_eq!(record["eventSource"], "aws:dynamodb");
    assert_eq!(record["eventName"], "INSERT");
    // Passed through from DynamoDB Streams: "1.1" in AWS, "1.0" in moto.
    assert!(record["eventVersion"].as_str().is_some_and(|v| v.starts_with("1.")));
    assert_eq!(record["awsRegion"], cloud_support::REGION);
    assert_eq!(record["eventSourceARN"], stream_arn);
    assert!(record["eventID"].as_str().is_some_and(|id| !id.is_empty()));
    let change = &record["dynamodb"];
    assert_eq!(change["Keys"], json!({"pk": {"S": "BOOK#000"}}));
    assert_eq!(change["NewImage"], json!({"pk": {"S": "BOOK#000"}, "n": {"N": "0"}}));
    assert!(change.get("OldImage").is_none(), "an INSERT has no old image");
    assert_eq!(change["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert!(change["SizeBytes"].as_i64().is_some_and(|n| n > 0));
    assert!(change["ApproximateCreationDateTime"].as_i64().is_some_and(|t| t > 1_600_000_000), "{change}");
    let numbers: Vec<u128> = invoker
        .requests()
        .iter()
        .flat_map(sequence_numbers)
        .map(|(_, seq)| seq.parse().expect("numeric sequence number"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order: {numbers:?}");
}

/// `make run` stops and starts again: the mapping goes on after the last record it handled, as
/// Lambda's mapping does, instead of going back to its starting position.
#[tokio::test]
async fn a_poller_started_from_checkpoints_goes_on_after_the_last_record_handled() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    write_books(&tables, 0..3).await;
    let aws = cloud_support::aws().await;
    let first = RecordingInvoker::answering(Value::Null);
    let running = Running::start(mapping(&stream_arn, 10), &aws, &first);
    assert_eq!(until_batches(&first, 1).await, [books(0..3)]);
    let checkpoints = running.stop().await;
    let handled = sequence_numbers(&first.requests()[0]);
    assert_eq!(checkpoints.values().collect::<Vec<_>>(), [&handled[2].1], "one shard, at its last record");

    write_books(&tables, 3..5).await;
    let second = RecordingInvoker::answering(Value::Null);
    let running = Running::resume(mapping(&stream_arn, 10), &aws, &second, checkpoints);
    let batches = until_batches(&second, 1).await;
    running.stop().await;
    assert_eq!(batches, [books(3..5)], "only what was written after the checkpoint");
}

#[tokio::test]
async fn a_partial_batch_failure_is_retried_from_the_lowest_failed_record() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    write_books(&tables, 0..6).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let invoker = RecordingInvoker::new(move |request| {
        let first_call = calls.fetch_add(1, Ordering::SeqCst) == 0;
        let records = sequence_numbers(request);
        // The first batch reports records 5 and 3 as failed (in that order); later ones succeed.
        let failures: Vec<Value> = if first_call {
            [5, 3].iter().map(|i| json!({ "itemIdentifier": records[*i].1 })).collect()
        } else {
            Vec::new()
        };
        async move { InvokeOutcome::Response(json!({ "batchItemFailures": failures }).to_string().into_bytes()) }
    });
    let mut mapping = mapping(&stream_arn, 10);
    mapping.report_batch_item_failures = true;
    mapping.maximum_retry_attempts = Some(2);
    let aws = cloud_support::aws().await;
    let running = Running::start(mapping, &aws, &invoker);
    let batches = until_batches(&invoker, 2).await;
    write_books(&tables, 6..7).await;
    let batches_after = until_batches(&invoker, 3).await;
    running.stop().await;

    assert_eq!(batches, [books(0..6), books(3..6)]);
    assert_eq!(batches_after[2], books(6..7), "the stream moves on once the retry succeeded");
}

#[tokio::test]
async fn a_failing_batch_is_bisected_down_to_the_failing_record() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    write_books(&tables, 0..4).await;
    let invoker = RecordingInvoker::new(|request| {
        let poisoned = sequence_numbers(request).iter().any(|(pk, _)| pk == "BOOK#002");
        async move {
            if poisoned {
                InvokeOutcome::FunctionError { error_type: "Poison".into(), payload: b"{}".to_vec() }
            } else {
                InvokeOutcome::Response(b"null".to_vec())
            }
        }
    });
    let mut mapping = mapping(&stream_arn, 4);
    mapping.bisect_batch_on_function_error = true;
    mapping.maximum_retry_attempts = Some(1);
    let aws = cloud_support::aws().await;
    let running = Running::start(mapping, &aws, &invoker);
    let batches = until_batches(&invoker, 6).await;
    running.stop().await;

    // Halving is no retry; the lone poisoned record gets its one retry, then is skipped.
    assert_eq!(
        batches,
        [books(0..4), books(0..2), books(2..4), books(2..3), books(2..3), books(3..4)],
        "bisected in order"
    );
}

#[tokio::test]
async fn records_past_the_retry_limit_are_skipped_and_the_stream_moves_on() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    write_books(&tables, 0..3).await;
    let invoker = RecordingInvoker::new(|request| {
        let old = sequence_numbers(request).iter().any(|(pk, _)| pk.as_str() < "BOOK#003");
        async move {
            if old {
                InvokeOutcome::Failed { error_type: "Runtime.ExitError".into(), message: "crashed".into() }
            } else {
                InvokeOutcome::Response(Vec::new())
            }
        }
    });
    let mut mapping = mapping(&stream_arn, 10);
    mapping.maximum_retry_attempts = Some(2);
    let aws = cloud_support::aws().await;
    let running = Running::start(mapping, &aws, &invoker);
    let failed = until_batches(&invoker, 3).await;
    write_books(&tables, 3..5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all = until_batches(&invoker, 4).await;
    while all.iter().skip(3).map(Vec::len).sum::<usize>() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        all = until_batches(&invoker, 4).await;
    }
    running.stop().await;

    assert_eq!(failed, [books(0..3), books(0..3), books(0..3)], "the first try and two retries");
    assert!(!all[3..].contains(&books(0..3)), "no fourth try of the skipped batch: {all:?}");
    assert_eq!(all[3..].concat(), books(3..5), "later records arrive");
}

#[tokio::test]
async fn a_latest_mapping_skips_what_was_written_before_it_started() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    write_books(&tables, 0..3).await;
    let invoker = RecordingInvoker::answering(Value::Null);
    let mut mapping = mapping(&stream_arn, 10);
    mapping.starting_position = StartingPosition::Latest;
    let aws = cloud_support::aws().await;
    let running = Running::start(mapping, &aws, &invoker);
    // The poller takes its LATEST iterator at some point after starting: keep writing until
    // something arrives, however slow the machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = 3;
    while invoker.requests().is_empty() && Instant::now() < deadline {
        write_books(&tables, next..next + 1).await;
        next += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered: Vec<String> = invoker.events().iter().flat_map(pks).collect();
    running.stop().await;

    assert!(!delivered.is_empty(), "nothing arrived");
    assert!(delivered.iter().all(|pk| pk.as_str() >= "BOOK#003"), "older records were skipped: {delivered:?}");
    let mut sorted = delivered.clone();
    sorted.sort();
    assert_eq!(delivered, sorted, "in order");
}

#[tokio::test]
async fn a_batch_given_up_on_is_described_to_the_on_failure_queue_as_lambda_describes_it() {
    let tables = TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    let aws = cloud_support::aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = sqs.create_queue().queue_name(format!("failures-{}", ulid::Ulid::new())).send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();

    write_books(&tables, 0..1).await;
    let invoker = RecordingInvoker::new(|_| async {
        InvokeOutcome::FunctionError { error_type: "Poisoned".into(), payload: b"{}".to_vec() }
    });
    let mut mapping = mapping(&stream_arn, 10);
    mapping.maximum_retry_attempts = Some(1);
    mapping.on_failure = Some(queue_arn);
    let (metrics, mut recorded) = books_local::cloudwatch::MetricSink::channel();
    let poller = StreamPoller::new(mapping, &aws, Arc::new(invoker.clone()) as Arc<dyn Invoker>)
        .with_idle_poll(Duration::from_millis(50))
        .with_retry_backoff(Duration::from_millis(10))
        .with_metrics(metrics);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(poller.run(async move {
        let _ = stopped.await;
    }));

    let deadline = Instant::now() + Duration::from_secs(60);
    let message = loop {
        let received = sqs.receive_message().queue_url(&queue_url).wait_time_seconds(1).send().await.unwrap();
        if let Some(message) = received.messages().first() {
            break message.body().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "nothing reached the on-failure queue");
    };
    let _ = stop.send(());
    task.await.unwrap();

    let record: Value = serde_json::from_str(&message).unwrap();
    let sent = sequence_numbers(&invoker.requests()[0]);
    assert_eq!(invoker.requests().len(), 2, "the first try and one retry");
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert!(record["requestContext"]["functionArn"].as_str().unwrap().ends_with(":function:books-projector"));
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    let batch = &record["DDBStreamBatchInfo"];
    assert_eq!(batch["batchSize"], 1);
    assert_eq!(batch["streamArn"], stream_arn.as_str());
    assert_eq!(batch["startSequenceNumber"], sent[0].1.as_str());
    assert_eq!(batch["endSequenceNumber"], sent[0].1.as_str());
    assert!(batch["shardId"].as_str().unwrap().starts_with("shardId-"), "{batch}");
    assert!(batch["approximateArrivalOfFirstRecord"].as_str().unwrap().ends_with('Z'), "{batch}");
    assert!(
        record.get("Records").is_none() && !message.contains("BOOK#000"),
        "the record itself is not sent: {message}"
    );

    let mut ages = Vec::new();
    while let Ok(datum) = recorded.try_recv() {
        if datum.name == "IteratorAge" {
            assert_eq!(datum.dimensions, [("FunctionName".to_owned(), "books-projector".to_owned())]);
            ages.push(datum.value);
        }
    }
    assert_eq!(ages.len(), 2, "one IteratorAge per invocation");
    assert!(ages.iter().all(|age| (0.0..600_000.0).contains(age)), "{ages:?}");
}
