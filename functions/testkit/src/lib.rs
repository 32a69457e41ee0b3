//! Test support shared by every integration test: the local AWS endpoint (moto server), the
//! DynamoDB tables created from `terraform/tables.json` (the definition Terraform uses too),
//! API Gateway REST proxy events, the stream records moto really produced, and what reached
//! CloudWatch Logs, read back.

// Test support: a panic fails the test that called it, with the message it carries.
#![allow(clippy::unwrap_used)]

mod apigw;
pub mod logs;
mod moto;
mod streams;
mod tables;

pub use apigw::ApiRequest;
pub use moto::{aws_config, endpoint};
pub use streams::{event as stream_event, StreamReader};
pub use tables::{TableSchema, TestTables};

/// The workspace root, for files shared with other parts of the project.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Waits until `done` holds, checking every 20 ms, for at most `bound` (choose it generous: a
/// loaded machine is slow, never wrong); true if it held. Every test that waits on a condition
/// waits through this, never on a fixed sleep.
pub async fn eventually<F, Fut>(bound: std::time::Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if done().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
