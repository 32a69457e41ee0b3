//! Metric extraction from EMF, as CloudWatch Logs does it at ingestion: every log event that is
//! an embedded-metric-format document becomes metric data. The local endpoint does not extract,
//! so this task follows every log stream of every log group in ingestion order and records what
//! each new document declares. GetLogEvents pages by timestamp, so an event that arrives older
//! than one already read would be missed: the local endpoint reads a stream in ingestion order
//! for a token `i/<n>` (docs/local-endpoint-protocol.md), which is what this task follows.
//! Documents CloudWatch would reject (the specification's rules, read by `telemetry_schema::emf`,
//! and its time window) yield no metric and count as `AWS/Logs` `EMFValidationErrors`
//! (`EMFParsingErrors` when the event is not JSON at all) of their log group, as CloudWatch counts
//! them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use telemetry_schema::emf::{Document, EmfError};

use super::metrics::{now_ms, Datum, MetricSink};

/// The local endpoint's token for a stream's first event in ingestion order.
const FROM_FIRST_INGESTED: &str = "i/0";

/// How often the log streams are read.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// CloudWatch takes metric data up to two weeks old...
const OLDEST_MS: i64 = 14 * 24 * 3600 * 1000;
/// ... and up to two hours ahead.
const NEWEST_MS: i64 = 2 * 3600 * 1000;

/// Why a log event yields no metric although it declares some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// It is not JSON (`EMFParsingErrors`).
    #[error("not JSON")]
    Parsing,
    /// It breaks a rule of the specification (`EMFValidationErrors`).
    #[error(transparent)]
    Validation(#[from] EmfError),
    /// Its timestamp is more than two weeks old or two hours ahead (`EMFValidationErrors`).
    #[error("its timestamp is outside what CloudWatch accepts")]
    Timestamp,
}

impl Rejected {
    /// The `AWS/Logs` metric counting it.
    pub(crate) fn metric(&self) -> &'static str {
        match self {
            Self::Parsing => "EMFParsingErrors",
            Self::Validation(_) | Self::Timestamp => "EMFValidationErrors",
        }
    }
}

/// The metric data one log event declares: `Ok(None)` when it is no EMF document.
pub(crate) fn extract(message: &str, event_timestamp_ms: i64, now_ms: i64) -> Result<Option<Vec<Datum>>, Rejected> {
    if !message.contains("\"_aws\"") {
        return Ok(None);
    }
    let document = match Document::parse(message) {
        Ok(document) => document,
        Err(EmfError::NotAnObject) => return Err(Rejected::Parsing),
        Err(EmfError::NotEmf) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let timestamp_ms = document.timestamp_ms.unwrap_or(event_timestamp_ms);
    if timestamp_ms < now_ms - OLDEST_MS || timestamp_ms > now_ms + NEWEST_MS {
        return Err(Rejected::Timestamp);
    }
    let mut data = Vec::new();
    for metric in document.metrics {
        for dimensions in &metric.dimension_sets {
            data.extend(metric.values.iter().map(|value| Datum {
                namespace: metric.namespace.clone(),
                name: metric.name.clone(),
                dimensions: dimensions.clone(),
                unit: metric.unit.clone(),
                storage_resolution: metric.storage_resolution,
                timestamp_ms,
                value: *value,
            }));
        }
    }
    Ok(Some(data))
}

/// Follows every log stream and records the metrics of each new EMF document.
pub struct Extraction {
    logs: aws_sdk_cloudwatchlogs::Client,
    sink: MetricSink,
    /// Per (group, stream), the forward token after the last event read.
    read: HashMap<(String, String), String>,
}

impl Extraction {
    /// Reads the log groups of `logs`, records into `sink`.
    pub fn new(logs: aws_sdk_cloudwatchlogs::Client, sink: MetricSink) -> Self {
        Self { logs, sink, read: HashMap::new() }
    }

    /// Goes on from where an earlier run stopped reading (per log group, per log stream, the
    /// token [`Extraction::run`] returned): those events were extracted already.
    pub fn resuming(mut self, read: BTreeMap<String, BTreeMap<String, String>>) -> Self {
        for (group, streams) in read {
            for (stream, token) in streams {
                self.read.insert((group.clone(), stream), token);
            }
        }
        self
    }

    /// Reads every [`POLL_INTERVAL`] until `shutdown` resolves, then once more; returns how far
    /// it read each stream.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> BTreeMap<String, BTreeMap<String, String>> {
        tokio::pin!(shutdown);
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => false,
                () = &mut shutdown => true,
            };
            if let Err(error) = self.poll().await {
                let error = aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&error);
                tracing::warn!(%error, "EMF extraction: reading the log groups failed");
            }
            if stopping {
                let mut read: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                for ((group, stream), token) in self.read {
                    read.entry(group).or_default().insert(stream, token);
                }
                return read;
            }
        }
    }

    /// Reads what every stream received since the last call; returns how many documents
    /// yielded metrics.
    pub async fn poll(&mut self) -> Result<usize, aws_sdk_cloudwatchlogs::Error> {
        let groups = self.logs.describe_log_groups().into_paginator().items().send().try_collect().await?;
        let mut documents = 0;
        for group in groups.iter().filter_map(|g| g.log_group_name()) {
            let streams = self
                .logs
                .describe_log_streams()
                .log_group_name(group)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await?;
            for stream in streams.iter().filter_map(|s| s.log_stream_name()) {
                documents += self.read_stream(group, stream).await?;
            }
        }
        Ok(documents)
    }

    async fn read_stream(&mut self, group: &str, stream: &str) -> Result<usize, aws_sdk_cloudwatchlogs::Error> {
        let key = (group.to_owned(), stream.to_owned());
        let mut documents = 0;
        loop {
            let token = self.read.get(&key).cloned().unwrap_or_else(|| FROM_FIRST_INGESTED.to_owned());
            let page = self
                .logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .next_token(&token)
                .send()
                .await?;
            let now = now_ms();
            for event in page.events() {
                let (Some(message), Some(at)) = (event.message(), event.timestamp()) else { continue };
                match extract(message, at, now) {
                    Ok(Some(data)) => {
                        documents += 1;
                        data.into_iter().for_each(|datum| self.sink.record(datum));
                    }
                    Ok(None) => {}
                    Err(rejected) => {
                        tracing::debug!(group, %rejected, "EMF document rejected");
                        self.sink.record(Datum::now(
                            "AWS/Logs",
                            rejected.metric(),
                            &[("LogGroupName", group)],
                            "Count",
                            1.0,
                        ));
                    }
                }
            }
            let next = page.next_forward_token().map(str::to_owned);
            let done = page.events().is_empty() || next.is_none() || next.as_deref() == Some(token.as_str());
            if let Some(next) = next {
                self.read.insert(key.clone(), next);
            }
            if done {
                return Ok(documents);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn a_stream_is_read_from_the_first_token_the_endpoint_documents() {
        let tokens = crate::endpoint_contract::example("ingestion-order");
        assert_eq!(tokens["first"], FROM_FIRST_INGESTED);
    }

    #[test]
    fn the_documented_example_becomes_one_value_per_dimension_set() {
        // The example of AWS's "Specification: Embedded metric format", made recent.
        let message = format!(
            r#"{{"_aws":{{"Timestamp":{NOW},"CloudWatchMetrics":[{{"Namespace":"lambda-function-metrics",
            "Dimensions":[["functionVersion"],[]],"Metrics":[{{"Name":"time","Unit":"Milliseconds"}}]}}]}},
            "functionVersion":"$LATEST","time":100,"requestId":"989ffbf8-9ace-4817-a57c-e4dd734019ee"}}"#
        );
        let data = extract(&message, NOW - 5, NOW).unwrap().unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].dimensions, [("functionVersion".to_owned(), "$LATEST".to_owned())]);
        assert!(data[1].dimensions.is_empty());
        assert!(data
            .iter()
            .all(|d| d.value == 100.0 && d.timestamp_ms == NOW && d.unit.as_deref() == Some("Milliseconds")));
    }

    #[test]
    fn without_its_own_timestamp_a_document_takes_the_event_s() {
        let message = r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"M","StorageResolution":1}]}]},"M":[1,2]}"#;
        let data = extract(message, NOW - 1_000, NOW).unwrap().unwrap();
        assert_eq!(
            data.iter().map(|d| (d.value, d.timestamp_ms, d.storage_resolution)).collect::<Vec<_>>(),
            [(1.0, NOW - 1_000, 1), (2.0, NOW - 1_000, 1)]
        );
    }

    #[test]
    fn what_cloudwatch_rejects_yields_no_metric_and_says_which_error_metric_counts_it() {
        let document = |timestamp: i64, value: &str| {
            format!(
                r#"{{"_aws":{{"Timestamp":{timestamp},"CloudWatchMetrics":[{{"Namespace":"N","Dimensions":[],"Metrics":[{{"Name":"M"}}]}}]}},"M":{value}}}"#
            )
        };
        let rejected = |message: &str| extract(message, NOW, NOW).unwrap_err();
        assert_eq!(rejected(&document(NOW, "\"x\"")).metric(), "EMFValidationErrors");
        assert_eq!(rejected(&document(NOW - OLDEST_MS - 1, "1")), Rejected::Timestamp);
        assert_eq!(rejected(&document(NOW + NEWEST_MS + 1, "1")), Rejected::Timestamp);
        assert!(extract(&document(NOW - OLDEST_MS + 1, "1"), NOW, NOW).unwrap().is_some(), "inside the window");
        assert_eq!(rejected(r#"{"_aws": {"CloudWatchMetrics": [ truncated"#).metric(), "EMFParsingErrors");
        assert_eq!(extract(r#"{"message": "no metrics", "_aws": 1}"#, NOW, NOW), Ok(None), "not a document");
        assert_eq!(extract("plain text", NOW, NOW), Ok(None));
    }
}
