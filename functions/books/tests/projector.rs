//! The projector on the stream records moto's DynamoDB Streams really produced after real
//! writes: INSERT, MODIFY, REMOVE, replays, out-of-order delivery and failures.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use aws_lambda_events::event::dynamodb::EventRecord;
use books::domain::BookId;
use books::projector::{project_batch, project_record, Projection};
use books::store::{ListFilter, ViewStore};
use books_testkit::{stream_event, ApiRequest, StreamReader};
use serde_json::{json, Value};
use support::{book, TestApi};

const NOW: i64 = 1_795_521_600;

struct Scenario {
    api: TestApi,
    stream: StreamReader,
}

impl Scenario {
    async fn start() -> Self {
        let api = TestApi::start().await;
        let stream = StreamReader::new(&api.tables.client, &api.tables.books).await;
        Self { api, stream }
    }

    /// Writes through the command handler, then returns the book records the stream produced.
    async fn write(&mut self, request: ApiRequest) -> (Value, Vec<EventRecord>) {
        let reply = self.api.send(request).await;
        assert!(reply.status < 300, "{reply:?}");
        let body = if reply.body.is_empty() { Value::Null } else { reply.json() };
        (body, self.stream.next_records().await)
    }

    async fn view_book(&self, id: &str) -> Option<books::domain::Book> {
        self.api.view.get(&BookId::parse(id).unwrap()).await.unwrap()
    }

    async fn listed(&self, filter: ListFilter) -> Vec<String> {
        let page = self.api.view.list(&filter, 100, None).await.unwrap();
        page.items.into_iter().map(|b| b.title).collect()
    }

    async fn apply(&self, records: &[EventRecord]) {
        let response = project_batch(&self.api.view, stream_event(records.to_vec()), NOW).await;
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    }
}

fn book_records(records: &[EventRecord]) -> Vec<EventRecord> {
    records
        .iter()
        .filter(|r| {
            let image = if r.change.new_image.is_empty() { &r.change.old_image } else { &r.change.new_image };
            matches!(image.get("pk"), Some(serde_dynamo::AttributeValue::S(pk)) if pk.starts_with("BOOK#"))
        })
        .cloned()
        .collect()
}

fn tag(name: &str) -> ListFilter {
    ListFilter { author: None, tag: Some(name.to_owned()) }
}

#[tokio::test]
async fn an_insert_record_makes_the_book_readable_and_listable() {
    let mut s = Scenario::start().await;
    let (created, records) = s.write(ApiRequest::post("/books").json(&book(1))).await;
    let inserts = book_records(&records);
    assert_eq!(inserts.len(), 1);
    assert_eq!(inserts[0].event_name, "INSERT");
    s.apply(&records).await;
    let id = created["id"].as_str().unwrap();
    let stored = s.view_book(id).await.expect("projected");
    assert_eq!(serde_json::to_value(&stored).unwrap(), created);
    assert_eq!(s.listed(ListFilter::default()).await, vec!["Book number 1"]);
    assert_eq!(s.listed(tag("history")).await, vec!["Book number 1"]);
    let by_author = ListFilter { author: Some("charles babbage".into()), tag: None };
    assert_eq!(s.listed(by_author).await, vec!["Book number 1"]);
}

#[tokio::test]
async fn a_modify_record_updates_the_view_and_drops_removed_tags_and_authors() {
    let mut s = Scenario::start().await;
    let (created, inserted) = s.write(ApiRequest::post("/books").json(&book(1))).await;
    s.apply(&inserted).await;
    let id = created["id"].as_str().unwrap();
    let mut changed = book(1);
    changed["tags"] = json!(["engines"]);
    changed["authors"] = json!(["Ada Lovelace"]);
    let (_, modified) =
        s.write(ApiRequest::put(&format!("/books/{id}")).header("If-Match", "\"1\"").json(&changed)).await;
    assert_eq!(book_records(&modified)[0].event_name, "MODIFY");
    s.apply(&modified).await;
    assert_eq!(s.view_book(id).await.unwrap().version.get(), 2);
    assert!(s.listed(tag("history")).await.is_empty());
    assert_eq!(s.listed(tag("engines")).await, vec!["Book number 1"]);
    let babbage = ListFilter { author: Some("Charles Babbage".into()), tag: None };
    assert!(s.listed(babbage).await.is_empty());
}

#[tokio::test]
async fn a_remove_record_deletes_the_book_from_every_view() {
    let mut s = Scenario::start().await;
    let (created, inserted) = s.write(ApiRequest::post("/books").json(&book(1))).await;
    s.apply(&inserted).await;
    let id = created["id"].as_str().unwrap();
    let (_, removed) = s.write(ApiRequest::delete(&format!("/books/{id}")).header("If-Match", "\"1\"")).await;
    assert_eq!(book_records(&removed)[0].event_name, "REMOVE");
    s.apply(&removed).await;
    assert_eq!(s.view_book(id).await, None);
    assert!(s.listed(ListFilter::default()).await.is_empty());
    assert!(s.listed(tag("computing")).await.is_empty());
}

#[tokio::test]
async fn replaying_an_old_record_is_a_no_op() {
    let mut s = Scenario::start().await;
    let (created, inserted) = s.write(ApiRequest::post("/books").json(&book(1))).await;
    let id = created["id"].as_str().unwrap();
    let mut changed = book(1);
    changed["title"] = json!("Second edition");
    let (_, modified) =
        s.write(ApiRequest::put(&format!("/books/{id}")).header("If-Match", "\"1\"").json(&changed)).await;
    s.apply(&inserted).await;
    s.apply(&modified).await;
    let before = s.api.tables.scan(&s.api.tables.books_view).await;
    for record in book_records(&inserted).iter().chain(&book_records(&modified)) {
        let outcome = project_record(&s.api.view, record, NOW).await.unwrap();
        assert!(matches!(outcome, Projection::Applied { applied: 0, .. }), "{outcome:?}");
    }
    assert_eq!(s.api.tables.scan(&s.api.tables.books_view).await, before);
    assert_eq!(s.view_book(id).await.unwrap().title, "Second edition");
}

#[tokio::test]
async fn records_applied_out_of_order_end_in_the_newest_state() {
    let mut s = Scenario::start().await;
    let (created, v1) = s.write(ApiRequest::post("/books").json(&book(1))).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/books/{id}");
    let mut v2_body = book(1);
    v2_body["tags"] = json!(["second"]);
    let (_, v2) = s.write(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&v2_body)).await;
    let mut v3_body = book(1);
    v3_body["title"] = json!("Third");
    v3_body["tags"] = json!(["third"]);
    let (_, v3) = s.write(ApiRequest::put(&path).header("If-Match", "\"2\"").json(&v3_body)).await;
    // Newest first, then the older ones.
    for records in [&v3, &v1, &v2] {
        s.apply(records).await;
    }
    let stored = s.view_book(id).await.unwrap();
    assert_eq!((stored.version.get(), stored.title.as_str()), (3, "Third"));
    assert_eq!(s.listed(tag("third")).await, vec!["Third"]);
    assert!(s.listed(tag("second")).await.is_empty(), "v2's tag must not come back");
    assert!(s.listed(tag("history")).await.is_empty(), "v1's tags must not come back");

    // A removal seen before the records that led up to it stays a removal.
    let (_, removed) = s.write(ApiRequest::delete(&path).header("If-Match", "*")).await;
    let fresh = Scenario::start().await;
    for records in [&removed, &v2, &v1, &v3] {
        fresh.apply(records).await;
    }
    assert_eq!(fresh.view_book(id).await, None);
    assert!(fresh.listed(ListFilter::default()).await.is_empty());
    assert!(fresh.listed(tag("third")).await.is_empty());
}

#[tokio::test]
async fn guard_and_idempotency_records_are_ignored() {
    let mut s = Scenario::start().await;
    let (_, records) = s.write(ApiRequest::post("/books").header("Idempotency-Key", "k").json(&book(1))).await;
    assert_eq!(records.len(), 3, "book, ISBN guard and idempotency record");
    let mut outcomes = Vec::new();
    for record in &records {
        outcomes.push(project_record(&s.api.view, record, NOW).await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| **o == Projection::Ignored).count(), 2);
    let view_items = s.api.tables.scan(&s.api.tables.books_view).await;
    assert!(view_items.iter().all(|item| item["pk"].as_s().unwrap().starts_with("BOOK#")));
}

#[tokio::test]
async fn records_that_cannot_be_applied_are_reported_as_batch_item_failures() {
    let mut s = Scenario::start().await;
    let (_, first) = s.write(ApiRequest::post("/books").json(&book(1))).await;
    let (_, second) = s.write(ApiRequest::post("/books").json(&book(2))).await;
    let mut broken = book_records(&second)[0].clone();
    broken.change.new_image.remove("title");
    let good = book_records(&first)[0].clone();
    let response = project_batch(&s.api.view, stream_event(vec![good.clone(), broken.clone()]), NOW).await;
    let failed: Vec<Option<String>> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, vec![broken.change.sequence_number.clone()]);

    // A view that cannot be written (no such table) fails every record, each by sequence number.
    let missing = ViewStore::new(s.api.tables.client.clone(), "no-such-table");
    let response = project_batch(&missing, stream_event(vec![good.clone()]), NOW).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, good.change.sequence_number);
}
