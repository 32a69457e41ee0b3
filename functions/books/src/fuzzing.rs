//! Entry points of the fuzz targets (`fuzz/`) and of the replay of their corpora (`cargo test`):
//! each takes arbitrary bytes, runs one parser of the API's boundary and panics when a property
//! of the contract breaks. Not part of the API the functions use.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use http::{header, HeaderMap, HeaderValue};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

use crate::domain::{lookup_key, Book, BookDraft, BookId, ValidationErrors, Version};
use crate::http::query::parse_list_request;
use crate::http::{etag, json_body, ApiError, CursorKey, CursorKeys, EntityTags};
use crate::store::{ListFilter, ViewKey};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single().unwrap_or_default()
}

/// Splits an input into a first line and the rest (a header and a body, say).
fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// A refused request is a problem document with a 4xx status; a validation error names its fields.
fn assert_problem(err: ApiError) {
    let validation = matches!(err, ApiError::Validation(_));
    let response = err.into_response("fuzz", "/books");
    assert!(response.status().is_client_error(), "a refused body answers {}", response.status());
    assert_eq!(
        response.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
        Some(&b"application/problem+json"[..])
    );
    let problem: Value = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("the problem document is JSON"),
        other => panic!("the problem document is text, not {other:?}"),
    };
    assert_eq!(problem["status"].as_u64(), Some(u64::from(response.status().as_u16())));
    if validation {
        let errors = problem["errors"].as_array().expect("a validation problem lists its errors");
        assert!(!errors.is_empty(), "a validation problem names at least one field");
        assert!(errors.iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())));
    }
}

/// `POST /books` and `PUT /books/{id}` bodies: the first line is the `Content-Type`, the rest the
/// body. A body is either refused with a problem document, or becomes a draft whose
/// representation, sent back unchanged (read-only fields included), is the same draft.
pub fn book_body(data: &[u8]) {
    let (content_type, body) = first_line(data);
    let mut request = Request::new(Body::Binary(body.to_vec()));
    if let Ok(value) = HeaderValue::from_bytes(content_type) {
        request.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    let value = match json_body(&request) {
        Ok(value) => value,
        Err(err) => return assert_problem(err),
    };
    let draft = match BookDraft::parse(&value, now()) {
        Ok(draft) => draft,
        Err(errors) => {
            assert_field_errors(&errors);
            return assert_problem(ApiError::Validation(errors));
        }
    };
    let book = Book::new(BookId::generate(), draft.clone(), now());
    let representation = serde_json::to_value(&book).expect("a book serialises");
    assert_eq!(BookDraft::parse(&representation, now()), Ok(draft), "a book read back is the draft it was made from");
}

fn assert_field_errors(errors: &ValidationErrors) {
    assert!(!errors.is_empty(), "a refused draft says why");
    for error in &errors.errors {
        assert!(!error.message.is_empty(), "the error of {:?} has no message", error.field);
    }
}

/// `If-Match` / `If-None-Match`: each line is one header value. A header is refused as a
/// validation error of that header, or read; a list that names a version's ETag matches it
/// strongly, and every strong match is also a weak one.
pub fn preconditions(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(header::IF_MATCH, value);
        }
    }
    let versions = [Version::new(1), Version::new(7), Version::new(u64::MAX)];
    match EntityTags::from_header(&headers, "if-match") {
        Ok(None) => assert!(headers.is_empty(), "a present header was read as absent"),
        Ok(Some(tags)) => {
            for version in versions {
                assert!(!tags.matches_strongly(version) || tags.matches_weakly(version));
            }
        }
        Err(ApiError::Validation(errors)) => {
            assert!(errors.errors.iter().all(|e| e.field == "if-match"), "the error names the header: {errors:?}");
        }
        Err(other) => panic!("a malformed precondition is a validation error, not {other:?}"),
    }
    // Our own ETag, added to whatever the client sent, always matches.
    for version in versions {
        let mut with_ours = headers.clone();
        with_ours.append(header::IF_MATCH, HeaderValue::from_str(&etag(version)).expect("an ETag is a header value"));
        if let Ok(Some(tags)) = EntityTags::from_header(&with_ours, "if-match") {
            assert!(tags.matches_strongly(version), "{:?} does not match {}", with_ours, etag(version));
        }
    }
}

/// List cursors: whatever a client sends is refused unless this API signed it; a cursor of one
/// query never decodes under another, and queries with other filters never share a fingerprint.
/// The input's lines are a cursor, then two queries' `author` and `tag` (an empty line: absent),
/// read by the list's own query-string parser.
pub fn cursor(data: &[u8]) {
    let key = CursorKeys::single(CursorKey::new(&[0x5a; 32]).expect("32 bytes is a valid key"));
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let sent = lines.next().unwrap_or_default().to_owned();
    let mut query = || {
        let mut parameters = HashMap::new();
        for name in ["author", "tag"] {
            if let Some(value) = lines.next().filter(|s| !s.is_empty()) {
                parameters.insert(name.to_owned(), vec![value.to_owned()]);
            }
        }
        let request = Request::default().with_query_string_parameters(QueryMap::from(parameters));
        parse_list_request(&request).ok().map(|list| list.filter)
    };
    let (Some(first), Some(second)) = (query(), query()) else { return };
    // A forged cursor: the input cannot hold a valid HMAC, so nothing decodes.
    assert!(key.decode(&first.fingerprint(), &sent).is_err(), "an unsigned cursor was accepted: {sent:?}");

    let position = ViewKey { pk: format!("BOOK#{sent}"), sk: "BOOK".into(), book_id: sent.clone() };
    let issued = key.encode(&first.fingerprint(), &position);
    assert_eq!(key.decode(&first.fingerprint(), &issued), Ok(position), "a cursor round-trips");
    let normal =
        |filter: &ListFilter| (filter.author.as_deref().map(lookup_key), filter.tag.as_deref().map(lookup_key));
    if normal(&first) != normal(&second) {
        assert_ne!(first.fingerprint(), second.fingerprint(), "two queries share a fingerprint: {first:?} {second:?}");
        assert!(key.decode(&second.fingerprint(), &issued).is_err(), "a cursor moved to another query");
    }
}
