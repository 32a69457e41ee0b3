//! The query function's cursor keys, read from a Secrets Manager secret on the local endpoint
//! as AWS's own API leaves it after each write: the current value signs, the value a rotation
//! replaced (AWSPREVIOUS, which Secrets Manager moves by itself) still verifies; environments
//! started on either side of a rotation accept each other's cursors; and a secret store that
//! cannot be read fails lists only.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use books::config::{read_cursor_keys, secret_keyring};
use books::http::query::{self, Queries};
use books::http::{CursorKey, RefreshPolicy};
use books::store::ViewStore;
use books_testkit::ApiRequest;

mod support;
use support::{book, TestApi};

fn id(secret: &str) -> String {
    CursorKey::new(secret.as_bytes()).unwrap().id().to_owned()
}

#[tokio::test]
async fn the_current_key_signs_and_the_one_a_rotation_replaced_still_verifies() {
    let aws = books_testkit::aws_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let name = format!("cursor-key-{}", ulid::Ulid::new());
    let (first, second, third) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let arn = secrets.create_secret().name(&name).secret_string(&first).send().await.unwrap().arn.unwrap();

    let keys = read_cursor_keys(&aws, &arn).await.unwrap();
    assert_eq!(keys.ids(), vec![id(&first)], "before any rotation, one key");

    secrets.put_secret_value().secret_id(&arn).secret_string(&second).send().await.unwrap();
    let keys = read_cursor_keys(&aws, &name).await.unwrap();
    assert_eq!(keys.ids(), vec![id(&second), id(&first)], "the new key signs, the replaced one verifies");

    secrets.put_secret_value().secret_id(&arn).secret_string(&third).send().await.unwrap();
    let keys = read_cursor_keys(&aws, &arn).await.unwrap();
    assert_eq!(keys.ids(), vec![id(&third), id(&second)], "two rotations later the first key is gone");
}

#[tokio::test]
async fn a_missing_secret_or_a_short_key_is_refused_with_the_reason() {
    let aws = books_testkit::aws_config().await;
    let err = read_cursor_keys(&aws, "no-such-secret").await.err().unwrap().to_string();
    assert!(err.contains("BOOKS_CURSOR_KEY_SECRET") && err.contains("AWSCURRENT"), "{err}");

    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let name = format!("short-key-{}", ulid::Ulid::new());
    secrets.create_secret().name(&name).secret_string("too short").send().await.unwrap();
    let err = read_cursor_keys(&aws, &name).await.err().unwrap().to_string();
    assert!(err.contains("at least 32 bytes"), "{err}");
    assert!(!err.contains("too short"), "the value never reaches a message: {err}");
}

/// An environment's policy that never reads again on its own: only an unknown key does.
const NO_AGEING: RefreshPolicy =
    RefreshPolicy { max_age: Duration::from_secs(3600), unknown_key_interval: Duration::from_secs(3600) };

async fn list(queries: &Queries, cursor: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = ApiRequest::get("/books").query("limit", "1");
    if let Some(cursor) = cursor {
        request = request.query("cursor", cursor);
    }
    let response = query::handle(queries, request.build()).await;
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("not a JSON body: {other:?}"),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn environments_on_both_sides_of_a_rotation_accept_each_other_s_cursors() {
    let aws = books_testkit::aws_config().await;
    let api = TestApi::start().await;
    for n in 0..3 {
        api.create(book(n)).await;
    }
    let view: ViewStore = api.view.clone();
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let name = format!("cursor-key-{}", ulid::Ulid::new());
    let arn = secrets.create_secret().name(&name).secret_string("a".repeat(64)).send().await.unwrap().arn.unwrap();
    let environment = || Queries { view: view.clone(), cursor_keys: secret_keyring(&aws, arn.clone(), NO_AGEING) };

    let before = environment();
    let (status, first_page) = list(&before, None).await;
    assert_eq!(status, 200, "{first_page}");
    let old_cursor = first_page["next_cursor"].as_str().unwrap().to_owned();

    secrets.put_secret_value().secret_id(&arn).secret_string("b".repeat(64)).send().await.unwrap();
    let after = environment();
    let (status, page) = list(&after, Some(&old_cursor)).await;
    assert_eq!(status, 200, "a cursor signed before the rotation, on an environment started after it: {page}");
    let new_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert!(new_cursor.starts_with(&id(&"b".repeat(64))), "the new key signs: {new_cursor}");

    let (status, page) = list(&before, Some(&new_cursor)).await;
    assert_eq!(status, 200, "a cursor signed after the rotation, on an environment started before it: {page}");
    assert_eq!(before.cursor_keys.ids().await, vec![id(&"b".repeat(64)), id(&"a".repeat(64))]);
}

#[tokio::test]
async fn a_secret_store_that_cannot_be_read_fails_lists_and_nothing_else() {
    let aws = books_testkit::aws_config().await;
    let api = TestApi::start().await;
    let book_id = api.create(book(1)).await["id"].as_str().unwrap().to_owned();
    api.create(book(2)).await;
    let view = api.view.clone();
    let queries =
        Queries { view, cursor_keys: secret_keyring(&aws, format!("no-such-secret-{}", ulid::Ulid::new()), NO_AGEING) };

    let response = query::handle(&queries, ApiRequest::get(&format!("/books/{book_id}")).build()).await;
    assert_eq!(response.status(), 200, "a book by id needs no cursor key");
    let (status, problem) = list(&queries, None).await;
    assert_eq!(status, 500, "a first page with a next one needs the key to sign its cursor: {problem}");
    assert_eq!(problem["detail"], "the request could not be completed; retry later", "{problem}");
}
