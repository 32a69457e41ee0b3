//! DynamoDB persistence: the write model (`books`, guarded by ISBN and idempotency items) and
//! the read model (`books_view`, fed by the projector). Table names come from configuration.

mod view;
mod write;

pub use view::{
    tombstone, view_writes, ListFilter, Page, ViewEntry, ViewKey, ViewStore, ViewWrite, MAX_QUERIES_PER_PAGE,
};
pub use write::{book_from_image, is_book_pk, BookStore};
pub(crate) use write::{CreateError, IdempotencyRecord, SavedResponse, WriteError};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

/// A DynamoDB call failed for a reason that is not a business outcome (network, throttling
/// after the SDK's retries, a bug). Handlers report it as a 5xx.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} failed: {source}")]
pub struct DynamoError {
    pub(crate) operation: &'static str,
    #[source]
    pub(crate) source: Box<dyn std::error::Error + Send + Sync>,
}

impl DynamoError {
    pub(crate) fn new<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        aws_sdk_dynamodb::Error: From<SdkError<E, R>>,
    {
        let err: aws_sdk_dynamodb::Error = err.into();
        Self { operation, source: Box::new(err) }
    }

    /// An item did not have the shape this code writes (or could not be encoded).
    pub(crate) fn mapping(operation: &'static str, err: serde_dynamo::Error) -> Self {
        Self { operation, source: Box::new(err) }
    }
}

/// Every item a scan finds, read page by page with the SDK's paginator.
pub(crate) async fn scan_all(
    scan: aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
) -> Result<Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>, DynamoError> {
    use crate::metrics::Timed;
    scan.into_paginator().items().send().try_collect().timed("Scan").await.map_err(|e| DynamoError::new("Scan", e))
}

/// Which items of a cancelled transaction failed their condition, when DynamoDB says so.
/// `None` means the cancellation had another cause (e.g. a conflicting transaction).
pub(crate) fn failed_conditions(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<bool>> {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = err.as_service_error()? else {
        return None;
    };
    let reasons = cancelled.cancellation_reasons();
    let failed: Vec<bool> = reasons.iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect();
    failed.iter().any(|f| *f).then_some(failed)
}

pub(crate) fn is_cancelled(err: &SdkError<TransactWriteItemsError>) -> bool {
    matches!(err.as_service_error(), Some(TransactWriteItemsError::TransactionCanceledException(_)))
}
