//! Replaying the projector's failure queue on moto: the queue holds Lambda's on-failure records
//! (shard and sequence numbers, as the Lambda developer guide shows them), the records are read
//! again from the table's real stream and applied while the projector goes on with newer ones;
//! what cannot be replayed stays in the queue, named.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_sqs::types::QueueAttributeName::{ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible};
use books::http::command::{self, Commands};
use books::projector::project_batch;
use books::store::{BookStore, ViewStore};
use books_testkit::{stream_event, ApiRequest, StreamReader, TestTables};
use serde_json::{json, Value};

/// Lambda's on-failure record for a batch of `shard_id` from `first` to `last`.
fn failure_record(stream_arn: &str, shard_id: &str, first: &str, last: &str, size: usize) -> String {
    json!({
        "requestContext": {"requestId": "316aa6d0-8154-4d5c-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:books-test-projector",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-07T00:38:06.021Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first,
            "endSequenceNumber": last,
            "approximateArrivalOfFirstRecord": "2026-12-07T00:38:04Z",
            "approximateArrivalOfLastRecord": "2026-12-07T00:38:05Z",
            "batchSize": size,
            "streamArn": stream_arn
        }
    })
    .to_string()
}

fn sequence(record: &EventRecord) -> String {
    record.change.sequence_number.clone().unwrap()
}

async fn send(commands: &Commands, request: ApiRequest) -> Value {
    let response = command::handle(commands, request.build()).await;
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    assert!(response.status().is_success(), "{body}");
    body
}

fn book(n: u32) -> Value {
    let isbn = format!("978{n:09}");
    let sum: u32 =
        isbn.chars().enumerate().map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 }).sum();
    json!({"title": format!("Book {n}"), "authors": ["Ada Lovelace"], "isbn": format!("{isbn}{}", (10 - sum % 10) % 10),
        "published_year": 1843, "tags": ["computing"]})
}

async fn update(commands: &Commands, current: &Value, author: &str) -> Value {
    let mut body = book(0);
    for field in ["title", "isbn", "published_year", "tags"] {
        body[field] = current[field].clone();
    }
    body["authors"] = json!([author]);
    let path = format!("/books/{}", current["id"].as_str().unwrap());
    send(commands, ApiRequest::put(&path).header("If-Match", &format!("\"{}\"", current["version"])).json(&body)).await
}

#[tokio::test]
async fn lost_batches_are_applied_again_under_newer_writes_and_the_rest_stays_queued() {
    let aws = books_testkit::aws_config().await;
    let tables = TestTables::create().await;
    let store = BookStore::new(tables.client.clone(), &tables.books);
    let view = ViewStore::new(tables.client.clone(), &tables.books_view);
    let commands = Commands::new(store.clone());
    let mut reader = StreamReader::new(&tables.client, &tables.books).await;

    let mut created = Vec::new();
    for n in 0..6 {
        created.push(send(&commands, ApiRequest::post("/books").json(&book(n))).await);
    }
    // The projector gave up on every record so far: two batches in the failure queue.
    let lost = reader.next_records().await;
    assert!(lost.len() >= 6, "{} records", lost.len());
    let described = tables.client.describe_table().table_name(&tables.books).send().await.unwrap();
    let stream_arn = described.table.unwrap().latest_stream_arn.unwrap();
    let streams = aws_sdk_dynamodbstreams::Client::new(&aws);
    let shards = streams.describe_stream().stream_arn(&stream_arn).send().await.unwrap();
    let shard_id = shards.stream_description.unwrap().shards.unwrap()[0].shard_id.clone().unwrap();
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = format!("books-test-failures-{}", ulid::Ulid::new());
    let queue_url = sqs.create_queue().queue_name(&queue).send().await.unwrap().queue_url.unwrap();
    let (first, second) = lost.split_at(lost.len() / 2);
    let mut bodies = vec![
        failure_record(&stream_arn, &shard_id, &sequence(&first[0]), &sequence(first.last().unwrap()), first.len()),
        failure_record(&stream_arn, &shard_id, &sequence(&second[0]), &sequence(second.last().unwrap()), second.len()),
    ];
    // And two it cannot replay: not a failure record, a shard the stream does not have.
    bodies.push("{\"not\": \"a failure record\"}".to_owned());
    bodies.push(failure_record(&stream_arn, "shardId-00000000000000000000-00000000", "1", "2", 2));
    for body in bodies {
        sqs.send_message().queue_url(&queue_url).message_body(body).send().await.unwrap();
    }

    // The projector went on: book 0's update is in the view before the replay.
    let newer = update(&commands, &created[0], "Grace Hopper").await;
    let response = project_batch(&view, stream_event(reader.next_records().await), 0).await;
    assert!(response.batch_item_failures.is_empty());

    // The replay runs while another update is written and projected.
    let replaying = books_repair::replay(&aws, &queue_url, &view);
    let writing = async {
        let updated = update(&commands, &created[1], "Charles Babbage").await;
        let response = project_batch(&view, stream_event(reader.next_records().await), 0).await;
        assert!(response.batch_item_failures.is_empty());
        updated
    };
    let (report, updated) = tokio::join!(replaying, writing);
    let report = report.unwrap();

    assert_eq!(report.batches, 2, "{report:?}");
    assert_eq!(report.records, lost.len(), "{report:?}");
    assert_eq!(report.left.len(), 2, "{report:?}");
    assert!(report.left.iter().any(|why| why.contains("not a DynamoDB stream failure record")), "{report:?}");
    for book in &created {
        let id = books::domain::BookId::parse(book["id"].as_str().unwrap()).unwrap();
        assert_eq!(view.get(&id).await.unwrap(), store.get(&id).await.unwrap(), "the view shows book {id}");
    }
    let id = |book: &Value| books::domain::BookId::parse(book["id"].as_str().unwrap()).unwrap();
    assert_eq!(view.get(&id(&newer)).await.unwrap().unwrap().authors, vec!["Grace Hopper"], "never set back");
    assert_eq!(view.get(&id(&updated)).await.unwrap().unwrap().version.get(), 2);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let count = |name| attributes[&name].parse::<u32>().unwrap();
    assert_eq!(count(ApproximateNumberOfMessages) + count(ApproximateNumberOfMessagesNotVisible), 2, "the two left");
}
