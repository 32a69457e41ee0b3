//! `books-local`: the local cloud. Runs the unchanged function and extension binaries inside an
//! emulation of the Lambda execution environment (Runtime, Extensions and Telemetry APIs),
//! behind an emulated API Gateway REST stage, fed by an emulated DynamoDB stream event source
//! mapping — all configured from what Terraform created in the local AWS endpoint (moto).

pub mod cloud;
pub mod cloudwatch;
pub mod emitted;
#[cfg(test)]
mod endpoint_contract;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
mod http_util;
pub mod invoke;
pub mod lambda;
pub mod positions;
pub mod serve;
pub mod stream_poller;
pub mod up;
pub mod verify;
pub mod watch;
