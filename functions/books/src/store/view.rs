//! The read model: per book one `BOOK` item plus one item per author and per tag carrying the
//! same data, so each list query is a single GSI `Query`. Writes come only from the projector,
//! are conditional on the version (idempotent, order-safe), and removals leave tombstones so a
//! late, older record cannot resurrect what a newer one removed.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::DynamoError;
use crate::domain::{lookup_key, Book, BookId, Version};
use crate::metrics::Timed;

const MAIN_SK: &str = "BOOK";
const LISTING: &str = "BOOK";
const INDEX_ALL: &str = "all_books";
const INDEX_AUTHOR: &str = "by_author";
const INDEX_TAG: &str = "by_tag";

/// How long a tombstone outlives the removal: longer than a stream record can live (24 h), so
/// no record that could still arrive is older than the tombstone that guards against it.
const TOMBSTONE_TTL_SECS: i64 = 48 * 3600;
/// Most `Query` calls one page makes. Listing an author's books with a tag reads the author's
/// partition and filters it; past this many reads (each of at most `limit + 1` items) the page
/// ends early, with what it found and a cursor where DynamoDB stopped, so no request reads a
/// whole partition.
pub const MAX_QUERIES_PER_PAGE: usize = 5;

#[derive(Serialize, Deserialize)]
struct LiveItem {
    pk: String,
    sk: String,
    book_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    listing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    author_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    tag_key: Option<String>,
    /// Lookup keys of every tag, so an author query can also filter by tag.
    tag_keys: Vec<String>,
    #[serde(flatten)]
    book: Book,
}

#[derive(Serialize, Deserialize)]
struct Tombstone {
    pk: String,
    sk: String,
    version: Version,
    deleted: bool,
    expires_at: i64,
}

/// One conditional write the projector wants: an item to show or a tombstone to leave.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewWrite {
    item: HashMap<String, AttributeValue>,
    version: Version,
}

/// One item of the view as a rebuild sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewEntry {
    /// The book it belongs to.
    pub book_id: String,
    /// Which of the book's items (`BOOK`, `AUTHOR#…`, `TAG#…`).
    pub sk: String,
    /// The version it shows or guards.
    pub version: Version,
    /// A live item, not a tombstone.
    pub live: bool,
}

#[derive(Deserialize)]
struct EntryItem {
    pk: String,
    sk: String,
    version: Version,
    deleted: Option<bool>,
}

impl ViewWrite {
    /// The item's sort key.
    pub fn sk(&self) -> &str {
        match self.item.get("sk") {
            Some(AttributeValue::S(sk)) => sk,
            _ => "",
        }
    }
}

/// A tombstone for one item of a book, at `version`: what a rebuild leaves where the write
/// model no longer has what the view shows.
pub fn tombstone(book_id: &str, sk: &str, version: Version, now_epoch_secs: i64) -> Result<ViewWrite, DynamoError> {
    let tombstone = Tombstone {
        pk: crate::store::write::book_pk(book_id),
        sk: sk.to_owned(),
        version,
        deleted: true,
        expires_at: now_epoch_secs + TOMBSTONE_TTL_SECS,
    };
    Ok(ViewWrite { item: encode(&tombstone)?, version })
}

/// What a list request asks for. Author and tag are lookup keys (see `lookup_key`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListFilter {
    /// Only books with an author of this name, compared as [`lookup_key`]s.
    pub author: Option<String>,
    /// Only books with this tag, compared the same way; with `author` too, books with both.
    pub tag: Option<String>,
}

impl ListFilter {
    fn index(&self) -> (&'static str, &'static str, String) {
        match (&self.author, &self.tag) {
            (Some(author), _) => (INDEX_AUTHOR, "author_key", lookup_key(author)),
            (None, Some(tag)) => (INDEX_TAG, "tag_key", lookup_key(tag)),
            (None, None) => (INDEX_ALL, "listing", LISTING.to_owned()),
        }
    }

    /// A stable description of the query, so a cursor can be tied to the query it came from: the
    /// filters' lookup keys as a JSON array (`["ursula k. le guin",null]`), which no two queries
    /// share. (`author=…&tag=…` did: an author `a&tag=b` read the same as author `a` and tag
    /// `b&tag=`, found by fuzzing.)
    pub fn fingerprint(&self) -> String {
        let key = |v: &Option<String>| v.as_deref().map(lookup_key);
        serde_json::json!([key(&self.author), key(&self.tag)]).to_string()
    }
}

/// Where DynamoDB stopped reading an index: its `LastEvaluatedKey` as a cursor position.
fn resume_key(key: &HashMap<String, AttributeValue>) -> Result<ViewKey, DynamoError> {
    let text = |name: &str| match key.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(DynamoError { operation: "Query", source: format!("LastEvaluatedKey without {name}").into() }),
    };
    Ok(ViewKey { pk: text("pk")?, sk: text("sk")?, book_id: text("book_id")? })
}

/// Where a page ended: the table and index keys of its last item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewKey {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) book_id: String,
}

/// One page of a list, in id (= creation) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// At most the `limit` asked for; fewer, even none, when a filtered page reached
    /// [`MAX_QUERIES_PER_PAGE`] (then `next` is present).
    pub items: Vec<Book>,
    /// Present when more items may follow.
    pub next: Option<ViewKey>,
}

/// The `books_view` table.
#[derive(Clone)]
pub struct ViewStore {
    client: Client,
    table: String,
}

impl ViewStore {
    /// The store on `table`, the read model's table name from configuration.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The book as the view shows it; `None` if it has no live book of this id (never
    /// created, deleted, or not projected yet).
    pub async fn get(&self, id: &BookId) -> Result<Option<Book>, DynamoError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(crate::store::write::book_pk(&id.to_string())))
            .key("sk", AttributeValue::S(MAIN_SK.to_owned()))
            .send()
            .timed("GetItem")
            .await
            .map_err(|e| DynamoError::new("GetItem", e))?;
        match output.item {
            Some(item) if !item.contains_key("deleted") => serde_dynamo::from_item::<_, LiveItem>(item)
                .map(|live| Some(live.book))
                .map_err(|e| DynamoError::mapping("GetItem", e)),
            _ => Ok(None),
        }
    }

    /// One page of books in id (= creation) order, at most `limit`, starting after `start`.
    pub async fn list(&self, filter: &ListFilter, limit: usize, start: Option<ViewKey>) -> Result<Page, DynamoError> {
        let (index, hash_attr, hash_value) = filter.index();
        let tag_filter = match (&filter.author, &filter.tag) {
            (Some(_), Some(tag)) => Some(lookup_key(tag)),
            _ => None,
        };
        let mut exclusive_start = start.map(|key| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(key.pk)),
                ("sk".to_owned(), AttributeValue::S(key.sk)),
                ("book_id".to_owned(), AttributeValue::S(key.book_id)),
                (hash_attr.to_owned(), AttributeValue::S(hash_value.clone())),
            ])
        });
        // Read one more than asked: if it exists, there is a next page.
        let wanted = limit + 1;
        let mut found: Vec<LiveItem> = Vec::with_capacity(wanted);
        for queries in 1..=MAX_QUERIES_PER_PAGE {
            // A filter is applied after DynamoDB's limit: filtered reads take a full page each.
            let reads = if tag_filter.is_some() { wanted } else { wanted - found.len() };
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#h = :h")
                .expression_attribute_names("#h", hash_attr)
                .expression_attribute_values(":h", AttributeValue::S(hash_value.clone()))
                .limit(i32::try_from(reads).unwrap_or(i32::MAX))
                .set_exclusive_start_key(exclusive_start.take());
            if let Some(tag) = &tag_filter {
                query = query
                    .filter_expression("contains(tag_keys, :tag)")
                    .expression_attribute_values(":tag", AttributeValue::S(tag.clone()));
            }
            let output = query.send().timed("Query").await.map_err(|e| DynamoError::new("Query", e))?;
            for item in output.items.unwrap_or_default() {
                found.push(serde_dynamo::from_item(item).map_err(|e| DynamoError::mapping("Query", e))?);
            }
            exclusive_start = output.last_evaluated_key;
            if found.len() >= wanted || exclusive_start.is_none() {
                break;
            }
            if queries == MAX_QUERIES_PER_PAGE {
                // Bounded work: the page ends short, resuming where DynamoDB stopped.
                let next = exclusive_start.as_ref().map(resume_key).transpose()?;
                return Ok(Page { items: found.into_iter().map(|live| live.book).collect(), next });
            }
        }
        let next = (found.len() > limit).then(|| {
            found.truncate(limit);
            let last = &found[limit - 1];
            ViewKey { pk: last.pk.clone(), sk: last.sk.clone(), book_id: last.book_id.clone() }
        });
        Ok(Page { items: found.into_iter().map(|live| live.book).collect(), next })
    }

    /// Every item of the view, live or tombstone, read page by page: what a rebuild compares
    /// with the write model.
    pub async fn scan_entries(&self) -> Result<Vec<ViewEntry>, DynamoError> {
        let items = super::scan_all(
            self.client.scan().table_name(&self.table).projection_expression("pk, sk, version, deleted"),
        )
        .await?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let entry: EntryItem = serde_dynamo::from_item(item).map_err(|e| DynamoError::mapping("Scan", e))?;
            let Some(book_id) = entry.pk.strip_prefix("BOOK#") else { continue };
            entries.push(ViewEntry {
                book_id: book_id.to_owned(),
                sk: entry.sk,
                version: entry.version,
                live: !entry.deleted.unwrap_or(false),
            });
        }
        Ok(entries)
    }

    /// Applies a write unless the stored item is newer: an item at the same version is written
    /// again, so a rebuild also repairs what a faulty projection stored. Returns whether it
    /// applied.
    pub async fn write_unless_newer(&self, write: ViewWrite) -> Result<bool, DynamoError> {
        self.put_if(write, "attribute_not_exists(version) OR version <= :v").await
    }

    /// Applies a write unless the stored item is as new or newer. Returns whether it applied.
    pub async fn write_if_newer(&self, write: ViewWrite) -> Result<bool, DynamoError> {
        self.put_if(write, "attribute_not_exists(version) OR version < :v").await
    }

    async fn put_if(&self, write: ViewWrite, condition: &str) -> Result<bool, DynamoError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(write.item))
            .condition_expression(condition)
            .expression_attribute_values(":v", AttributeValue::N(write.version.to_string()))
            .send()
            .timed("PutItem")
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(PutItemError::is_conditional_check_failed_exception) => {
                Ok(false)
            }
            Err(err) => Err(DynamoError::new("PutItem", err)),
        }
    }
}

/// The writes that move the view from `old` to `new` (either may be absent): live items for
/// `new` at its version, tombstones for what `old` showed and `new` does not.
pub fn view_writes(old: Option<&Book>, new: Option<&Book>, now_epoch_secs: i64) -> Result<Vec<ViewWrite>, DynamoError> {
    let mut writes = Vec::new();
    let mut kept: BTreeSet<String> = BTreeSet::new();
    if let Some(book) = new {
        let pk = crate::store::write::book_pk(&book.id);
        let tag_keys: Vec<String> = book.tags.iter().map(|t| lookup_key(t)).collect();
        let live =
            |sk: String, listing: Option<String>, author_key: Option<String>, tag_key: Option<String>| LiveItem {
                pk: pk.clone(),
                sk,
                book_id: book.id.clone(),
                listing,
                author_key,
                tag_key,
                tag_keys: tag_keys.clone(),
                book: book.clone(),
            };
        let mut items = vec![live(MAIN_SK.to_owned(), Some(LISTING.to_owned()), None, None)];
        for author in &book.authors {
            let key = lookup_key(author);
            items.push(live(format!("AUTHOR#{key}"), None, Some(key), None));
        }
        for key in &tag_keys {
            items.push(live(format!("TAG#{key}"), None, None, Some(key.clone())));
        }
        for item in items {
            kept.insert(item.sk.clone());
            writes.push(ViewWrite { item: encode(&item)?, version: book.version });
        }
    }
    if let Some(book) = old {
        // A removal is one version past the last one the book had.
        let version = new.map_or(book.version.next(), |n| n.version);
        let pk = crate::store::write::book_pk(&book.id);
        let sks = std::iter::once(MAIN_SK.to_owned())
            .chain(book.authors.iter().map(|a| format!("AUTHOR#{}", lookup_key(a))))
            .chain(book.tags.iter().map(|t| format!("TAG#{}", lookup_key(t))));
        for sk in sks {
            if kept.insert(sk.clone()) {
                let tombstone = Tombstone {
                    pk: pk.clone(),
                    sk,
                    version,
                    deleted: true,
                    expires_at: now_epoch_secs + TOMBSTONE_TTL_SECS,
                };
                writes.push(ViewWrite { item: encode(&tombstone)?, version });
            }
        }
    }
    Ok(writes)
}

fn encode<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, DynamoError> {
    serde_dynamo::to_item(value).map_err(|e| DynamoError::mapping("PutItem", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(author: Option<&str>, tag: Option<&str>) -> ListFilter {
        ListFilter { author: author.map(str::to_owned), tag: tag.map(str::to_owned) }
    }

    #[test]
    fn fingerprints_compare_lookup_keys() {
        assert_eq!(
            filter(Some("Ursula  K. Le Guin"), None).fingerprint(),
            filter(Some("ursula k. le guin"), None).fingerprint()
        );
        assert_ne!(filter(Some("a"), None).fingerprint(), filter(None, Some("a")).fingerprint());
    }

    #[test]
    fn no_two_queries_share_a_fingerprint() {
        // What fuzzing found in `author=…&tag=…` (fuzz/regressions/cursor).
        assert_ne!(filter(Some("a&tag=b"), None).fingerprint(), filter(Some("a"), Some("b&tag=")).fingerprint());
        assert_ne!(filter(Some("a\",\"b"), None).fingerprint(), filter(Some("a"), Some("b")).fingerprint());
    }
}
