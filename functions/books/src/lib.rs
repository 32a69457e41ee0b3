//! `books`: everything the Books Lambda functions share — the domain, the DynamoDB stores of
//! the write and read models, the HTTP mapping of the API contract, the stream projector, the
//! read model's rebuild and the telemetry set-up. The binaries only read configuration, build
//! clients and call in here.

pub mod config;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod projector;
pub mod repair;
pub mod store;
pub mod telemetry;
