//! Plays a DynamoDB stream event source mapping: polls each shard in order and invokes the
//! function with the real records, honouring batch size, retries, bisection on error, partial
//! batch responses (`batchItemFailures`) and the maximum record age.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{json, Value};

use crate::cloud::StreamMapping;
use crate::invoke::{InvokeOutcome, InvokeRequest, Invoker};

const IDLE_POLL: Duration = Duration::from_millis(300);

pub struct StreamPoller {
    mapping: StreamMapping,
    streams: aws_sdk_dynamodbstreams::Client,
    invoker: Arc<dyn Invoker>,
    region: String,
}

/// What the function said about a batch.
enum BatchResult {
    Done,
    /// Retry from this index of the batch (the lowest failed sequence number).
    RetryFrom(usize),
    Failed,
}

impl StreamPoller {
    pub fn new(mapping: StreamMapping, config: &aws_config::SdkConfig, invoker: Arc<dyn Invoker>) -> Self {
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_owned());
        Self { mapping, streams: aws_sdk_dynamodbstreams::Client::new(config), invoker, region }
    }

    /// Polls until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut iterators: HashMap<String, Option<String>> = HashMap::new();
        loop {
            let delivered = tokio::select! {
                _ = &mut stop => return,
                delivered = self.poll_once(&mut iterators) => delivered,
            };
            if delivered == 0 {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        }
    }

    /// One pass over every shard; returns how many records were handed to the function.
    pub async fn poll_once(&self, iterators: &mut HashMap<String, Option<String>>) -> usize {
        let described = match self.streams.describe_stream().stream_arn(&self.mapping.stream_arn).send().await {
            Ok(described) => described,
            Err(err) => {
                tracing::warn!(error = ?err, stream = %self.mapping.stream_arn, "describe stream failed");
                return 0;
            }
        };
        let shards = described.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        let mut delivered = 0;
        for shard in shards {
            let Some(shard_id) = shard.shard_id() else { continue };
            if !iterators.contains_key(shard_id) {
                let kind =
                    if self.mapping.trim_horizon { ShardIteratorType::TrimHorizon } else { ShardIteratorType::Latest };
                let iterator = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.mapping.stream_arn)
                    .shard_id(shard_id)
                    .shard_iterator_type(kind)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.shard_iterator().map(str::to_owned));
                iterators.insert(shard_id.to_owned(), iterator);
            }
            let Some(Some(iterator)) = iterators.get(shard_id).cloned() else { continue };
            let page = match self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(self.mapping.batch_size as i32)
                .send()
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = ?err, "get records failed");
                    continue;
                }
            };
            let records: Vec<Record> = page.records().to_vec();
            iterators.insert(shard_id.to_owned(), page.next_shard_iterator().map(str::to_owned));
            if records.is_empty() {
                continue;
            }
            delivered += records.len();
            self.deliver(records).await;
        }
        delivered
    }

    /// Delivers one batch until it succeeds or its retries are spent, bisecting on errors.
    async fn deliver(&self, records: Vec<Record>) {
        let mut pending = vec![records];
        while let Some(mut batch) = pending.pop() {
            let mut attempts = 0u32;
            loop {
                batch.retain(|r| !self.too_old(r));
                if batch.is_empty() {
                    break;
                }
                match self.invoke(&batch).await {
                    BatchResult::Done => break,
                    BatchResult::RetryFrom(index) => batch = batch.split_off(index.min(batch.len())),
                    BatchResult::Failed if self.mapping.bisect_on_error && batch.len() > 1 => {
                        let second = batch.split_off(batch.len() / 2);
                        pending.push(second);
                        pending.push(batch);
                        break;
                    }
                    BatchResult::Failed => {}
                }
                attempts += 1;
                if self.mapping.maximum_retry_attempts.is_some_and(|max| attempts > max) {
                    let first =
                        batch.first().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number()).unwrap_or_default();
                    tracing::error!(function = %self.mapping.function_name, records = batch.len(), first_sequence_number = first,
                        "records skipped after the maximum retry attempts");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts.min(5)))).await;
            }
        }
    }

    fn too_old(&self, record: &Record) -> bool {
        let (Some(max_age), Some(created)) =
            (self.mapping.maximum_record_age, record.dynamodb().and_then(|d| d.approximate_creation_date_time()))
        else {
            return false;
        };
        let age = chrono::Utc::now().timestamp() - created.secs();
        age > max_age.as_secs() as i64
    }

    async fn invoke(&self, batch: &[Record]) -> BatchResult {
        let event = json!({ "Records": batch.iter().map(|r| self.lambda_record(r)).collect::<Vec<_>>() });
        let request = InvokeRequest {
            function_name: self.mapping.function_name.clone(),
            payload: event.to_string().into_bytes(),
            trace_id: None,
            client_context: None,
        };
        match self.invoker.invoke(request).await {
            InvokeOutcome::Response(payload) if self.mapping.report_batch_item_failures => {
                let response: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                let failed: Vec<&str> = response["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .collect();
                let first_failed = batch.iter().position(|r| {
                    r.dynamodb().and_then(|d| d.sequence_number()).is_some_and(|seq| failed.contains(&seq))
                });
                match first_failed {
                    None if failed.is_empty() => BatchResult::Done,
                    // An identifier that is not in the batch fails the whole batch, as in Lambda.
                    None => BatchResult::Failed,
                    Some(index) => BatchResult::RetryFrom(index),
                }
            }
            InvokeOutcome::Response(_) => BatchResult::Done,
            other => {
                tracing::warn!(function = %self.mapping.function_name, outcome = ?other, "stream batch failed");
                BatchResult::Failed
            }
        }
    }

    /// The record in the shape Lambda's event source mapping delivers.
    fn lambda_record(&self, record: &Record) -> Value {
        let change = record.dynamodb();
        let image = |image: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| -> Value {
            image.map_or(Value::Null, |image| {
                serde_json::to_value(serde_dynamo::Item::from(image.clone())).unwrap_or(Value::Null)
            })
        };
        let mut dynamodb = json!({
            "ApproximateCreationDateTime": change.and_then(|c| c.approximate_creation_date_time()).map(|t| t.secs()),
            "Keys": image(change.and_then(|c| c.keys())),
            "NewImage": image(change.and_then(|c| c.new_image())),
            "OldImage": image(change.and_then(|c| c.old_image())),
            "SequenceNumber": change.and_then(|c| c.sequence_number()),
            "SizeBytes": change.and_then(|c| c.size_bytes()),
            "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|v| v.as_str().to_owned()),
        });
        if let Value::Object(fields) = &mut dynamodb {
            fields.retain(|_, v| !v.is_null());
        }
        json!({
            "eventID": record.event_id(),
            "eventName": record.event_name().map(|n| n.as_str().to_owned()),
            "eventVersion": record.event_version().unwrap_or("1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.aws_region().unwrap_or(&self.region),
            "dynamodb": dynamodb,
            "eventSourceARN": self.mapping.stream_arn,
        })
    }
}
