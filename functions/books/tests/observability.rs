//! The function side of the observability contract: the handlers emit the metrics of
//! `books::metrics::ALL` as EMF documents. One test only: the metrics recorder is process-wide.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use books_testkit::ApiRequest;
use serde_json::{json, Value};
use support::{book, TestApi};

/// Values per metric name across the EMF documents of one flush, with their dimension sets.
fn emf_values(text: &str) -> BTreeMap<String, (Vec<f64>, Vec<Vec<String>>)> {
    let mut found: BTreeMap<String, (Vec<f64>, Vec<Vec<String>>)> = BTreeMap::new();
    for line in text.lines() {
        let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("EMF line is JSON ({e}): {line}"));
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Books", "{line}");
        let dimensions: Vec<Vec<String>> = serde_json::from_value(directive["Dimensions"].clone()).unwrap();
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap().to_owned();
            let values = match &doc[&name] {
                Value::Array(values) => values.iter().map(|v| v.as_f64().unwrap()).collect(),
                value => vec![value.as_f64().unwrap_or_else(|| panic!("{name} has a value: {line}"))],
            };
            let entry = found.entry(name).or_default();
            entry.0.extend(values);
            entry.1.extend(dimensions.clone());
        }
    }
    found
}

/// More values of a metric than one EMF document holds (100).
const MANY: u32 = 150;

/// Every EMF document flushed, early or at the end: what the function writes to stdout.
#[derive(Clone, Default)]
struct Flushed(Arc<Mutex<Vec<u8>>>);

impl Flushed {
    fn flush(&self, collector: &metrics_cloudwatch_embedded::Collector) {
        collector.flush(&mut *self.0.lock().unwrap()).unwrap();
    }
    /// The documents flushed since the previous call.
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

#[tokio::test]
async fn handlers_emit_the_listed_business_metrics_as_emf() {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("Books")
        .with_dimension("Service", "test")
        .init()
        .unwrap();
    books::metrics::describe();
    let flushed = Flushed::default();
    let early = flushed.clone();
    assert!(books::metrics::flush_early(move || early.flush(collector)));
    let api = TestApi::start().await;

    let created = api.send(ApiRequest::post("/books").header("Idempotency-Key", "m").json(&book(1))).await.json();
    api.send(ApiRequest::post("/books").header("Idempotency-Key", "m").json(&book(1))).await; // replay
    api.send(ApiRequest::post("/books").json(&book(1))).await; // 409
    api.send(ApiRequest::post("/books").json(&json!({}))).await; // 400
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&book(1))).await; // 200
    api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&book(1))).await; // 412
    api.project().await;
    api.send(ApiRequest::get(&path)).await;
    api.send(ApiRequest::get("/books")).await;
    api.send(ApiRequest::delete(&path)).await; // 428
    api.send(ApiRequest::delete(&path).header("If-Match", "\"2\"")).await; // 204
    api.project().await;

    flushed.flush(collector);
    let metrics = emf_values(&flushed.take());
    let sum = |name: &str| metrics.get(name).map(|(v, _)| v.iter().sum::<f64>()).unwrap_or(0.0);
    assert_eq!(sum("BooksCreated"), 1.0);
    assert_eq!(sum("IdempotentReplays"), 1.0);
    assert_eq!(sum("IsbnConflicts"), 1.0);
    assert_eq!(sum("ValidationErrors"), 1.0);
    assert_eq!(sum("BooksUpdated"), 1.0);
    assert_eq!(sum("ConcurrencyConflicts"), 1.0);
    assert_eq!(sum("BooksDeleted"), 1.0);
    assert_eq!(sum("EventsProjected"), 3.0, "insert, modify, remove");
    assert_eq!(metrics["ProjectionLag"].0.len(), 3);
    assert_eq!(metrics["RequestLatency"].0.len(), 10, "one per request");
    assert!(metrics["DynamoDbLatency"].0.len() >= 9, "every store call is timed");
    assert!(metrics["RequestLatency"].1.contains(&vec!["Service".to_owned(), "Operation".to_owned()]));

    // Everything emitted is in the one list the dashboards are checked against.
    let listed: Vec<&str> = books::metrics::ALL.iter().map(|d| d.name).collect();
    for name in metrics.keys() {
        assert!(listed.contains(&name.as_str()), "{name} is emitted but not in books::metrics::ALL");
    }

    // More values than one EMF document holds (100 per metric), in one invocation of each kind:
    // a projector batch of 150 records (one lag each, several writes each), and 150 requests
    // recorded without a flush between them. Nothing is dropped, and no document is over.
    for n in 0..MANY {
        let reply = api.send(ApiRequest::post("/books").json(&book(100 + n))).await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    api.project().await;
    flushed.flush(collector);
    let text = flushed.take();
    for line in text.lines() {
        let doc: Value = serde_json::from_str(line).unwrap();
        for (name, value) in doc.as_object().unwrap() {
            let count = value.as_array().map_or(1, Vec::len);
            assert!(count <= 100, "{name} has {count} values in one document");
        }
    }
    let metrics = emf_values(&text);
    let sum = |name: &str| metrics.get(name).map(|(v, _)| v.iter().sum::<f64>()).unwrap_or(0.0);
    assert_eq!(sum("BooksCreated"), f64::from(MANY));
    assert_eq!(sum("EventsProjected"), f64::from(MANY), "one batch of {MANY} records");
    assert_eq!(metrics["ProjectionLag"].0.len(), MANY as usize, "one lag per record");
    assert_eq!(metrics["RequestLatency"].0.len(), MANY as usize, "one per request");
    assert!(metrics["DynamoDbLatency"].0.len() >= 2 * MANY as usize, "a create and the view's writes per book");
}
