//! `make bench`: what the Books handlers cost on top of the DynamoDB calls they make, measured
//! side by side in one run against the same moto server, so the numbers that matter are
//! ratios (these machines are noisy; absolute times are printed for context only).
//!
//! Pairs, interleaved round by round so both sides see the same machine load:
//! - `POST /books` through the command handler vs. the bare `TransactWriteItems` it issues;
//! - `GET /books/{id}` through the query handler vs. the bare `GetItem` it issues;
//! - validating a book body vs. only parsing its JSON (pure CPU).

// Bench set-up, like a test: a panic stops the run with the message it carries.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use books::domain::BookDraft;
use books::http::command::{self, Commands};
use books::http::query::{self, Queries};
use books::http::{CursorKey, CursorKeys};
use books::store::{BookStore, ViewStore};
use books_testkit::{ApiRequest, TestTables};
use serde_json::{json, Value};

const ROUNDS: usize = 200;

fn book(n: usize) -> Value {
    let body = format!("978{n:09}");
    let sum: u32 =
        body.chars().enumerate().map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 }).sum();
    json!({
        "title": format!("Benchmark book {n}"),
        "authors": ["Ada Lovelace"],
        "isbn": format!("{body}{}", (10 - sum % 10) % 10),
        "published_year": 1843,
        "tags": ["bench"],
    })
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn report(name: &str, ours: &mut [Duration], baseline: &mut [Duration], baseline_name: &str) {
    let (ours, baseline) = (median(ours), median(baseline));
    println!(
        "{name:<34} median {:>9.3} ms   {baseline_name:<28} median {:>9.3} ms   ratio {:>6.2}x",
        ours.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
}

async fn bare_transact_write(client: &aws_sdk_dynamodb::Client, table: &str, n: usize) {
    let item = |pk: String| -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("v".to_owned(), AttributeValue::N("1".into()))])
    };
    let put = |pk: String| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item(pk)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .unwrap(),
            )
            .build()
    };
    client
        .transact_write_items()
        .transact_items(put(format!("BARE#{n}")))
        .transact_items(put(format!("BAREGUARD#{n}")))
        .send()
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let tables = TestTables::create().await;
    let commands = Commands::new(BookStore::new(tables.client.clone(), &tables.books));
    let view = ViewStore::new(tables.client.clone(), &tables.books_view);
    let queries =
        Queries { view: view.clone(), cursor_keys: CursorKeys::single(CursorKey::new(&[1u8; 32]).unwrap()).into() };

    // Warm up connections and moto.
    for n in 0..10 {
        command::handle(&commands, ApiRequest::post("/books").json(&book(1_000_000 + n)).build()).await;
        bare_transact_write(&tables.client, &tables.books, 1_000_000 + n).await;
    }

    let (mut create, mut transact) = (Vec::new(), Vec::new());
    let mut created_ids = Vec::new();
    for n in 0..ROUNDS {
        let request = ApiRequest::post("/books").json(&book(n)).build();
        let started = Instant::now();
        let response = command::handle(&commands, request).await;
        create.push(started.elapsed());
        assert_eq!(response.status(), 201);
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        created_ids.push(body["id"].as_str().unwrap().to_owned());

        let started = Instant::now();
        bare_transact_write(&tables.client, &tables.books, n).await;
        transact.push(started.elapsed());
    }

    // Project directly: the view needs the books for the read benchmark.
    let mut reader = books_testkit::StreamReader::new(&tables.client, &tables.books).await;
    let records = reader.next_records().await;
    let outcome = books::projector::project_batch(&view, books_testkit::stream_event(records), 0).await;
    assert!(outcome.batch_item_failures.is_empty());

    let (mut get, mut get_item) = (Vec::new(), Vec::new());
    for id in &created_ids {
        let started = Instant::now();
        let response = query::handle(&queries, ApiRequest::get(&format!("/books/{id}")).build()).await;
        get.push(started.elapsed());
        assert_eq!(response.status(), 200);

        let started = Instant::now();
        tables
            .client
            .get_item()
            .table_name(&tables.books_view)
            .key("pk", AttributeValue::S(format!("BOOK#{id}")))
            .key("sk", AttributeValue::S("BOOK".into()))
            .send()
            .await
            .unwrap();
        get_item.push(started.elapsed());
    }

    let body = book(7).to_string();
    let now = chrono::Utc::now();
    let (mut validate, mut parse_only) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..100 {
            let value: Value = serde_json::from_str(&body).unwrap();
            std::hint::black_box(BookDraft::parse(&value, now).unwrap());
        }
        validate.push(started.elapsed());
        let started = Instant::now();
        for _ in 0..100 {
            std::hint::black_box(serde_json::from_str::<Value>(&body).unwrap());
        }
        parse_only.push(started.elapsed());
    }

    println!("\nBooks handlers vs. the DynamoDB calls they make ({ROUNDS} interleaved rounds, one moto server)\n");
    report("POST /books (command handler)", &mut create, &mut transact, "bare TransactWriteItems");
    report("GET /books/{id} (query handler)", &mut get, &mut get_item, "bare GetItem");
    report("parse + validate 100 bodies", &mut validate, &mut parse_only, "JSON parse only");
    println!("\nThe handler ratios include the extra reads the contract needs (idempotency and ISBN checks");
    println!("are conditions inside the same transaction, so a create is one round trip).");
}
