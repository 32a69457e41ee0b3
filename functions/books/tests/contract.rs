//! The HTTP contract of design.md §3, row by row, through real API Gateway REST proxy events
//! and real DynamoDB (moto). Reads go through the projector, as in production.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use books_testkit::ApiRequest;
use serde_json::json;
use support::{book, isbn13, TestApi};

// --- POST /books -------------------------------------------------------------------------------

#[tokio::test]
async fn post_creates_a_book_with_201_location_and_etag() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::post("/books").json(&book(1))).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let created = reply.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 26, "a ULID");
    assert_eq!(reply.header("location"), Some(format!("/v1/books/{id}").as_str()));
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert_eq!(created["version"], 1);
    assert_eq!(created["title"], "Book number 1");
    assert_eq!(created["isbn"], isbn13(1));
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(api.count_items(&api.tables.books, "BOOK#").await, 1);
    assert_eq!(api.count_items(&api.tables.books, "ISBN#").await, 1);
}

#[tokio::test]
async fn post_stores_an_isbn10_as_isbn13() {
    let api = TestApi::start().await;
    let mut body = book(1);
    body["isbn"] = json!("0-306-40615-2");
    let created = api.create(body).await;
    assert_eq!(created["isbn"], "9780306406157");
}

#[tokio::test]
async fn post_with_invalid_fields_is_400_naming_each_field() {
    let api = TestApi::start().await;
    let body = json!({
        "title": "",
        "authors": [],
        "isbn": "978-0-306-40615-8",
        "published_year": 1200,
        "tags": ["ok", 5],
        "colour": "red"
    });
    let reply = api.send(ApiRequest::post("/books").json(&body)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_fields(), vec!["colour", "title", "authors", "isbn", "published_year", "tags[1]"]);
    assert_eq!(reply.json()["type"], "urn:books:problem:validation-error");
}

#[tokio::test]
async fn post_with_a_duplicate_isbn_is_409_and_keeps_one_book() {
    let api = TestApi::start().await;
    api.create(book(1)).await;
    let mut again = book(1);
    again["title"] = json!("Another title, same ISBN");
    let reply = api.send(ApiRequest::post("/books").json(&again)).await;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(reply.problem_fields(), vec!["isbn"]);
    assert_eq!(api.count_items(&api.tables.books, "BOOK#").await, 1);
    assert_eq!(api.count_items(&api.tables.books, "ISBN#").await, 1);
}

#[tokio::test]
async fn post_with_a_non_json_content_type_is_415() {
    let api = TestApi::start().await;
    let request = ApiRequest::post("/books").header("Content-Type", "text/plain").raw_body(&book(1).to_string());
    let reply = api.send(request).await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.problem_fields(), vec!["Content-Type"]);
    let reply = api.send(ApiRequest::post("/books").raw_body(&book(1).to_string())).await;
    assert_eq!(reply.status, 415, "no Content-Type at all");
}

#[tokio::test]
async fn post_with_a_body_over_64_kib_is_413() {
    let api = TestApi::start().await;
    let mut body = book(1);
    body["description"] = json!("x".repeat(64 * 1024));
    let reply = api.send(ApiRequest::post("/books").json(&body)).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.problem_fields(), vec!["body"]);
}

#[tokio::test]
async fn post_with_malformed_json_is_400() {
    let api = TestApi::start().await;
    let request = ApiRequest::post("/books").header("Content-Type", "application/json").raw_body("{\"title\": ");
    let reply = api.send(request).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_fields(), vec!["body"]);
    assert_eq!(reply.json()["type"], "urn:books:problem:malformed-json");
}

#[tokio::test]
async fn post_without_a_body_is_400() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::post("/books").header("Content-Type", "application/json")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_fields(), vec!["body"]);
}

#[tokio::test]
async fn post_with_a_base64_encoded_body_is_accepted() {
    let api = TestApi::start().await;
    let request = ApiRequest::post("/books")
        .header("Content-Type", "application/json; charset=utf-8")
        .base64_body(book(1).to_string().as_bytes());
    let reply = api.send(request).await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

#[tokio::test]
async fn malformed_or_invalid_bodies_leave_both_tables_unchanged() {
    let api = TestApi::start().await;
    let existing = api.create(book(1)).await;
    let before_books = api.tables.scan(&api.tables.books).await;
    let before_view = api.tables.scan(&api.tables.books_view).await;
    let id = existing["id"].as_str().unwrap();
    let bad_requests = [
        ApiRequest::post("/books").header("Content-Type", "application/json").raw_body("not json"),
        ApiRequest::post("/books").json(&json!({"title": "only a title"})),
        ApiRequest::post("/books").json(&json!([1, 2, 3])),
        ApiRequest::put(&format!("/books/{id}")).header("If-Match", "\"1\"").json(&json!({"title": 5})),
        ApiRequest::put(&format!("/books/{id}"))
            .header("If-Match", "\"1\"")
            .header("Content-Type", "application/json")
            .raw_body("{"),
    ];
    for request in bad_requests {
        let reply = api.send(request).await;
        assert_eq!(reply.status, 400, "{reply:?}");
    }
    api.project().await;
    assert_eq!(api.tables.scan(&api.tables.books).await, before_books);
    assert_eq!(api.tables.scan(&api.tables.books_view).await, before_view);
}

// --- Idempotency-Key ---------------------------------------------------------------------------

#[tokio::test]
async fn an_idempotent_retry_replays_the_first_response_and_creates_one_book() {
    let api = TestApi::start().await;
    let request = ApiRequest::post("/books").header("Idempotency-Key", "retry-42").json(&book(1));
    let first = api.send(request.clone()).await;
    let second = api.send(request).await;
    assert_eq!(first.status, 201);
    assert_eq!(second.status, 201);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(api.count_items(&api.tables.books, "BOOK#").await, 1);
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_422() {
    let api = TestApi::start().await;
    let first = api.send(ApiRequest::post("/books").header("Idempotency-Key", "k-1").json(&book(1))).await;
    assert_eq!(first.status, 201);
    let reply = api.send(ApiRequest::post("/books").header("Idempotency-Key", "k-1").json(&book(2))).await;
    assert_eq!(reply.status, 422, "{reply:?}");
    assert_eq!(reply.problem_fields(), vec!["Idempotency-Key"]);
    assert_eq!(api.count_items(&api.tables.books, "BOOK#").await, 1);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_to_the_api_key() {
    let api = TestApi::start().await;
    let first = api.send(ApiRequest::post("/books").header("Idempotency-Key", "same").json(&book(1))).await;
    assert_eq!(first.status, 201);
    // Another client with the same key and body is not answered with the first client's book.
    let other = ApiRequest::post("/books").header("Idempotency-Key", "same").api_key_id("otherclient").json(&book(1));
    let reply = api.send(other).await;
    assert_eq!(reply.status, 409, "a fresh create, refused for the ISBN: {reply:?}");
}

#[tokio::test]
async fn concurrent_duplicates_with_one_idempotency_key_create_one_book() {
    let api = TestApi::start().await;
    let request = ApiRequest::post("/books").header("Idempotency-Key", "burst").json(&book(7));
    let replies = futures::future::join_all((0..10).map(|_| api.send(request.clone()))).await;
    let bodies: std::collections::HashSet<&str> = replies.iter().map(|r| r.body.as_str()).collect();
    assert!(replies.iter().all(|r| r.status == 201), "{replies:?}");
    assert_eq!(bodies.len(), 1, "every reply is the first response");
    assert_eq!(api.count_items(&api.tables.books, "BOOK#").await, 1);
    assert_eq!(api.count_items(&api.tables.books, "IDEMPOTENCY#").await, 1);
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_400() {
    let api = TestApi::start().await;
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "has space"] {
        let reply = api.send(ApiRequest::post("/books").header("Idempotency-Key", key).json(&book(1))).await;
        assert_eq!(reply.status, 400, "key {key:?}: {reply:?}");
        assert_eq!(reply.problem_fields(), vec!["Idempotency-Key"]);
    }
}

// --- GET /books/{id} ---------------------------------------------------------------------------

#[tokio::test]
async fn get_returns_the_book_with_its_etag() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let reply = api.send(ApiRequest::get(&format!("/books/{}", created["id"].as_str().unwrap()))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(reply.json(), created);
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn get_with_a_matching_if_none_match_is_304() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let reply = api.send(ApiRequest::get(&path).header("If-None-Match", "\"1\"")).await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let reply = api.send(ApiRequest::get(&path).header("If-None-Match", "W/\"1\"")).await;
    assert_eq!(reply.status, 304, "weak comparison");
    let reply = api.send(ApiRequest::get(&path).header("If-None-Match", "\"2\"")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn get_of_an_unknown_book_is_404() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::get(&format!("/books/{}", ulid::Ulid::new()))).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.problem_fields(), vec!["id"]);
    let reply = api.send(ApiRequest::get("/books/not-a-book-id")).await;
    assert_eq!(reply.status, 404);
}

// --- GET /books --------------------------------------------------------------------------------

#[tokio::test]
async fn list_returns_items_in_creation_order_with_a_default_limit_of_20() {
    let api = TestApi::start().await;
    for n in 0..22 {
        api.send(ApiRequest::post("/books").json(&book(n))).await;
    }
    api.project().await;
    let reply = api.send(ApiRequest::get("/books")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    let titles: Vec<&str> = items.iter().map(|b| b["title"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("Book number {n}")).collect();
    assert_eq!(titles, expected);
    assert!(body["next_cursor"].is_string());
}

#[tokio::test]
async fn list_pagination_walks_every_item_exactly_once() {
    let api = TestApi::start().await;
    let mut expected = std::collections::BTreeSet::new();
    for n in 0..23 {
        let reply = api.send(ApiRequest::post("/books").json(&book(n))).await;
        expected.insert(reply.json()["id"].as_str().unwrap().to_owned());
    }
    api.project().await;
    for limit in [1usize, 5, 23, 100] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut request = ApiRequest::get("/books").query("limit", &limit.to_string());
            if let Some(c) = &cursor {
                request = request.query("cursor", c);
            }
            let body = api.send(request).await.json();
            let items = body["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            seen.extend(items.iter().map(|b| b["id"].as_str().unwrap().to_owned()));
            match body["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(items.len(), limit, "only full pages have a next cursor");
                    cursor = Some(next.to_owned());
                }
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), unique.len(), "no item twice (limit {limit})");
        assert_eq!(unique, expected, "every item once (limit {limit})");
    }
}

#[tokio::test]
async fn list_filters_by_author_and_tag() {
    let api = TestApi::start().await;
    let mut le_guin = book(1);
    le_guin["authors"] = json!(["Ursula K. Le Guin"]);
    le_guin["tags"] = json!(["SciFi", "utopia"]);
    let mut le_guin_2 = book(2);
    le_guin_2["authors"] = json!(["Ursula K. Le Guin"]);
    le_guin_2["tags"] = json!(["fantasy"]);
    let mut other = book(3);
    other["authors"] = json!(["Iain M. Banks"]);
    other["tags"] = json!(["scifi"]);
    for body in [le_guin, le_guin_2, other] {
        api.create(body).await;
    }
    let titles = |body: serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|b| b["title"].as_str().unwrap().to_owned()).collect()
    };
    let by_author = api.send(ApiRequest::get("/books").query("author", "ursula k.  le guin")).await;
    assert_eq!(titles(by_author.json()), vec!["Book number 1", "Book number 2"]);
    let by_tag = api.send(ApiRequest::get("/books").query("tag", "scifi")).await;
    assert_eq!(titles(by_tag.json()), vec!["Book number 1", "Book number 3"]);
    let both = api.send(ApiRequest::get("/books").query("author", "Ursula K. Le Guin").query("tag", "SCIFI")).await;
    assert_eq!(titles(both.json()), vec!["Book number 1"]);
    let none = api.send(ApiRequest::get("/books").query("tag", "cookery")).await;
    assert_eq!(none.json(), json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn a_filtered_list_reads_a_bounded_share_of_the_partition_per_page_and_loses_nothing() {
    let api = TestApi::start().await;
    // Thirty books by one author; only the last carries the tag: finding it reads them all.
    for n in 1..=30 {
        let mut body = book(n);
        body["authors"] = json!(["Prolific"]);
        body["tags"] = json!(if n == 30 { vec!["rare"] } else { vec!["common"] });
        api.create(body).await;
    }
    let (mut found, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let mut request =
            ApiRequest::get("/books").query("author", "prolific").query("tag", "rare").query("limit", "1");
        if let Some(cursor) = &cursor {
            request = request.query("cursor", cursor);
        }
        let reply = api.send(request).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body = reply.json();
        pages += 1;
        found.extend(body["items"].as_array().unwrap().iter().map(|b| b["title"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the cursor moves on");
    }
    assert_eq!(found, vec!["Book number 30"], "the tagged book, once");
    // Each page reads at most MAX_QUERIES_PER_PAGE × (limit + 1) items of the partition.
    let per_page = books::store::MAX_QUERIES_PER_PAGE * 2;
    assert!(pages >= 30_usize.div_ceil(per_page), "{pages} pages: a page read more than {per_page} items");
}

#[tokio::test]
async fn list_with_a_bad_limit_is_400() {
    let api = TestApi::start().await;
    for limit in ["0", "101", "ten", "-1", ""] {
        let reply = api.send(ApiRequest::get("/books").query("limit", limit)).await;
        assert_eq!(reply.status, 400, "limit {limit:?}");
        assert_eq!(reply.problem_fields(), vec!["limit"]);
    }
}

#[tokio::test]
async fn list_with_a_tampered_or_foreign_cursor_is_400() {
    let api = TestApi::start().await;
    for n in 0..3 {
        api.create(book(n)).await;
    }
    let body = api.send(ApiRequest::get("/books").query("limit", "1")).await.json();
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "not-a-cursor", "e30.AAAA"] {
        let reply = api.send(ApiRequest::get("/books").query("cursor", bad)).await;
        assert_eq!(reply.status, 400, "cursor {bad:?}");
        assert_eq!(reply.problem_fields(), vec!["cursor"]);
    }
    let other_query = api.send(ApiRequest::get("/books").query("tag", "history").query("cursor", &cursor)).await;
    assert_eq!(other_query.status, 400);
    assert_eq!(other_query.problem_fields(), vec!["cursor"]);
}

#[tokio::test]
async fn list_with_an_unknown_or_repeated_parameter_is_400() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::get("/books").query("sort", "title")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_fields(), vec!["sort"]);
    let reply = api.send(ApiRequest::get("/books").query("tag", "a").query("tag", "b")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_fields(), vec!["tag"]);
}

// --- PUT /books/{id} ---------------------------------------------------------------------------

#[tokio::test]
async fn put_with_a_matching_if_match_is_200_with_a_new_etag() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let mut changed = book(1);
    changed["title"] = json!("Renamed");
    changed["tags"] = json!(["renamed"]);
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&changed)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("etag"), Some("\"2\""));
    let updated = reply.json();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["title"], "Renamed");
    assert_eq!(updated["created_at"], created["created_at"]);
    api.project().await;
    let read = api.send(ApiRequest::get(&path)).await;
    assert_eq!(read.json(), updated);
    let by_old_tag = api.send(ApiRequest::get("/books").query("tag", "history")).await.json();
    assert_eq!(by_old_tag["items"], json!([]), "the view forgot the removed tag");
}

#[tokio::test]
async fn put_accepts_the_representation_it_returned() {
    let api = TestApi::start().await;
    let mut created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    created["title"] = json!("Edited after a GET");
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&created)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn put_without_if_match_is_428() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let reply = api.send(ApiRequest::put(&format!("/books/{}", created["id"].as_str().unwrap())).json(&book(1))).await;
    assert_eq!(reply.status, 428);
    assert_eq!(reply.problem_fields(), vec!["If-Match"]);
}

#[tokio::test]
async fn put_with_a_stale_if_match_is_412() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    assert_eq!(api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&book(1))).await.status, 200);
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&book(1))).await;
    assert_eq!(reply.status, 412);
    assert_eq!(reply.problem_fields(), vec!["If-Match"]);
    assert_eq!(reply.header("etag"), Some("\"2\""), "the current ETag helps the client re-read");
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "W/\"2\"").json(&book(1))).await;
    assert_eq!(reply.status, 412, "If-Match uses strong comparison");
}

#[tokio::test]
async fn put_of_an_unknown_book_is_404() {
    let api = TestApi::start().await;
    let reply = api
        .send(ApiRequest::put(&format!("/books/{}", ulid::Ulid::new())).header("If-Match", "\"1\"").json(&book(1)))
        .await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn put_with_invalid_fields_is_400() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let mut body = book(1);
    body["published_year"] = json!(3000);
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&body)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_fields(), vec!["published_year"]);
    let mut body = book(1);
    body["id"] = json!(ulid::Ulid::new().to_string());
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&body)).await;
    assert_eq!(reply.problem_fields(), vec!["id"]);
}

#[tokio::test]
async fn put_moving_to_a_taken_isbn_is_409_and_a_freed_isbn_can_be_reused() {
    let api = TestApi::start().await;
    let first = api.create(book(1)).await;
    api.create(book(2)).await;
    let path = format!("/books/{}", first["id"].as_str().unwrap());
    let reply = api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&book(2))).await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.problem_fields(), vec!["isbn"]);
    let mut moved = book(1);
    moved["isbn"] = json!(isbn13(3));
    assert_eq!(api.send(ApiRequest::put(&path).header("If-Match", "\"1\"").json(&moved)).await.status, 200);
    assert_eq!(api.send(ApiRequest::post("/books").json(&book(1))).await.status, 201, "ISBN 1 is free again");
    assert_eq!(api.count_items(&api.tables.books, "ISBN#").await, 3);
}

#[tokio::test]
async fn twenty_concurrent_puts_with_the_same_if_match_let_exactly_one_win() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let requests = (0..20).map(|n| {
        let mut body = book(1);
        body["title"] = json!(format!("Writer {n}"));
        ApiRequest::put(&path).header("If-Match", "\"1\"").json(&body)
    });
    let replies = futures::future::join_all(requests.map(|r| api.send(r))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [vec![200], vec![412; 19]].concat(), "{replies:?}");
    let winner = replies.iter().find(|r| r.status == 200).unwrap().json();
    api.project().await;
    let stored = api.send(ApiRequest::get(&path)).await.json();
    assert_eq!(stored, winner);
    assert_eq!(stored["version"], 2);
}

// --- DELETE /books/{id} ------------------------------------------------------------------------

#[tokio::test]
async fn delete_is_204_and_the_book_is_gone_everywhere() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let reply = api.send(ApiRequest::delete(&path).header("If-Match", "\"1\"")).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert!(reply.body.is_empty());
    assert!(reply.header("x-request-id").is_some());
    api.project().await;
    assert_eq!(api.send(ApiRequest::get(&path)).await.status, 404);
    assert_eq!(api.send(ApiRequest::get("/books")).await.json()["items"], json!([]));
    assert_eq!(api.count_items(&api.tables.books, "BOOK#").await, 0);
    assert_eq!(api.count_items(&api.tables.books, "ISBN#").await, 0, "the ISBN guard went with it");
    assert_eq!(api.send(ApiRequest::post("/books").json(&book(1))).await.status, 201);
}

#[tokio::test]
async fn delete_of_an_unknown_book_is_404() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::delete(&format!("/books/{}", ulid::Ulid::new())).header("If-Match", "*")).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn delete_without_if_match_is_428_and_deletes_nothing() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let reply = api.send(ApiRequest::delete(&path)).await;
    assert_eq!(reply.status, 428, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(reply.problem_fields(), vec!["If-Match"]);
    api.project().await;
    assert_eq!(api.send(ApiRequest::get(&path)).await.json(), created);
    // `*` deletes whatever version is current: a deliberate blind delete.
    assert_eq!(api.send(ApiRequest::delete(&path).header("If-Match", "*")).await.status, 204);
}

#[tokio::test]
async fn delete_with_a_stale_if_match_is_412() {
    let api = TestApi::start().await;
    let created = api.create(book(1)).await;
    let path = format!("/books/{}", created["id"].as_str().unwrap());
    let reply = api.send(ApiRequest::delete(&path).header("If-Match", "\"9\"")).await;
    assert_eq!(reply.status, 412);
    assert_eq!(reply.problem_fields(), vec!["If-Match"]);
    assert_eq!(api.send(ApiRequest::delete(&path).header("If-Match", "\"1\"")).await.status, 204);
}

// --- routing -----------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_route_is_404() {
    let api = TestApi::start().await;
    for path in ["/authors", "/books/1/chapters", "/"] {
        let reply = api.send(ApiRequest::get(path)).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
        let reply = api.send(ApiRequest::post(path).json(&book(1))).await;
        assert_eq!(reply.status, 404, "{path}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::new("PATCH", "/books")).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = api.send(ApiRequest::post(&format!("/books/{}", ulid::Ulid::new())).json(&book(1))).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("PUT, DELETE"));
}

#[tokio::test]
async fn problems_carry_the_request_id_and_the_path() {
    let api = TestApi::start().await;
    let reply = api.send(ApiRequest::get("/books/nope")).await;
    let body = reply.json();
    assert_eq!(body["instance"], "/v1/books/nope");
    assert_eq!(body["request_id"].as_str(), reply.header("x-request-id"));
    assert!(!body["request_id"].as_str().unwrap().is_empty());
}
