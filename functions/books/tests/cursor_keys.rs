//! The query function's cursor keys, read from a Secrets Manager secret on the local endpoint
//! as AWS's own API leaves it after each write: the current value signs, the value a rotation
//! replaced (AWSPREVIOUS, which Secrets Manager moves by itself) still verifies.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use books::config::read_cursor_keys;
use books::http::CursorKey;

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
async fn a_missing_secret_or_a_short_key_stops_the_start_with_the_reason() {
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
