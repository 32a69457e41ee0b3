//! Projects the write model's DynamoDB stream into the read model. Each record is applied with
//! version-conditional writes, so replays are no-ops and late records never overwrite newer
//! state; records that cannot be applied are reported as `batchItemFailures`.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};

use crate::metrics as m;
use crate::store::{book_from_image, view_writes, DynamoError, ViewStore};

/// Records of one batch applied at the same time; safe because every write is order-safe.
const CONCURRENT_RECORDS: usize = 8;

/// What became of one stream record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Not a book (ISBN guard, idempotency record): nothing to project.
    Ignored,
    /// `applied` of `writes` view items changed; the rest were already as new or newer.
    Applied {
        /// View items the record maps to: live items and tombstones.
        writes: usize,
        /// Those whose conditional write took effect.
        applied: usize,
    },
}

/// Why a stream record was not applied; the batch reports it as an item failure.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// An image of a book item that does not decode: the event id and the decoding error.
    #[error("record {0} has an image this projector cannot read: {1}")]
    Unreadable(String, serde_dynamo::Error),
    /// A write to the view failed.
    #[error(transparent)]
    Store(#[from] DynamoError),
}

/// Applies one stream record to the view.
pub async fn project_record(
    view: &ViewStore,
    record: &EventRecord,
    now_epoch_secs: i64,
) -> Result<Projection, ProjectError> {
    let decode = |image: &serde_dynamo::Item| {
        if image.is_empty() {
            return Ok(None);
        }
        book_from_image(image.clone()).map_err(|e| ProjectError::Unreadable(record.event_id.clone(), e))
    };
    let old = decode(&record.change.old_image)?;
    let new = match record.event_name.as_str() {
        "REMOVE" => None,
        _ => decode(&record.change.new_image)?,
    };
    if old.is_none() && new.is_none() {
        return Ok(Projection::Ignored);
    }
    let writes = view_writes(old.as_ref(), new.as_ref(), now_epoch_secs)?;
    let total = writes.len();
    let results = futures::future::join_all(writes.into_iter().map(|w| view.write_if_newer(w))).await;
    let mut applied = 0;
    for result in results {
        if result? {
            applied += 1;
        }
    }
    Ok(Projection::Applied { writes: total, applied })
}

/// Applies a batch and reports the records that failed, so Lambda retries from the first.
pub async fn project_batch(view: &ViewStore, event: Event, now_epoch_secs: i64) -> DynamoDbEventResponse {
    let now_millis = chrono::Utc::now().timestamp_millis();
    let outcomes: Vec<(Option<String>, Result<Projection, ProjectError>)> = stream::iter(event.records.iter())
        .map(|record| async move {
            (record.change.sequence_number.clone(), project_record(view, record, now_epoch_secs).await)
        })
        .buffered(CONCURRENT_RECORDS)
        .collect()
        .await;
    let mut response = DynamoDbEventResponse::default();
    for ((sequence_number, outcome), record) in outcomes.into_iter().zip(&event.records) {
        match outcome {
            Ok(projection) => {
                tracing::debug!(?sequence_number, ?projection, "record projected");
                if let Projection::Applied { .. } = projection {
                    metrics::counter!(m::EVENTS_PROJECTED).increment(1);
                    let created_ms = record.change.approximate_creation_date_time.timestamp_millis();
                    let lag_ms = (now_millis - created_ms).max(0);
                    m::record_ms(&metrics::histogram!(m::PROJECTION_LAG), lag_ms as f64);
                }
            }
            Err(err) => {
                metrics::counter!(m::PROJECTION_FAILURES).increment(1);
                tracing::error!(?sequence_number, error = %err, "record could not be projected");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence_number;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}
