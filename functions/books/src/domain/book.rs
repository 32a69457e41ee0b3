//! The book aggregate and its value types. Every type is built by parsing, so a `BookDraft`
//! that exists has passed every rule of the contract.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::isbn::Isbn;
use super::ValidationErrors;

const TITLE_MAX_CHARS: usize = 300;
const AUTHORS_MAX: usize = 20;
pub(crate) const AUTHOR_MAX_CHARS: usize = 200;
const TAGS_MAX: usize = 20;
pub(crate) const TAG_MAX_CHARS: usize = 50;
const DESCRIPTION_MAX_CHARS: usize = 4_000;
const FIRST_PRINTED_YEAR: i32 = 1450;

/// A book's identity: a ULID made by the server, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BookId(ulid::Ulid);

impl BookId {
    pub(crate) fn generate() -> Self {
        Self(ulid::Ulid::new())
    }

    /// Parses the canonical 26-character form; anything else is not an id of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != ulid::ULID_LEN {
            return None;
        }
        ulid::Ulid::from_string(raw).ok().map(Self)
    }
}

impl fmt::Display for BookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Optimistic-concurrency version; 1 for a new book, +1 on every change. Exposed as the ETag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    pub(crate) const FIRST: Version = Version(1);

    /// The version numbered `value`.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The number, as the ETag and the stored `version` attribute carry it.
    pub fn get(self) -> u64 {
        self.0
    }

    pub(crate) fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Normalised form of an author or tag used as a lookup key: trimmed, whitespace folded,
/// lower-cased. Filters match on it, so `?author=ursula le guin` finds "Ursula K. Le Guin"
/// only if spelled the same apart from case and spacing.
pub fn lookup_key(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The client-controlled content of a book, validated. Used by create and by replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookDraft {
    title: String,
    authors: Vec<String>,
    isbn: Isbn,
    published_year: i32,
    tags: Vec<String>,
    description: String,
}

/// Fields a client may send back unchanged from a representation it read; they are ignored.
const READ_ONLY_FIELDS: [&str; 4] = ["id", "version", "created_at", "updated_at"];

impl BookDraft {
    /// Parses a JSON body into a draft, collecting every field error rather than the first.
    /// `now` fixes the upper bound for `published_year` (next year).
    pub fn parse(body: &Value, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single("", "the body must be a JSON object"));
        };
        let mut errors = ValidationErrors::default();
        for key in object.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) && !READ_ONLY_FIELDS.contains(&key.as_str()) {
                errors.push(key, "unknown field");
            }
        }
        let title = required_string(object, "title", &mut errors).and_then(|raw| parse_title(raw, &mut errors));
        let authors = parse_authors(object, &mut errors);
        let isbn = required_string(object, "isbn", &mut errors).and_then(|raw| match Isbn::parse(raw) {
            Ok(isbn) => Some(isbn),
            Err(err) => {
                errors.push("isbn", err.to_string());
                None
            }
        });
        let published_year = parse_year(object, now, &mut errors);
        let tags = parse_tags(object, &mut errors);
        let description = parse_description(object, &mut errors);

        match (title, authors, isbn, published_year, tags, description) {
            (Some(title), Some(authors), Some(isbn), Some(published_year), Some(tags), Some(description))
                if errors.is_empty() =>
            {
                Ok(Self { title, authors, isbn, published_year, tags, description })
            }
            _ => Err(errors),
        }
    }
}

const KNOWN_FIELDS: [&str; 6] = ["title", "authors", "isbn", "published_year", "tags", "description"];

fn required_string<'a>(object: &'a Map<String, Value>, field: &str, errors: &mut ValidationErrors) -> Option<&'a str> {
    match object.get(field) {
        None | Some(Value::Null) => {
            errors.push(field, "is required");
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(field, "must be a string");
            None
        }
    }
}

/// Trims and rejects control characters; `None` with an error recorded when the text is bad.
fn clean_text(field: &str, raw: &str, min: usize, max: usize, errors: &mut ValidationErrors) -> Option<String> {
    let text = raw.trim();
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errors.push(field, "must not contain control characters");
        return None;
    }
    let count = text.chars().count();
    if count < min {
        errors.push(
            field,
            if min == 1 { "must not be blank".to_owned() } else { format!("must have at least {min} characters") },
        );
        return None;
    }
    if count > max {
        errors.push(field, format!("must have at most {max} characters, found {count}"));
        return None;
    }
    Some(text.to_owned())
}

fn parse_title(raw: &str, errors: &mut ValidationErrors) -> Option<String> {
    let title = clean_text("title", raw, 1, TITLE_MAX_CHARS, errors)?;
    if title.contains('\n') {
        errors.push("title", "must be a single line");
        return None;
    }
    Some(title)
}

/// Parses an array of short strings; errors name the element (`authors[2]`).
fn string_list(
    object: &Map<String, Value>,
    field: &str,
    required: bool,
    max_items: usize,
    max_chars: usize,
    errors: &mut ValidationErrors,
) -> Option<Vec<String>> {
    let items = match object.get(field) {
        None | Some(Value::Null) if required => {
            errors.push(field, "is required");
            return None;
        }
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(field, "must be an array of strings");
            return None;
        }
    };
    if required && items.is_empty() {
        errors.push(field, "must have at least 1 entry");
        return None;
    }
    if items.len() > max_items {
        errors.push(field, format!("must have at most {max_items} entries, found {}", items.len()));
        return None;
    }
    let before = errors.len();
    let mut values: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let name = format!("{field}[{index}]");
        let Value::String(raw) = item else {
            errors.push(&name, "must be a string");
            continue;
        };
        let Some(text) = clean_text(&name, raw, 1, max_chars, errors) else { continue };
        if text.contains('\n') {
            errors.push(&name, "must be a single line");
            continue;
        }
        if values.iter().any(|seen| lookup_key(seen) == lookup_key(&text)) {
            errors.push(&name, "is a duplicate");
            continue;
        }
        values.push(text);
    }
    (errors.len() == before).then_some(values)
}

fn parse_authors(object: &Map<String, Value>, errors: &mut ValidationErrors) -> Option<Vec<String>> {
    string_list(object, "authors", true, AUTHORS_MAX, AUTHOR_MAX_CHARS, errors)
}

fn parse_tags(object: &Map<String, Value>, errors: &mut ValidationErrors) -> Option<Vec<String>> {
    string_list(object, "tags", false, TAGS_MAX, TAG_MAX_CHARS, errors)
}

fn parse_year(object: &Map<String, Value>, now: DateTime<Utc>, errors: &mut ValidationErrors) -> Option<i32> {
    let latest = now.year() + 1;
    let value = match object.get("published_year") {
        None | Some(Value::Null) => {
            errors.push("published_year", "is required");
            return None;
        }
        Some(value) => value,
    };
    // JSON Schema counts 1974.0 as an integer, as JSON does not tell them apart: so does this.
    let whole =
        value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64));
    match whole {
        Some(year) if (i64::from(FIRST_PRINTED_YEAR)..=i64::from(latest)).contains(&year) => i32::try_from(year).ok(),
        Some(year) => {
            errors.push("published_year", format!("must be between {FIRST_PRINTED_YEAR} and {latest}, found {year}"));
            None
        }
        None => {
            errors.push("published_year", "must be a whole number");
            None
        }
    }
}

fn parse_description(object: &Map<String, Value>, errors: &mut ValidationErrors) -> Option<String> {
    match object.get("description") {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(raw)) => clean_text("description", raw, 0, DESCRIPTION_MAX_CHARS, errors),
        Some(_) => {
            errors.push("description", "must be a string");
            None
        }
    }
}

/// A stored book as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    /// The [`BookId`], in its 26-character form.
    pub id: String,
    /// Trimmed, 1 to 300 characters on a single line.
    pub title: String,
    /// 1 to 20 names of at most 200 characters, none alike apart from case and spacing.
    pub authors: Vec<String>,
    /// The 13 digits of the ISBN-13, whatever form the client sent.
    pub isbn: String,
    /// From 1450 to the year after the write that set it.
    pub published_year: i32,
    /// Up to 20 tags of at most 50 characters, none alike apart from case and spacing.
    #[serde(default)]
    pub tags: Vec<String>,
    /// At most 4,000 characters; empty when the client sent none.
    #[serde(default)]
    pub description: String,
    /// The version this representation shows; its ETag.
    pub version: Version,
    /// When the book was created, as [`timestamp`] writes it.
    pub created_at: String,
    /// When the book last changed; `created_at` until it is replaced.
    pub updated_at: String,
}

impl Book {
    pub(crate) fn new(id: BookId, draft: BookDraft, now: DateTime<Utc>) -> Self {
        let stamp = timestamp(now);
        Self::from_draft(id.to_string(), draft, Version::FIRST, stamp.clone(), stamp)
    }

    /// The next version of this book with the draft's content.
    pub fn replaced(&self, draft: BookDraft, now: DateTime<Utc>) -> Self {
        Self::from_draft(self.id.clone(), draft, self.version.next(), self.created_at.clone(), timestamp(now))
    }

    fn from_draft(id: String, draft: BookDraft, version: Version, created_at: String, updated_at: String) -> Self {
        Self {
            id,
            title: draft.title,
            authors: draft.authors,
            isbn: draft.isbn.as_str().to_owned(),
            published_year: draft.published_year,
            tags: draft.tags,
            description: draft.description,
            version,
            created_at,
            updated_at,
        }
    }
}

/// RFC 3339 in UTC with millisecond precision, the form every timestamp of the API takes.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn valid() -> Value {
        json!({
            "title": "  The Dispossessed ",
            "authors": ["Ursula K. Le Guin"],
            "isbn": "0-06-051275-X",
            "published_year": 1974,
            "tags": ["sci-fi", "utopia"],
            "description": "An ambiguous utopia."
        })
    }

    fn fields(body: &Value) -> Vec<String> {
        BookDraft::parse(body, now()).unwrap_err().errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_valid_body_parses_trimmed_and_normalised() {
        let draft = BookDraft::parse(&valid(), now()).unwrap();
        assert_eq!(draft.title, "The Dispossessed");
        assert_eq!(draft.isbn.as_str(), "9780060512750");
        assert_eq!(draft.tags, vec!["sci-fi", "utopia"]);
    }

    #[test]
    fn optional_fields_default_to_empty() {
        let mut body = valid();
        body.as_object_mut().unwrap().remove("tags");
        body.as_object_mut().unwrap().remove("description");
        let draft = BookDraft::parse(&body, now()).unwrap();
        assert!(draft.tags.is_empty() && draft.description.is_empty());
    }

    #[test]
    fn every_missing_required_field_is_named() {
        assert_eq!(fields(&json!({})), vec!["title", "authors", "isbn", "published_year"]);
    }

    #[test]
    fn title_bounds() {
        let mut body = valid();
        body["title"] = json!("   ");
        assert_eq!(fields(&body), vec!["title"]);
        body["title"] = json!("x".repeat(TITLE_MAX_CHARS + 1));
        assert_eq!(fields(&body), vec!["title"]);
        body["title"] = json!("é".repeat(TITLE_MAX_CHARS));
        assert!(BookDraft::parse(&body, now()).is_ok());
    }

    #[test]
    fn author_count_and_duplicates() {
        let mut body = valid();
        body["authors"] = json!([]);
        assert_eq!(fields(&body), vec!["authors"]);
        body["authors"] = json!((0..=AUTHORS_MAX).map(|i| format!("A{i}")).collect::<Vec<_>>());
        assert_eq!(fields(&body), vec!["authors"]);
        body["authors"] = json!(["Ann", "ann ", 3]);
        assert_eq!(fields(&body), vec!["authors[1]", "authors[2]"]);
    }

    #[test]
    fn year_range_is_1450_to_next_year() {
        let mut body = valid();
        for (year, ok) in [(1449, false), (1450, true), (2027, true), (2028, false)] {
            body["published_year"] = json!(year);
            assert_eq!(BookDraft::parse(&body, now()).is_ok(), ok, "year {year}");
        }
        body["published_year"] = json!("1974");
        assert_eq!(fields(&body), vec!["published_year"]);
        body["published_year"] = json!(1974.5);
        assert_eq!(fields(&body), vec!["published_year"]);
        body["published_year"] = json!(1974.0);
        assert_eq!(BookDraft::parse(&body, now()).map(|draft| draft.published_year), Ok(1974), "an integer, in JSON");
        body["published_year"] = json!(2028.0);
        assert_eq!(fields(&body), vec!["published_year"]);
    }

    #[test]
    fn tag_count_and_length() {
        let mut body = valid();
        body["tags"] = json!((0..=TAGS_MAX).map(|i| format!("t{i}")).collect::<Vec<_>>());
        assert_eq!(fields(&body), vec!["tags"]);
        body["tags"] = json!(["ok", "x".repeat(TAG_MAX_CHARS + 1)]);
        assert_eq!(fields(&body), vec!["tags[1]"]);
    }

    #[test]
    fn description_is_bounded() {
        let mut body = valid();
        body["description"] = json!("d".repeat(DESCRIPTION_MAX_CHARS + 1));
        assert_eq!(fields(&body), vec!["description"]);
    }

    #[test]
    fn unknown_fields_are_rejected_and_read_only_ones_ignored() {
        let mut body = valid();
        body["colour"] = json!("red");
        assert_eq!(fields(&body), vec!["colour"]);
        body.as_object_mut().unwrap().remove("colour");
        body["id"] = json!("whatever");
        body["version"] = json!(7);
        assert!(BookDraft::parse(&body, now()).is_ok());
    }

    #[test]
    fn non_object_bodies_are_rejected() {
        assert!(BookDraft::parse(&json!([1, 2]), now()).is_err());
    }

    #[test]
    fn lookup_keys_fold_case_and_spacing() {
        assert_eq!(lookup_key("  Ursula  K. Le Guin "), "ursula k. le guin");
    }

    #[test]
    fn book_ids_round_trip_and_reject_junk() {
        let id = BookId::generate();
        assert_eq!(BookId::parse(&id.to_string()), Some(id));
        assert_eq!(BookId::parse("not-an-id"), None);
        assert_eq!(BookId::parse(""), None);
    }
}
