//! Rebuilding the read model from the write model on moto, while the API takes writes and the
//! projector applies them: whatever the view lost or got wrong, it ends up showing exactly the
//! write model, and no concurrent write is undone.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use books::repair::rebuild_view;
use books::store::BookStore;
use books_testkit::ApiRequest;
use serde_json::{json, Value};
use support::{book, TestApi};

/// The view items the write model's books call for, `(book id, sort key)`, and the books.
async fn expected(api: &TestApi) -> (BTreeSet<(String, String)>, Vec<Value>) {
    let store = BookStore::new(api.tables.client.clone(), &api.tables.books);
    let books = store.scan_books().await.unwrap();
    let mut items = BTreeSet::new();
    for book in &books {
        items.insert((book.id.clone(), "BOOK".to_owned()));
        for author in &book.authors {
            items.insert((book.id.clone(), format!("AUTHOR#{}", books::domain::lookup_key(author))));
        }
        for tag in &book.tags {
            items.insert((book.id.clone(), format!("TAG#{}", books::domain::lookup_key(tag))));
        }
    }
    (items, books.iter().map(|b| serde_json::to_value(b).unwrap()).collect())
}

/// What the view shows: its live items, and each book as `GET /books/{id}` answers.
async fn shown(api: &TestApi, books: &[Value]) -> (BTreeSet<(String, String)>, Vec<Value>) {
    let entries = api.view.scan_entries().await.unwrap();
    let items = entries.into_iter().filter(|e| e.live).map(|e| (e.book_id, e.sk)).collect();
    let mut read = Vec::new();
    for book in books {
        let reply = api.send(ApiRequest::get(&format!("/books/{}", book["id"].as_str().unwrap()))).await;
        read.push(if reply.status == 200 { reply.json() } else { json!({"status": reply.status}) });
    }
    (items, read)
}

async fn update(api: &TestApi, current: &Value, authors: Value, tags: Value) -> Value {
    let path = format!("/books/{}", current["id"].as_str().unwrap());
    let mut body = current.clone();
    for field in ["id", "version", "created_at", "updated_at"] {
        body.as_object_mut().unwrap().remove(field);
    }
    body["authors"] = authors;
    body["tags"] = tags;
    let etag = format!("\"{}\"", current["version"]);
    let reply = api.send(ApiRequest::put(&path).header("If-Match", &etag).json(&body)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

async fn delete(api: &TestApi, current: &Value) {
    let path = format!("/books/{}", current["id"].as_str().unwrap());
    let etag = format!("\"{}\"", current["version"]);
    let reply = api.send(ApiRequest::delete(&path).header("If-Match", &etag)).await;
    assert_eq!(reply.status, 204, "{reply:?}");
}

#[tokio::test]
async fn a_rebuild_makes_the_view_show_the_write_model_while_writes_go_on() {
    let api = TestApi::start().await;
    let mut live = Vec::new();
    for n in 0..10 {
        live.push(api.create(book(n)).await);
    }
    // The view falls behind and diverges: batches lost to the failure queue…
    let lost_create = api.send(ApiRequest::post("/books").json(&book(100))).await.json();
    let lost_update = update(&api, &live[0], json!(["Grace Hopper"]), json!(["compilers"])).await;
    delete(&api, &live[1]).await;
    assert!(api.lose_stream_records().await >= 3, "a create, an update and a delete are lost");
    // …and an item stored wrong at the right version, by a faulty projection.
    let wrong = json!({"S": "Not the title"});
    let key = [("pk", format!("BOOK#{}", live[2]["id"].as_str().unwrap())), ("sk", "BOOK".to_owned())];
    let mut item = api
        .tables
        .scan(&api.tables.books_view)
        .await
        .into_iter()
        .find(|item| key.iter().all(|(name, value)| item.get(*name).and_then(|v| v.as_s().ok()) == Some(value)))
        .unwrap();
    item.insert("title".into(), serde_dynamo::to_attribute_value(wrong["S"].as_str().unwrap()).unwrap());
    api.tables.client.put_item().table_name(&api.tables.books_view).set_item(Some(item)).send().await.unwrap();
    let (before, _) = shown(&api, &[]).await;
    assert_ne!(before, expected(&api).await.0, "the view diverged");

    // Rebuilds run while the API takes writes and the projector applies them.
    let store = BookStore::new(api.tables.client.clone(), &api.tables.books);
    let rebuilds = async {
        let mut reports = Vec::new();
        for _ in 0..3 {
            reports.push(rebuild_view(&store, &api.view, chrono::Utc::now().timestamp()).await.unwrap());
        }
        reports
    };
    let writes = async {
        for (n, created) in live.iter().enumerate().skip(3).take(5) {
            let path = format!("/books/{}", created["id"].as_str().unwrap());
            let current = api.send(ApiRequest::get(&path)).await.json();
            match n % 3 {
                0 => delete(&api, &current).await,
                1 => drop(update(&api, &current, json!([format!("Author {n}")]), json!([])).await),
                _ => drop(api.send(ApiRequest::post("/books").json(&book(200 + n as u32))).await),
            }
            api.project().await;
        }
    };
    let (reports, ()) = tokio::join!(rebuilds, writes);
    api.project().await;

    let (items, books) = expected(&api).await;
    let (view_items, read) = shown(&api, &books).await;
    assert_eq!(view_items, items, "the view's live items are the write model's");
    assert_eq!(read, books, "every book reads as the write model has it");
    assert!(books.iter().any(|b| b["id"] == lost_create["id"]), "the lost create is shown");
    assert!(books.iter().any(|b| b["id"] == lost_update["id"] && b["authors"] == json!(["Grace Hopper"])));
    assert!(reports[0].written > 0 && reports[0].tombstones >= 3, "{reports:?}");
}
