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
