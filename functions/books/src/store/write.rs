//! The write model: one item per book, an ISBN guard item per book and idempotency records,
//! all in the `books` table and changed together in `TransactWriteItems`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::{failed_conditions, is_cancelled, DynamoError};
use crate::domain::{Book, BookId, Version};
use crate::metrics::Timed;

const BOOK_PREFIX: &str = "BOOK#";
const ISBN_PREFIX: &str = "ISBN#";
const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";

pub(super) fn book_pk(id: &str) -> String {
    format!("{BOOK_PREFIX}{id}")
}

fn isbn_pk(isbn: &str) -> String {
    format!("{ISBN_PREFIX}{isbn}")
}

fn idempotency_pk(key_hash: &str) -> String {
    format!("{IDEMPOTENCY_PREFIX}{key_hash}")
}

/// Whether a write-model partition key is a book (the only items the projector cares about).
pub fn is_book_pk(pk: &str) -> bool {
    pk.starts_with(BOOK_PREFIX)
}

#[derive(Serialize, Deserialize)]
struct BookItem {
    pk: String,
    #[serde(flatten)]
    book: Book,
}

#[derive(Serialize, Deserialize)]
struct IsbnGuardItem {
    pk: String,
    book_id: String,
}

/// An HTTP response kept so that a retried request can be answered identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

/// The first outcome of a request sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    /// Hash of the client's key, scoped to its API key, so raw keys are never stored.
    pub(crate) key_hash: String,
    /// Hash of the canonical request body; a reuse with another body is refused.
    pub(crate) fingerprint: String,
    pub(crate) response: SavedResponse,
    /// Epoch seconds after which the record no longer counts (DynamoDB TTL removes it later).
    pub(crate) expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct IdempotencyItem {
    pk: String,
    fingerprint: String,
    response: SavedResponse,
    expires_at: i64,
}

/// Why a book was not created: two business outcomes, or a store failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    #[error("a book with this ISBN already exists")]
    DuplicateIsbn,
    #[error("the idempotency key was used by another request")]
    IdempotencyKeyTaken,
    #[error(transparent)]
    Store(#[from] DynamoError),
}

/// Why a replace or delete did not happen: two business outcomes, or a store failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The book changed or vanished since it was read; re-read to tell which.
    #[error("the book changed since it was read")]
    Stale,
    #[error("another book already has this ISBN")]
    DuplicateIsbn,
    #[error(transparent)]
    Store(#[from] DynamoError),
}

/// The `books` table.
#[derive(Clone)]
pub struct BookStore {
    client: Client,
    table: String,
}

impl BookStore {
    /// The store on `table`, the write model's table name from configuration.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Reads one item with strong consistency: the write path must see its own writes.
    async fn item(&self, pk: String) -> Result<Option<HashMap<String, AttributeValue>>, DynamoError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .timed("GetItem")
            .await
            .map_err(|e| DynamoError::new("GetItem", e))?;
        Ok(output.item)
    }

    /// Every book of the table, read with strong consistency page by page (guard and
    /// idempotency items left out): what the read model must show.
    pub async fn scan_books(&self) -> Result<Vec<Book>, DynamoError> {
        let items = super::scan_all(
            self.client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(pk, :book)")
                .expression_attribute_values(":book", AttributeValue::S(BOOK_PREFIX.to_owned())),
        )
        .await?;
        items
            .into_iter()
            .map(|item| serde_dynamo::from_item::<_, BookItem>(item).map(|item| item.book))
            .collect::<Result<_, _>>()
            .map_err(|e| DynamoError::mapping("Scan", e))
    }

    /// One book, read with strong consistency.
    pub async fn get(&self, id: &BookId) -> Result<Option<Book>, DynamoError> {
        self.item(book_pk(&id.to_string()))
            .await?
            .map(|item| serde_dynamo::from_item::<_, BookItem>(item).map(|i| i.book))
            .transpose()
            .map_err(|e| DynamoError::mapping("GetItem", e))
    }

    pub(crate) async fn idempotency_record(&self, key_hash: &str) -> Result<Option<IdempotencyRecord>, DynamoError> {
        let Some(item) = self.item(idempotency_pk(key_hash)).await? else { return Ok(None) };
        let item: IdempotencyItem = serde_dynamo::from_item(item).map_err(|e| DynamoError::mapping("GetItem", e))?;
        Ok(Some(IdempotencyRecord {
            key_hash: key_hash.to_owned(),
            fingerprint: item.fingerprint,
            response: item.response,
            expires_at: item.expires_at,
        }))
    }

    /// Creates a book, its ISBN guard and (optionally) its idempotency record atomically.
    /// `now` is epoch seconds: an expired idempotency record may be overwritten.
    pub(crate) async fn create(
        &self,
        book: &Book,
        idempotency: Option<&IdempotencyRecord>,
        now: i64,
    ) -> Result<(), CreateError> {
        let mut items = vec![
            self.put(book_item(book)?, "attribute_not_exists(pk)", None)?,
            self.put(guard_item(book)?, "attribute_not_exists(pk)", None)?,
        ];
        if let Some(record) = idempotency {
            let item = IdempotencyItem {
                pk: idempotency_pk(&record.key_hash),
                fingerprint: record.fingerprint.clone(),
                response: record.response.clone(),
                expires_at: record.expires_at,
            };
            let values = HashMap::from([(":now".to_owned(), AttributeValue::N(now.to_string()))]);
            items.push(self.put(to_item(&item)?, "attribute_not_exists(pk) OR expires_at < :now", Some(values))?);
        }
        match self.transact(items).await {
            Ok(_) => Ok(()),
            Err(err) => match failed_conditions(&err) {
                Some(failed) if failed.get(2) == Some(&true) => Err(CreateError::IdempotencyKeyTaken),
                Some(failed) if failed.get(1) == Some(&true) => Err(CreateError::DuplicateIsbn),
                _ if is_cancelled(&err) => self.explain_create_conflict(book, idempotency).await,
                _ => Err(DynamoError::new("TransactWriteItems", err).into()),
            },
        }
    }

    /// When DynamoDB does not say which condition failed, look at the items themselves.
    async fn explain_create_conflict(
        &self,
        book: &Book,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), CreateError> {
        if let Some(record) = idempotency {
            if self.idempotency_record(&record.key_hash).await?.is_some() {
                return Err(CreateError::IdempotencyKeyTaken);
            }
        }
        if self.guard_owner(&book.isbn).await?.is_some() {
            return Err(CreateError::DuplicateIsbn);
        }
        Err(CreateError::Store(DynamoError {
            operation: "TransactWriteItems",
            source: "transaction cancelled without a failed condition (conflicting transaction)".into(),
        }))
    }

    async fn guard_owner(&self, isbn: &str) -> Result<Option<String>, DynamoError> {
        self.item(isbn_pk(isbn))
            .await?
            .map(|item| serde_dynamo::from_item::<_, IsbnGuardItem>(item).map(|g| g.book_id))
            .transpose()
            .map_err(|e| DynamoError::mapping("GetItem", e))
    }

    /// Replaces `current` by `next` if the stored version is still `current.version`, moving
    /// the ISBN guard when the ISBN changes.
    pub(crate) async fn replace(&self, current: &Book, next: &Book) -> Result<(), WriteError> {
        let mut items = vec![self.put(book_item(next)?, "version = :expected", Some(expected(current.version)))?];
        if current.isbn != next.isbn {
            items.push(self.delete_guard(current)?);
            items.push(self.put(guard_item(next)?, "attribute_not_exists(pk)", None)?);
        }
        match self.transact(items).await {
            Ok(_) => Ok(()),
            Err(err) => match failed_conditions(&err) {
                Some(failed) if failed.first() == Some(&true) => Err(WriteError::Stale),
                Some(failed) if failed.get(2) == Some(&true) => Err(WriteError::DuplicateIsbn),
                // Another transaction touched the same items: the caller re-reads and decides.
                _ if is_cancelled(&err) => match self.guard_owner(&next.isbn).await? {
                    Some(owner) if owner != next.id => Err(WriteError::DuplicateIsbn),
                    _ => Err(WriteError::Stale),
                },
                _ => Err(DynamoError::new("TransactWriteItems", err).into()),
            },
        }
    }

    /// Deletes `current` and its ISBN guard if the stored version is still `current.version`.
    pub(crate) async fn delete(&self, current: &Book) -> Result<(), WriteError> {
        let book = Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(book_pk(&current.id)))
            .condition_expression("version = :expected")
            .set_expression_attribute_values(Some(expected(current.version)))
            .build()
            .map_err(|e| DynamoError { operation: "TransactWriteItems", source: Box::new(e) })?;
        let items = vec![TransactWriteItem::builder().delete(book).build(), self.delete_guard(current)?];
        match self.transact(items).await {
            Ok(_) => Ok(()),
            Err(err) if is_cancelled(&err) => Err(WriteError::Stale),
            Err(err) => Err(DynamoError::new("TransactWriteItems", err).into()),
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().timed("TransactWriteItems").await?;
        Ok(())
    }

    fn delete_guard(&self, book: &Book) -> Result<TransactWriteItem, DynamoError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(isbn_pk(&book.isbn)))
            .condition_expression("book_id = :id")
            .expression_attribute_values(":id", AttributeValue::S(book.id.clone()))
            .build()
            .map_err(|e| DynamoError { operation: "TransactWriteItems", source: Box::new(e) })?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<TransactWriteItem, DynamoError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .build()
            .map_err(|e| DynamoError { operation: "TransactWriteItems", source: Box::new(e) })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn expected(version: Version) -> HashMap<String, AttributeValue> {
    HashMap::from([(":expected".to_owned(), AttributeValue::N(version.to_string()))])
}

fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, DynamoError> {
    serde_dynamo::to_item(value).map_err(|e| DynamoError::mapping("TransactWriteItems", e))
}

fn book_item(book: &Book) -> Result<HashMap<String, AttributeValue>, DynamoError> {
    to_item(&BookItem { pk: book_pk(&book.id), book: book.clone() })
}

fn guard_item(book: &Book) -> Result<HashMap<String, AttributeValue>, DynamoError> {
    to_item(&IsbnGuardItem { pk: isbn_pk(&book.isbn), book_id: book.id.clone() })
}

/// Decodes a write-model stream image into a book; `None` for guard and idempotency items.
pub fn book_from_image(image: serde_dynamo::Item) -> Result<Option<Book>, serde_dynamo::Error> {
    let is_book = matches!(image.get("pk"), Some(serde_dynamo::AttributeValue::S(pk)) if is_book_pk(pk));
    if !is_book {
        return Ok(None);
    }
    serde_dynamo::from_item::<_, BookItem>(image).map(|item| Some(item.book))
}
