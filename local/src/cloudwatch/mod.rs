//! The CloudWatch side of the local cloud, which the local endpoint stores but does not run:
//! metric data sent as AWS sends it ([`metrics`]: the gateway's `AWS/ApiGateway`, the
//! emulator's `AWS/Lambda`, the queues' `AWS/SQS` depths ([`queues`]), the EMF documents' own
//! namespaces), EMF documents in log groups turned into metrics ([`emf`]), and every alarm
//! evaluated on its schedule, notifying its SNS topic on a change ([`alarms`]).
//!
//! What the local endpoint cannot tell is not made up: moto never throttles, so the
//! `AWS/DynamoDB` throttle metrics are never published (CloudWatch treats missing data of that
//! namespace as "ignore", so those alarms stay as they are).

pub mod alarms;
pub mod emf;
pub mod metrics;
pub mod queues;

pub use metrics::{Datum, MetricSink};
