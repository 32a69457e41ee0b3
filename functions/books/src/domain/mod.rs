//! The Books domain: value types that can only be built by parsing, the book aggregate, and
//! the validation errors that name the field at fault.

mod book;
mod isbn;

pub use book::{
    lookup_key, timestamp, Book, BookDraft, BookId, Version, AUTHORS_MAX, AUTHOR_MAX_CHARS, DESCRIPTION_MAX_CHARS,
    FIRST_PRINTED_YEAR, TAGS_MAX, TAG_MAX_CHARS, TITLE_MAX_CHARS,
};
pub use isbn::{Isbn, IsbnError};

use serde::Serialize;

/// One rule a field broke. `field` is a JSON path (`authors[2]`), empty for the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every rule a request broke, in the order the fields were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.push(field, message);
        errors
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError { field: field.to_owned(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }
}
