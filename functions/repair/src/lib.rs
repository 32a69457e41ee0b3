//! `books-repair`: what an operator runs when the read model fell behind or diverged.
//!
//! - [`replay`]: the batches the projector gave up on (its event source mapping sends their
//!   description to the failure queue: shard and sequence numbers, not the records) are read
//!   again from the table's stream and applied, then removed from the queue. The stream keeps
//!   records 24 hours: past that, a batch cannot be replayed and stays in the queue.
//! - [`rebuild_view`]: the view made to show the write model, whatever happened (see
//!   `books::repair`).
//!
//! Both apply version-conditional writes, so they run safely while the API takes writes and the
//! projector applies them, and running either twice changes nothing more.

pub use books::repair::{rebuild_view, Rebuilt};

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use books::projector::{project_record, Projection};
use books::store::ViewStore;
use serde::Deserialize;

/// How long a received batch stays invisible to other readers of the queue while it is
/// replayed; a batch that could not be replayed (or a replay stopped half-way) comes back after
/// it, for a later run.
const VISIBILITY_TIMEOUT_SECS: i32 = 120;
/// Empty pages of an open shard read before the rest of a batch is declared missing.
const EMPTY_PAGES: usize = 5;

/// The failure queue's message for a batch of a DynamoDB stream (Lambda's on-failure
/// destination record); only what a replay needs.
#[derive(Debug, Deserialize)]
struct FailureRecord {
    #[serde(rename = "DDBStreamBatchInfo")]
    batch: BatchInfo,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInfo {
    shard_id: String,
    start_sequence_number: String,
    end_sequence_number: String,
    stream_arn: String,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Batches applied and removed from the queue.
    pub batches: usize,
    /// Stream records read again.
    pub records: usize,
    /// View items those records changed (the rest were already as new or newer).
    pub changed: usize,
    /// Batches left in the queue, each with why.
    pub left: Vec<String>,
}

/// Why one batch could not be replayed.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("the message is not a DynamoDB stream failure record: {0}")]
    NotAFailureRecord(serde_json::Error),
    #[error("its records are no longer in the stream (kept 24 hours): rebuild the view instead")]
    Expired,
    #[error("the stream ended before record {0}")]
    Incomplete(String),
    #[error("{0}")]
    Stream(String),
    #[error("applying a record failed: {0}")]
    Project(books::projector::ProjectError),
}

/// Replays every batch of the failure queue at `queue_url` into `view`.
pub async fn replay(
    aws: &aws_config::SdkConfig,
    queue_url: &str,
    view: &ViewStore,
) -> Result<Replayed, aws_sdk_sqs::Error> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let streams = aws_sdk_dynamodbstreams::Client::new(aws);
    let mut report = Replayed::default();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(VISIBILITY_TIMEOUT_SECS)
            .wait_time_seconds(1)
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(report);
        }
        for message in messages {
            let id = message.message_id.clone().unwrap_or_default();
            match replay_batch(&streams, view, message.body().unwrap_or_default()).await {
                Ok((records, changed)) => {
                    if let Some(handle) = message.receipt_handle() {
                        sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await?;
                    }
                    report.batches += 1;
                    report.records += records;
                    report.changed += changed;
                }
                // Left in the queue: invisible to this run's next receives, visible again for a
                // later one once the visibility timeout has passed.
                Err(err) => report.left.push(format!("message {id}: {err}")),
            }
        }
    }
}

async fn replay_batch(
    streams: &aws_sdk_dynamodbstreams::Client,
    view: &ViewStore,
    body: &str,
) -> Result<(usize, usize), BatchError> {
    let record: FailureRecord = serde_json::from_str(body).map_err(BatchError::NotAFailureRecord)?;
    let records = read_range(streams, &record.batch).await?;
    let now = chrono::Utc::now().timestamp();
    let mut changed = 0;
    for record in &records {
        if let Projection::Applied { applied, .. } =
            project_record(view, record, now).await.map_err(BatchError::Project)?
        {
            changed += applied;
        }
    }
    Ok((records.len(), changed))
}

/// The records of the batch, read again from the stream: from its first sequence number to its
/// last, in order.
async fn read_range(
    streams: &aws_sdk_dynamodbstreams::Client,
    batch: &BatchInfo,
) -> Result<Vec<EventRecord>, BatchError> {
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&batch.stream_arn)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&batch.start_sequence_number)
        .send()
        .await
        .map_err(|err| match err.into_service_error() {
            GetShardIteratorError::TrimmedDataAccessException(_)
            | GetShardIteratorError::ResourceNotFoundException(_) => BatchError::Expired,
            other => BatchError::Stream(format!("GetShardIterator: {}", DisplayErrorContext(&other))),
        })?;
    let mut iterator = iterator.shard_iterator;
    let mut records = Vec::new();
    let mut empty_pages = 0;
    while let Some(current) = iterator {
        let page = streams
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .map_err(|err| BatchError::Stream(format!("GetRecords: {}", DisplayErrorContext(&err))))?;
        let got = page.records.unwrap_or_default();
        empty_pages = if got.is_empty() { empty_pages + 1 } else { 0 };
        for record in got {
            let sequence = record.dynamodb.as_ref().and_then(|r| r.sequence_number.clone()).unwrap_or_default();
            if sequence_order(&sequence, &batch.end_sequence_number).is_gt() {
                return Ok(records);
            }
            let last = sequence == batch.end_sequence_number;
            records.push(lambda_record(record, &batch.stream_arn)?);
            if last {
                return Ok(records);
            }
        }
        if empty_pages >= EMPTY_PAGES {
            break;
        }
        iterator = page.next_shard_iterator;
    }
    Err(BatchError::Incomplete(batch.end_sequence_number.clone()))
}

/// Sequence numbers are decimal strings of up to 40 digits: longer is later.
fn sequence_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A stream record as the event source mapping hands it to the projector.
fn lambda_record(record: Record, stream_arn: &str) -> Result<EventRecord, BatchError> {
    let change = record.dynamodb.ok_or_else(|| BatchError::Stream("a stream record without its change".to_owned()))?;
    let image = |image: Option<HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        image.map(serde_dynamo::Item::from).unwrap_or_default()
    };
    let mut event = EventRecord::default();
    event.event_id = record.event_id.unwrap_or_default();
    event.event_name = record.event_name.map(|name| name.as_str().to_owned()).unwrap_or_default();
    event.event_source_arn = Some(stream_arn.to_owned());
    event.change.keys = image(change.keys);
    event.change.new_image = image(change.new_image);
    event.change.old_image = image(change.old_image);
    event.change.sequence_number = change.sequence_number;
    if event.event_name.is_empty() {
        return Err(BatchError::Stream("a stream record without an event name".to_owned()));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_sequence_numbers_are_later() {
        assert!(sequence_order("900", "1000").is_lt());
        assert!(sequence_order("1000", "0999").is_gt());
        assert!(sequence_order("42", "42").is_eq());
    }

    #[test]
    fn the_documented_failure_record_reads() {
        // The on-failure destination record of a DynamoDB stream batch, as the Lambda developer
        // guide shows it (fields this tool does not read left out).
        let body = r#"{"requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
          "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
          "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
          "DDBStreamBatchInfo": {"shardId": "shardId-00000001573689847184-864758bb",
            "startSequenceNumber": "800000000003126276362", "endSequenceNumber": "800000000003126276362",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:38:04Z", "batchSize": 1,
            "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"}}"#;
        let record: FailureRecord = serde_json::from_str(body).unwrap();
        assert_eq!(record.batch.shard_id, "shardId-00000001573689847184-864758bb");
        assert_eq!(record.batch.start_sequence_number, record.batch.end_sequence_number);
    }
}
