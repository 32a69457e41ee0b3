//! The system under test for the integration tests: the command and query handlers and the
//! projector on fresh moto tables, fed with API Gateway events and real stream records.

#![allow(dead_code)]

use std::collections::HashMap;

use books::http::command::{self, Commands};
use books::http::query::{self, Queries};
use books::http::{CursorKey, CursorKeys};
use books::projector::project_batch;
use books::store::{BookStore, ViewStore};
use books_testkit::{stream_event, ApiRequest, StreamReader, TestTables};
use serde_json::{json, Value};

pub(crate) struct TestApi {
    pub(crate) tables: TestTables,
    pub(crate) commands: Commands,
    pub(crate) queries: Queries,
    pub(crate) view: ViewStore,
    stream: tokio::sync::Mutex<StreamReader>,
}

/// A response as the client sees it.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The fields named by a problem document, in order.
    pub(crate) fn problem_fields(&self) -> Vec<String> {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        let body = self.json();
        assert_eq!(body["status"], json!(self.status));
        body["errors"].as_array().into_iter().flatten().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
    }
}

impl TestApi {
    pub(crate) async fn start() -> Self {
        let tables = TestTables::create().await;
        let store = BookStore::new(tables.client.clone(), &tables.books);
        let view = ViewStore::new(tables.client.clone(), &tables.books_view);
        let cursor_keys = CursorKeys::single(CursorKey::new(b"0123456789abcdef0123456789abcdef").unwrap());
        let stream = StreamReader::new(&tables.client, &tables.books).await;
        Self {
            commands: Commands::new(store),
            queries: Queries { view: view.clone(), cursor_keys: cursor_keys.into() },
            view,
            stream: tokio::sync::Mutex::new(stream),
            tables,
        }
    }

    /// Sends a request to the function API Gateway routes it to (GET → query, else command).
    pub(crate) async fn send(&self, request: ApiRequest) -> Reply {
        let req = request.build();
        let response = if req.method() == http::Method::GET {
            query::handle(&self.queries, req).await
        } else {
            command::handle(&self.commands, req).await
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = match response.body() {
            lambda_http::Body::Empty => String::new(),
            lambda_http::Body::Text(text) => text.clone(),
            lambda_http::Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        Reply { status, headers, body }
    }

    /// Plays the event source mapping once: every new stream record goes to the projector.
    pub(crate) async fn project(&self) {
        let records = self.stream.lock().await.next_records().await;
        if records.is_empty() {
            return;
        }
        let response = project_batch(&self.view, stream_event(records), chrono::Utc::now().timestamp()).await;
        assert!(response.batch_item_failures.is_empty(), "projection failed: {:?}", response.batch_item_failures);
    }

    /// Reads the new stream records and applies none of them: the batches a projector gave up on.
    pub(crate) async fn lose_stream_records(&self) -> usize {
        self.stream.lock().await.next_records().await.len()
    }

    /// Creates a book and projects it; returns the created representation.
    pub(crate) async fn create(&self, body: Value) -> Value {
        let reply = self.send(ApiRequest::post("/books").json(&body)).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        self.project().await;
        reply.json()
    }

    pub(crate) async fn count_items(&self, table: &str, prefix: &str) -> usize {
        self.tables
            .scan(table)
            .await
            .iter()
            .filter(|item| item.get("pk").and_then(|pk| pk.as_s().ok()).is_some_and(|pk| pk.starts_with(prefix)))
            .count()
    }
}

/// A valid book body; `n` varies the ISBN and title.
pub(crate) fn book(n: u32) -> Value {
    json!({
        "title": format!("Book number {n}"),
        "authors": ["Ada Lovelace", "Charles Babbage"],
        "isbn": isbn13(n),
        "published_year": 1843,
        "tags": ["computing", "history"],
        "description": "Notes on the analytical engine."
    })
}

/// A valid ISBN-13 derived from `n`.
pub(crate) fn isbn13(n: u32) -> String {
    let body = format!("978{n:09}");
    let sum: u32 =
        body.chars().enumerate().map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 }).sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}
