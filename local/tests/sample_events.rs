//! The sample events in `events/` are what the platform sends: each is generated here by the
//! emulated platform itself — the API events by the gateway (routing a request to a recording
//! invoker on the REST API fixture), the stream batch by the event source mapping's record
//! shape (`stream_poller::lambda_record`) from a record moto's DynamoDB Streams produced — and
//! must equal the committed file once the values that change with every request (ids, times,
//! ports, the fixture's unique names) are set to fixed ones.
//!
//! `BOOKS_UPDATE_EVENTS=1 target/debug/books-local endpoint -- cargo test -p books-local --test sample_events`
//! rewrites the files. That the functions accept them is shown end to end by `invoke_events.rs`.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod cloud_support;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use books_local::invoke::Invoker;
use cloud_support::{send, CloudFixture, RecordingInvoker, RunningGateway};
use serde_json::{json, Map, Value};

/// The book every sample is about (a valid ULID); the projector's sample inserts it and the
/// query's sample reads it.
const BOOK_ID: &str = "01JDQ5V8Z3K9W2M4N6P8R0T2V4";
const ISBN: &str = "9780441013593";

fn events_dir() -> std::path::PathBuf {
    books_testkit::workspace_root().join("events")
}

/// Sets every value that changes with each request or fixture to a fixed one.
fn fix(value: &mut Value, path: &str, with: Value) {
    let mut at = value;
    for key in path.split('.') {
        match at.get_mut(key) {
            Some(next) => at = next,
            None => return,
        }
    }
    *at = with;
}

fn fixed_api_event(mut event: Value, fixture: &CloudFixture) -> Value {
    let trace = "Root=1-674d8c00-0123456789abcdef01234567";
    for (path, with) in [
        ("requestContext.requestId", json!("c6af9ac6-7b61-11e6-9a41-93e8deadbeef")),
        ("requestContext.extendedRequestId", json!("EXAMPLEapigwID=")),
        ("requestContext.requestTime", json!("02/Dec/2026:10:00:00 +0000")),
        ("requestContext.requestTimeEpoch", json!(1_796_205_600_000_i64)),
        ("requestContext.apiId", json!("abc123defg")),
        ("requestContext.domainName", json!("127.0.0.1:3000")),
        ("requestContext.deploymentId", json!("dep123")),
        ("requestContext.identity.apiKey", json!("local-api-key-0123456789")),
        ("requestContext.identity.apiKeyId", json!("key123")),
        ("headers.host", json!("127.0.0.1:3000")),
        ("headers.x-api-key", json!("local-api-key-0123456789")),
        ("multiValueHeaders.x-api-key", json!(["local-api-key-0123456789"])),
        ("headers.x-amzn-trace-id", json!(trace)),
        ("headers.x-forwarded-port", json!("3000")),
        ("multiValueHeaders.host", json!(["127.0.0.1:3000"])),
        ("multiValueHeaders.x-amzn-trace-id", json!([trace])),
        ("multiValueHeaders.x-forwarded-port", json!(["3000"])),
        ("stageVariables", Value::Null),
    ] {
        fix(&mut event, path, with);
    }
    let resource = event["resource"].as_str().unwrap().to_owned();
    let resource_id = fixture.resource_ids[&resource].clone();
    assert_eq!(event["requestContext"]["resourceId"], resource_id.as_str());
    fix(
        &mut event,
        "requestContext.resourceId",
        json!(format!("res-{}", resource.trim_matches('/').replace(['/', '{', '}'], "-"))),
    );
    event
}

/// Compares with the committed file, or writes it with `BOOKS_UPDATE_EVENTS=1`.
fn matches_file(name: &str, event: &Value) {
    let path = events_dir().join(name);
    let text = serde_json::to_string_pretty(event).unwrap() + "\n";
    if std::env::var_os("BOOKS_UPDATE_EVENTS").is_some() {
        std::fs::create_dir_all(events_dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; fix: BOOKS_UPDATE_EVENTS=1 target/debug/books-local endpoint -- cargo test -p books-local --test sample_events",
            path.display()
        )
    });
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        &committed,
        event,
        "{} is not what the platform sends now; regenerate it: BOOKS_UPDATE_EVENTS=1 target/debug/books-local endpoint -- cargo test -p books-local --test sample_events",
        path.display()
    );
}

#[tokio::test]
async fn the_api_samples_are_what_the_gateway_sends() {
    let fixture = CloudFixture::create().await;
    let config = fixture.gateway_config().await;
    let invoker = RecordingInvoker::answering(json!({"statusCode": 200, "body": "{}"}));
    let shared: Arc<dyn Invoker> = Arc::new(invoker.clone());
    let gateway = RunningGateway::start(config, shared).await;
    let key = fixture.key.value.as_str();
    let book = json!({
        "title": "Dune",
        "authors": ["Frank Herbert"],
        "isbn": ISBN,
        "published_year": 1965,
        "tags": ["science fiction"],
    });
    let common = [("x-api-key", key), ("user-agent", "curl/8.5.0"), ("accept", "*/*")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        common.iter().copied().chain(extra.iter().copied()).collect()
    };
    let create = with(&[("content-type", "application/json"), ("idempotency-key", "sample-create-dune")]);
    let base = &gateway.base_url;
    assert_eq!(send("POST", &format!("{base}/books"), &create, book.to_string()).await.status, 200);
    assert_eq!(send("GET", &format!("{base}/books/{BOOK_ID}"), &with(&[]), "").await.status, 200);
    assert_eq!(send("GET", &format!("{base}/books?author=Frank%20Herbert&limit=2"), &with(&[]), "").await.status, 200);
    gateway.shutdown().await;

    let events = invoker.events();
    let functions: Vec<String> = invoker.requests().iter().map(|r| r.function_name.clone()).collect();
    assert_eq!(functions, [fixture.command.name.clone(), fixture.query.name.clone(), fixture.query.name.clone()]);
    matches_file("command-create-book.json", &fixed_api_event(events[0].clone(), &fixture));
    matches_file("query-get-book.json", &fixed_api_event(events[1].clone(), &fixture));
    matches_file("query-list-books.json", &fixed_api_event(events[2].clone(), &fixture));
}

#[tokio::test]
async fn the_stream_sample_is_what_the_event_source_mapping_sends() {
    let tables = books_testkit::TestTables::create().await;
    let arn = cloud_support::stream_arn(&tables).await;
    // The item as the command function writes a new book (`BookItem`: pk and the book's fields).
    let s = |text: &str| AttributeValue::S(text.to_owned());
    let n = |number: i64| AttributeValue::N(number.to_string());
    let item = [
        ("pk", s(&format!("BOOK#{BOOK_ID}"))),
        ("id", s(BOOK_ID)),
        ("title", s("Dune")),
        ("authors", AttributeValue::L(vec![s("Frank Herbert")])),
        ("isbn", s(ISBN)),
        ("published_year", n(1965)),
        ("tags", AttributeValue::L(vec![s("science fiction")])),
        ("description", s("")),
        ("version", n(1)),
        ("created_at", s("2026-12-02T10:00:00.000Z")),
        ("updated_at", s("2026-12-02T10:00:00.000Z")),
    ];
    let mut put = tables.client.put_item().table_name(&tables.books);
    for (name, value) in item {
        put = put.item(name, value);
    }
    put.send().await.unwrap();

    let aws = cloud_support::aws().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&aws);
    let described = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
    let shard = described.stream_description().unwrap().shards()[0].shard_id().unwrap().to_owned();
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let page = streams.get_records().shard_iterator(iterator.shard_iterator().unwrap()).send().await.unwrap();
    let record = books_local::stream_poller::lambda_record(&page.records()[0], &arn, "us-east-1");

    let mut record = record;
    let sample_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/books-local-books/stream/2026-12-02T10:00:00.000";
    for (path, with) in [
        ("eventID", json!("c81e728d9d4c2f636f067f89cc14862c")),
        ("eventSourceARN", json!(sample_arn)),
        ("dynamodb.ApproximateCreationDateTime", json!(1_796_205_600)),
        ("dynamodb.SequenceNumber", json!("1100000000017454423009")),
        // moto sizes a record by the JSON of its `dynamodb` part, sequence number and creation
        // time included, so the size moves with them by a byte or two.
        ("dynamodb.SizeBytes", json!(636)),
    ] {
        fix(&mut record, path, with);
    }
    assert!(record["dynamodb"]["OldImage"].is_null() || record["dynamodb"].get("OldImage").is_none());
    matches_file(
        "projector-insert-book.json",
        &json!({ "Records": [Value::Object(Map::from_iter(
        record.as_object().unwrap().clone()
    ))] }),
    );
}
