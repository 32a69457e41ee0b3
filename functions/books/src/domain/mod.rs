//! The Books domain: value types that can only be built by parsing, the book aggregate, and
//! the validation errors that name the field at fault.

mod book;
mod isbn;

pub use book::{lookup_key, timestamp, Book, BookDraft, BookId, Version};
pub(crate) use book::{AUTHOR_MAX_CHARS, TAG_MAX_CHARS};

use serde::Serialize;

/// One rule a field broke. `field` is a JSON path (`authors[2]`), empty for the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A JSON path into the body, or the header or query parameter at fault.
    pub field: String,
    /// What is wrong, worded to follow the field's name: "must not be blank".
    pub message: String,
}

/// Every rule a request broke, in the order the fields were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    /// What the problem document's `errors` lists, in the same order.
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    pub(crate) fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.push(field, message);
        errors
    }

    pub(crate) fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError { field: field.to_owned(), message: message.into() });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }
}
