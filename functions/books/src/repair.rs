//! Repairing the read model: rebuilt from the write model, the source of truth, while the API
//! and the projector go on.
//!
//! Every write is conditional on the version, like the projector's, so a rebuild racing with
//! new writes never puts back something older than what the projector stored:
//!
//! - each book's items are written at its version unless the view holds a newer one (an item at
//!   the same version is written again: a faulty projection is repaired too);
//! - an item the book no longer has (an author or a tag an update removed, whose record was
//!   lost) becomes a tombstone at the book's version;
//! - a book the write model no longer has — read again, one by one, since it may have been
//!   created after the scan — is gone for good (ids are never reused): its items become
//!   tombstones at the highest version, which no record can pass.

use std::collections::{BTreeSet, HashMap};

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::domain::{Book, BookId, Version};
use crate::store::{tombstone, view_writes, BookStore, DynamoError, ViewStore, ViewWrite};

/// Writes in flight at once: enough to keep a table busy, few enough for its capacity.
const CONCURRENT_WRITES: usize = 16;

/// The version of the tombstones of a book that no longer exists: no record can be newer.
const GONE: Version = Version::new(u64::MAX);

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Books in the write model.
    pub books: usize,
    /// View items written (live items and tombstones).
    pub written: usize,
    /// Writes the view refused because it already held something newer.
    pub newer_kept: usize,
    /// Of the written items, the tombstones.
    pub tombstones: usize,
}

/// Makes the read model show the write model: see the module's documentation.
pub async fn rebuild_view(store: &BookStore, view: &ViewStore, now_epoch_secs: i64) -> Result<Rebuilt, DynamoError> {
    let books = store.scan_books().await?;
    let mut report = Rebuilt { books: books.len(), ..Rebuilt::default() };
    let mut writes = Vec::new();
    let mut shown: HashMap<String, (Version, BTreeSet<String>)> = HashMap::new();
    for book in &books {
        shown.insert(book.id.clone(), items_of(book, now_epoch_secs, &mut writes)?);
    }
    report.add(apply(view, writes, false).await?);

    let mut tombstones = Vec::new();
    let mut created_since = Vec::new();
    for entry in view.scan_entries().await?.into_iter().filter(|entry| entry.live) {
        match shown.get(&entry.book_id) {
            Some((_, sks)) if sks.contains(&entry.sk) => {}
            Some((version, _)) => tombstones.push(tombstone(&entry.book_id, &entry.sk, *version, now_epoch_secs)?),
            None => created_since.push(entry),
        }
    }
    // Not in the scan: created since (its projection is under way), or deleted for good. Each
    // such book is read once, whatever number of items the view holds for it.
    for entry in created_since {
        if !shown.contains_key(&entry.book_id) {
            let current = match BookId::parse(&entry.book_id) {
                Some(id) => store.get(&id).await?,
                None => None,
            };
            let known = match current {
                Some(book) => items_of(&book, now_epoch_secs, &mut Vec::new())?,
                None => (GONE, BTreeSet::new()),
            };
            shown.insert(entry.book_id.clone(), known);
        }
        if let Some((version, sks)) = shown.get(&entry.book_id) {
            if !sks.contains(&entry.sk) {
                tombstones.push(tombstone(&entry.book_id, &entry.sk, *version, now_epoch_secs)?);
            }
        }
    }
    report.add(apply(view, tombstones, true).await?);
    Ok(report)
}

/// The live items `book` shows, pushed onto `writes`; its version and their sort keys.
fn items_of(
    book: &Book,
    now_epoch_secs: i64,
    writes: &mut Vec<ViewWrite>,
) -> Result<(Version, BTreeSet<String>), DynamoError> {
    let items = view_writes(None, Some(book), now_epoch_secs)?;
    let sks = items.iter().map(|write| write.sk().to_owned()).collect();
    writes.extend(items);
    Ok((book.version, sks))
}

async fn apply(view: &ViewStore, writes: Vec<ViewWrite>, tombstones: bool) -> Result<Rebuilt, DynamoError> {
    let applied: Vec<bool> = stream::iter(writes)
        .map(|write| view.write_unless_newer(write))
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect()
        .await?;
    let written = applied.iter().filter(|applied| **applied).count();
    Ok(Rebuilt {
        books: 0,
        written,
        newer_kept: applied.len() - written,
        tombstones: if tombstones { written } else { 0 },
    })
}

impl Rebuilt {
    fn add(&mut self, other: Rebuilt) {
        self.written += other.written;
        self.newer_kept += other.newer_kept;
        self.tombstones += other.tombstones;
    }
}
