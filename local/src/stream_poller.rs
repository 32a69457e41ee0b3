//! Plays a DynamoDB stream event source mapping: polls each shard in order and invokes the
//! function with the real records, honouring batch size, retries, bisection on error, partial
//! batch responses (`batchItemFailures`) and the maximum record age. Records it gives up on are
//! described to the mapping's on-failure destination (an SQS queue or an SNS topic) as Lambda
//! describes them, and every invocation records the function's `IteratorAge`. It can start from
//! the checkpoints of an earlier run and hands its own back when it stops (`make run` resumes).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, Shard, ShardIteratorType};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::cloud::{EventSourceMapping, StartingPosition};
use crate::cloudwatch::{Datum, MetricSink};
use crate::invoke::{InvokeOutcome, InvokeRequest, Invoker};

/// How long to wait before polling again when a pass found nothing (Lambda polls streams about
/// four times a second).
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(300);
/// The first retry's delay; later ones double it, up to [`MAX_BACKOFF`].
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// GetRecords returns at most this many records per call.
const GET_RECORDS_LIMIT: usize = 1000;

/// Where the poller is in one shard.
#[derive(Debug, Default)]
struct ShardPosition {
    iterator: Option<String>,
    /// Sequence number of the last record handled (delivered or skipped): the checkpoint.
    checkpoint: Option<String>,
    /// The shard is closed and every record of it was handled.
    finished: bool,
}

/// What the function said about one batch.
#[derive(Debug, PartialEq, Eq)]
enum BatchResult {
    Success,
    /// Retry from this index of the batch (the record with the lowest failed sequence number).
    RetryFrom(usize),
    /// The whole batch failed (function error, crash, timeout, an unusable failure report).
    Failed,
    /// Lambda refused the invocation; retried without spending a retry attempt.
    Throttled,
}

/// One event source mapping being played.
pub struct StreamPoller {
    mapping: EventSourceMapping,
    streams: aws_sdk_dynamodbstreams::Client,
    invoker: Arc<dyn Invoker>,
    region: String,
    idle_poll: Duration,
    retry_backoff: Duration,
    metrics: Option<MetricSink>,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    /// Per shard, the checkpoint to start from (an earlier run's).
    checkpoints: BTreeMap<String, String>,
}

/// Why records were given up on (the `condition` of the on-failure record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discarded {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Discarded {
    fn condition(self) -> &'static str {
        match self {
            Self::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Self::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::RetryAttemptsExhausted => "the maximum retry attempts are spent",
            Self::RecordAgeExceeded => "they are older than the maximum record age",
        }
    }
}

/// How the last invocation of a batch ended, for the on-failure record.
#[derive(Debug, Clone, Default)]
struct LastAttempt {
    function_error: Option<&'static str>,
    invocations: u32,
}

impl StreamPoller {
    /// A poller of `mapping`'s stream, invoking its function through `invoker`.
    pub fn new(mapping: EventSourceMapping, config: &aws_config::SdkConfig, invoker: Arc<dyn Invoker>) -> Self {
        let region = config.region().map(std::string::ToString::to_string).unwrap_or_else(|| "us-east-1".to_owned());
        Self {
            mapping,
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            invoker,
            region,
            idle_poll: IDLE_POLL,
            retry_backoff: RETRY_BACKOFF,
            metrics: None,
            sqs: aws_sdk_sqs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            checkpoints: BTreeMap::new(),
        }
    }

    /// Starts each shard after these sequence numbers (an earlier run's checkpoints, as
    /// [`StreamPoller::run`] returned them) instead of at the mapping's starting position.
    pub fn with_checkpoints(mut self, checkpoints: BTreeMap<String, String>) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Records the function's `AWS/Lambda` `IteratorAge` into `metrics`.
    pub fn with_metrics(mut self, metrics: MetricSink) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The pause between idle polls (tests shorten it).
    pub fn with_idle_poll(mut self, idle_poll: Duration) -> Self {
        self.idle_poll = idle_poll;
        self
    }

    /// The first retry's delay (tests shorten it).
    pub fn with_retry_backoff(mut self, retry_backoff: Duration) -> Self {
        self.retry_backoff = retry_backoff;
        self
    }

    /// Polls until `stop` resolves, then returns its checkpoints (per shard, the sequence number
    /// of the last record handled). An invocation in flight is never cut short: the poller stops
    /// once it has answered.
    pub async fn run(self, stop: impl Future<Output = ()>) -> BTreeMap<String, String> {
        let (stopping_tx, stopping) = watch::channel(false);
        let signal = async move {
            stop.await;
            let _ = stopping_tx.send(true);
        };
        tokio::join!(signal, self.poll_until_stopped(stopping)).1
    }

    async fn poll_until_stopped(&self, mut stopping: watch::Receiver<bool>) -> BTreeMap<String, String> {
        tracing::info!(function = %self.mapping.function_name, stream = %self.mapping.event_source_arn,
            batch_size = self.mapping.batch_size, resumed_shards = self.checkpoints.len(), "stream poller started");
        let mut shards: HashMap<String, ShardPosition> = self
            .checkpoints
            .iter()
            .map(|(shard, checkpoint)| {
                (shard.clone(), ShardPosition { checkpoint: Some(checkpoint.clone()), ..ShardPosition::default() })
            })
            .collect();
        while !*stopping.borrow() {
            let delivered = self.poll_once(&mut shards, &stopping).await;
            if delivered == 0 {
                let _ = tokio::time::timeout(self.idle_poll, stopping.wait_for(|stop| *stop)).await;
            }
        }
        tracing::info!(function = %self.mapping.function_name, "stream poller stopped");
        shards.into_iter().filter_map(|(shard, position)| Some((shard, position.checkpoint?))).collect()
    }

    /// One pass over the stream's shards, parents before children; returns how many records
    /// were read.
    async fn poll_once(&self, shards: &mut HashMap<String, ShardPosition>, stopping: &watch::Receiver<bool>) -> usize {
        let described = match self.streams.describe_stream().stream_arn(&self.mapping.event_source_arn).send().await {
            Ok(described) => described,
            Err(err) => {
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err),
                    stream = %self.mapping.event_source_arn, "stream poller: DescribeStream failed");
                return 0;
            }
        };
        let listed: Vec<Shard> = described.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        let mut read = 0;
        for shard in &listed {
            let Some(shard_id) = shard.shard_id() else { continue };
            // A child waits until its parent, if the stream still lists it, is read to its end.
            let parent_pending = shard.parent_shard_id().is_some_and(|parent| {
                listed.iter().any(|s| s.shard_id() == Some(parent)) && !shards.get(parent).is_some_and(|p| p.finished)
            });
            if parent_pending || *stopping.borrow() {
                continue;
            }
            let position = shards.entry(shard_id.to_owned()).or_default();
            if position.finished {
                continue;
            }
            read += self.poll_shard(shard_id, position, stopping).await;
        }
        read
    }

    async fn poll_shard(
        &self,
        shard_id: &str,
        position: &mut ShardPosition,
        stopping: &watch::Receiver<bool>,
    ) -> usize {
        if position.iterator.is_none() {
            let request =
                self.streams.get_shard_iterator().stream_arn(&self.mapping.event_source_arn).shard_id(shard_id);
            let request = match (&position.checkpoint, self.mapping.starting_position) {
                (Some(checkpoint), _) => {
                    request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(checkpoint)
                }
                (None, StartingPosition::TrimHorizon) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                (None, StartingPosition::Latest) => request.shard_iterator_type(ShardIteratorType::Latest),
            };
            match request.send().await {
                Ok(out) => position.iterator = out.shard_iterator().map(str::to_owned),
                Err(err) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err), shard = shard_id,
                        "stream poller: GetShardIterator failed");
                    return 0;
                }
            }
            if position.iterator.is_none() {
                return 0;
            }
        }
        let Some(iterator) = position.iterator.take() else { return 0 };
        let limit = self.mapping.batch_size.min(GET_RECORDS_LIMIT) as i32;
        let page = match self.streams.get_records().shard_iterator(iterator).limit(limit).send().await {
            Ok(page) => page,
            Err(err) => {
                // Expired or trimmed iterators: the next pass starts again from the checkpoint.
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err), shard = shard_id,
                    "stream poller: GetRecords failed");
                return 0;
            }
        };
        let records = page.records().to_vec();
        let read = records.len();
        if !records.is_empty() {
            let last = sequence_number(records.last()).map(str::to_owned);
            if self.deliver(shard_id, records, stopping).await {
                position.checkpoint = last.or(position.checkpoint.take());
            } else {
                // Stopped mid-batch: leave the checkpoint where it is.
                return read;
            }
        }
        match page.next_shard_iterator() {
            Some(next) => position.iterator = Some(next.to_owned()),
            None => position.finished = true,
        }
        read
    }

    /// Hands one batch to the function until every record is handled or skipped, in order.
    /// `false` when the poller was asked to stop first.
    async fn deliver(&self, shard_id: &str, records: Vec<Record>, stopping: &watch::Receiver<bool>) -> bool {
        // Bisected halves keep their parent's attempt count: splitting is not a retry.
        let mut pending: VecDeque<(Vec<Record>, u32)> = VecDeque::from([(records, 0)]);
        let mut throttles = 0u32;
        while let Some((mut batch, mut attempts)) = pending.pop_front() {
            let mut last = LastAttempt::default();
            loop {
                self.drop_expired(shard_id, &mut batch, &last).await;
                if batch.is_empty() {
                    break;
                }
                match self.invoke(&batch, &mut last).await {
                    BatchResult::Success => break,
                    BatchResult::Throttled => throttles += 1,
                    BatchResult::RetryFrom(index) => {
                        let failed = batch.split_off(index);
                        batch = failed;
                        attempts += 1;
                    }
                    BatchResult::Failed if self.mapping.bisect_batch_on_function_error && batch.len() > 1 => {
                        let second = batch.split_off(batch.len() / 2);
                        pending.push_front((second, attempts));
                        pending.push_front((batch, attempts));
                        break;
                    }
                    BatchResult::Failed => attempts += 1,
                }
                if self.mapping.maximum_retry_attempts.is_some_and(|max| attempts > max) {
                    self.discard(shard_id, &batch, Discarded::RetryAttemptsExhausted, &last).await;
                    break;
                }
                if *stopping.borrow() {
                    return false;
                }
                let exponent = (attempts + throttles).saturating_sub(1).min(16);
                let backoff = self.retry_backoff.saturating_mul(1 << exponent).min(MAX_BACKOFF);
                let mut stopping = stopping.clone();
                if tokio::time::timeout(backoff, stopping.wait_for(|stop| *stop)).await.is_ok() {
                    return false;
                }
            }
        }
        true
    }

    async fn drop_expired(&self, shard_id: &str, batch: &mut Vec<Record>, last: &LastAttempt) {
        let Some(max_age) = self.mapping.maximum_record_age else { return };
        let now = chrono::Utc::now().timestamp();
        let (expired, kept): (Vec<Record>, Vec<Record>) = std::mem::take(batch).into_iter().partition(|record| {
            record
                .dynamodb()
                .and_then(|d| d.approximate_creation_date_time())
                .is_some_and(|created| now.saturating_sub(created.secs()) > max_age.as_secs() as i64)
        });
        if !expired.is_empty() {
            self.discard(shard_id, &expired, Discarded::RecordAgeExceeded, last).await;
        }
        *batch = kept;
    }

    /// Gives up on records as Lambda does: says so, and sends the on-failure destination (if
    /// the mapping has one) the documented description of the batch — never the records.
    async fn discard(&self, shard_id: &str, records: &[Record], why: Discarded, last: &LastAttempt) {
        tracing::error!(function = %self.mapping.function_name, stream = %self.mapping.event_source_arn,
            records = records.len(), first_sequence_number = sequence_number(records.first()).unwrap_or_default(),
            last_sequence_number = sequence_number(records.last()).unwrap_or_default(),
            destination = self.mapping.on_failure.as_deref().unwrap_or("none"),
            "stream poller: records skipped because {}", why.reason());
        let Some(destination) = &self.mapping.on_failure else { return };
        let record = self.failure_record(shard_id, records, why, last);
        let sent = if destination.starts_with("arn:aws:sqs:") {
            let url =
                self.sqs.get_queue_url().queue_name(destination.rsplit(':').next().unwrap_or_default()).send().await;
            match url {
                Ok(url) => self
                    .sqs
                    .send_message()
                    .queue_url(url.queue_url().unwrap_or_default())
                    .message_body(record.to_string())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
                Err(e) => Err(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
            }
        } else if destination.starts_with("arn:aws:sns:") {
            self.sns
                .publish()
                .topic_arn(destination)
                .message(record.to_string())
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_sdk_sns::error::DisplayErrorContext(e).to_string())
        } else {
            Err("only SQS and SNS destinations are emulated".to_owned())
        };
        if let Err(error) = sent {
            // Lambda then counts DestinationDeliveryFailures; the records stay discarded.
            tracing::error!(%destination, %error, "stream poller: the on-failure destination refused the record");
            self.record("DestinationDeliveryFailures", "Count", 1.0);
        }
    }

    /// Lambda's invocation record for a discarded stream batch ("Retaining records of
    /// asynchronous invocations" / stream on-failure destinations).
    fn failure_record(&self, shard_id: &str, records: &[Record], why: Discarded, last: &LastAttempt) -> Value {
        let arrival = |record: Option<&Record>| {
            record
                .and_then(|r| r.dynamodb())
                .and_then(|d| d.approximate_creation_date_time())
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        };
        let function_arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region,
            self.mapping.event_source_arn.split(':').nth(4).unwrap_or_default(),
            self.mapping.function_name
        );
        json!({
            "requestContext": {
                "requestId": crate::http_util::uuid(),
                "functionArn": function_arn,
                "condition": why.condition(),
                "approximateInvokeCount": last.invocations,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": last.function_error,
            },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence_number(records.first()),
                "endSequenceNumber": sequence_number(records.last()),
                "approximateArrivalOfFirstRecord": arrival(records.first()),
                "approximateArrivalOfLastRecord": arrival(records.last()),
                "batchSize": records.len(),
                "streamArn": self.mapping.event_source_arn,
            },
        })
    }

    fn record(&self, name: &str, unit: &str, value: f64) {
        if let Some(metrics) = &self.metrics {
            metrics.record(Datum::now(
                "AWS/Lambda",
                name,
                &[("FunctionName", &self.mapping.function_name)],
                unit,
                value,
            ));
        }
    }

    async fn invoke(&self, batch: &[Record], last: &mut LastAttempt) -> BatchResult {
        // How far behind the stream the function is: the age of the batch's last record.
        if let Some(created) = batch.last().and_then(|r| r.dynamodb()).and_then(|d| d.approximate_creation_date_time())
        {
            let age_ms = (chrono::Utc::now().timestamp_millis() - created.secs() * 1000).max(0);
            self.record("IteratorAge", "Milliseconds", age_ms as f64);
        }
        last.invocations += 1;
        let event = json!({ "Records": batch.iter().map(|r| lambda_record(r, &self.mapping.event_source_arn, &self.region)).collect::<Vec<_>>() });
        let request = InvokeRequest {
            function_name: self.mapping.function_name.clone(),
            qualifier: self.mapping.qualifier.clone(),
            payload: event.to_string().into_bytes(),
            trace_id: None,
            client_context: None,
            cognito_identity: None,
        };
        let outcome = self.invoker.invoke(request).await;
        last.function_error = match &outcome {
            InvokeOutcome::FunctionError { .. } | InvokeOutcome::Failed { .. } | InvokeOutcome::Timeout => {
                Some("Unhandled")
            }
            _ => None,
        };
        match outcome {
            InvokeOutcome::Response(payload) if self.mapping.report_batch_item_failures => {
                batch_item_failures(&payload, batch)
            }
            InvokeOutcome::Response(_) => BatchResult::Success,
            InvokeOutcome::Throttled => BatchResult::Throttled,
            other => {
                tracing::warn!(function = %self.mapping.function_name, outcome = ?other, records = batch.len(),
                    "stream poller: the batch failed");
                BatchResult::Failed
            }
        }
    }
}

fn sequence_number(record: Option<&Record>) -> Option<&str> {
    record.and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number())
}

/// Reads a partial batch response. No report, or an empty one, is a success; an identifier
/// that is missing, empty or not in the batch fails the whole batch; otherwise the batch is
/// retried from the lowest failed sequence number.
fn batch_item_failures(payload: &[u8], batch: &[Record]) -> BatchResult {
    let response: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return BatchResult::Success,
        Some(Value::Array(failures)) if failures.is_empty() => return BatchResult::Success,
        Some(Value::Array(failures)) => failures,
        Some(_) => return BatchResult::Failed,
    };
    let mut lowest: Option<usize> = None;
    for failure in failures {
        let Some(identifier) = failure.get("itemIdentifier").and_then(Value::as_str).filter(|id| !id.is_empty()) else {
            return BatchResult::Failed;
        };
        let Some(index) = batch.iter().position(|r| sequence_number(Some(r)) == Some(identifier)) else {
            return BatchResult::Failed;
        };
        // Records are in sequence order within a shard, so the lowest number comes first.
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    lowest.map_or(BatchResult::Success, BatchResult::RetryFrom)
}

/// A stream record in the shape Lambda's event source mapping delivers it.
pub fn lambda_record(record: &Record, event_source_arn: &str, region: &str) -> Value {
    let change = record.dynamodb();
    let image = |image: Option<&HashMap<String, AttributeValue>>| -> Value {
        image.map_or(Value::Null, |image| {
            serde_json::to_value(serde_dynamo::Item::from(image.clone())).unwrap_or(Value::Null)
        })
    };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change.and_then(|c| c.approximate_creation_date_time()).map(aws_sdk_apigateway::primitives::DateTime::secs),
        "Keys": image(change.and_then(|c| c.keys())),
        "NewImage": image(change.and_then(|c| c.new_image())),
        "OldImage": image(change.and_then(|c| c.old_image())),
        "SequenceNumber": change.and_then(|c| c.sequence_number()),
        "SizeBytes": change.and_then(aws_sdk_dynamodbstreams::types::StreamRecord::size_bytes),
        "StreamViewType": change.and_then(|c| c.stream_view_type()).map(aws_sdk_dynamodbstreams::types::StreamViewType::as_str),
    });
    // Lambda leaves out what the stream view type does not carry (no OldImage on INSERT, …).
    if let Value::Object(fields) = &mut dynamodb {
        fields.retain(|_, v| !v.is_null());
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(aws_sdk_dynamodbstreams::types::OperationType::as_str),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region().unwrap_or(region),
        "dynamodb": dynamodb,
        "eventSourceARN": event_source_arn,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::types::StreamRecord;

    use super::*;

    fn record(sequence_number: &str) -> Record {
        Record::builder().dynamodb(StreamRecord::builder().sequence_number(sequence_number).build()).build()
    }

    #[test]
    fn partial_batch_responses_retry_from_the_lowest_failed_record() {
        let batch: Vec<Record> = ["100", "200", "300", "400"].into_iter().map(record).collect();
        let report = |failures: Value| batch_item_failures(failures.to_string().as_bytes(), &batch);
        assert_eq!(report(json!({"batchItemFailures": []})), BatchResult::Success);
        assert_eq!(report(json!({"batchItemFailures": null})), BatchResult::Success);
        assert_eq!(report(json!({})), BatchResult::Success);
        assert_eq!(batch_item_failures(b"null", &batch), BatchResult::Success);
        let failed = json!({"batchItemFailures": [{"itemIdentifier": "400"}, {"itemIdentifier": "200"}]});
        assert_eq!(report(failed), BatchResult::RetryFrom(1));
        assert_eq!(report(json!({"batchItemFailures": [{"itemIdentifier": ""}]})), BatchResult::Failed);
        assert_eq!(report(json!({"batchItemFailures": [{"itemIdentifier": null}]})), BatchResult::Failed);
        assert_eq!(report(json!({"batchItemFailures": [{"itemIdentifier": "999"}]})), BatchResult::Failed);
    }
}
