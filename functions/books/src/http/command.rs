//! The command side of the API: `POST /books`, `PUT /books/{id}`, `DELETE /books/{id}` on the
//! write model, with optimistic concurrency (`If-Match`) and idempotent creation.

use chrono::{DateTime, Utc};
use http::{header, Method, Response, StatusCode};
use lambda_http::{Body, Request};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{api_key_id, etag, json_body, json_response, request_id, set_header, ApiError, EntityTags, Resource};
use crate::domain::{Book, BookDraft, BookId, ValidationErrors};
use crate::metrics::{self as m, Operation};
use crate::store::{BookStore, CreateError, DynamoError, IdempotencyRecord, SavedResponse, WriteError};

/// How long a first response is replayed for a retried `Idempotency-Key`.
pub const IDEMPOTENCY_WINDOW_SECS: i64 = 24 * 3600;
const IDEMPOTENCY_KEY_MAX: usize = 255;
/// Attempts when a concurrent writer got in between our read and our conditional write.
const WRITE_ATTEMPTS: usize = 3;

/// Everything the command handler needs, built once per process.
#[derive(Clone)]
pub struct Commands {
    pub(crate) store: BookStore,
    /// Read once per request, so validation and timestamps see the same time.
    pub(crate) clock: fn() -> DateTime<Utc>,
}

impl Commands {
    /// Commands on `store`, on the system clock.
    pub fn new(store: BookStore) -> Self {
        Self { store, clock: Utc::now }
    }
}

/// Handles one API Gateway request; every failure becomes a problem response.
pub async fn handle(commands: &Commands, req: Request) -> Response<Body> {
    let started = std::time::Instant::now();
    let request_id = request_id(&req);
    let (operation, result) = match (Resource::of(&req), req.method()) {
        (None, _) => (Operation::Unrouted, Err(ApiError::RouteNotFound)),
        (Some(Resource::Books), &Method::POST) => (Operation::CreateBook, create(commands, &req, &request_id).await),
        (Some(Resource::Books), _) => (Operation::Unrouted, Err(ApiError::MethodNotAllowed { allow: "POST" })),
        (Some(Resource::Book(id)), &Method::PUT) => {
            (Operation::ReplaceBook, replace(commands, &req, &id, &request_id).await)
        }
        (Some(Resource::Book(id)), &Method::DELETE) => {
            (Operation::DeleteBook, delete(commands, &req, &id, &request_id).await)
        }
        (Some(Resource::Book(_)), _) => (Operation::Unrouted, Err(ApiError::MethodNotAllowed { allow: "PUT, DELETE" })),
    };
    super::finish(operation, started, result, &req, &request_id)
}

// Takes the error by value so that call sites read `.map_err(internal)`.
#[allow(clippy::needless_pass_by_value)]
fn internal(err: DynamoError) -> ApiError {
    tracing::error!(error = %err, source = ?err.source, "store call failed");
    ApiError::Internal
}

async fn create(commands: &Commands, req: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let idempotency_key = idempotency_key(req)?;
    let body = json_body(req)?;
    let now = (commands.clock)();
    let draft = BookDraft::parse(&body, now).map_err(ApiError::Validation)?;
    let fingerprint = fingerprint(&body);
    let now_secs = now.timestamp();

    for _ in 0..WRITE_ATTEMPTS {
        if let Some(key_hash) = &idempotency_key {
            if let Some(first) = commands.store.idempotency_record(key_hash).await.map_err(internal)? {
                if first.expires_at > now_secs {
                    if first.fingerprint != fingerprint {
                        return Err(ApiError::IdempotencyKeyReused);
                    }
                    tracing::info!("replaying the first response of an idempotent request");
                    metrics::counter!(m::IDEMPOTENT_REPLAYS).increment(1);
                    return Ok(saved_response(&first.response, request_id, true));
                }
            }
        }
        let book = Book::new(BookId::generate(), draft.clone(), now);
        let location = format!("{}/{}", req.uri().path().trim_end_matches('/'), book.id);
        let saved = SavedResponse {
            status: StatusCode::CREATED.as_u16(),
            headers: vec![
                (header::LOCATION.to_string(), location),
                (header::ETAG.to_string(), etag(book.version)),
                (header::CONTENT_TYPE.to_string(), "application/json".to_owned()),
            ],
            body: serde_json::to_string(&book).map_err(|_| ApiError::Internal)?,
        };
        let record = idempotency_key.as_ref().map(|key_hash| IdempotencyRecord {
            key_hash: key_hash.clone(),
            fingerprint: fingerprint.clone(),
            response: saved.clone(),
            expires_at: now_secs + IDEMPOTENCY_WINDOW_SECS,
        });
        match commands.store.create(&book, record.as_ref(), now_secs).await {
            Ok(()) => {
                tracing::info!(book_id = %book.id, "book created");
                metrics::counter!(m::BOOKS_CREATED).increment(1);
                return Ok(saved_response(&saved, request_id, false));
            }
            // A concurrent request with the same key won: the next round replays its answer.
            Err(CreateError::IdempotencyKeyTaken) => continue,
            Err(CreateError::DuplicateIsbn) => return Err(ApiError::DuplicateIsbn),
            Err(CreateError::Store(err)) => return Err(internal(err)),
        }
    }
    Err(ApiError::Internal)
}

async fn replace(commands: &Commands, req: &Request, id: &str, request_id: &str) -> Result<Response<Body>, ApiError> {
    let id = BookId::parse(id).ok_or(ApiError::BookNotFound)?;
    let if_match = EntityTags::from_header(req.headers(), "if-match")?.ok_or(ApiError::PreconditionRequired)?;
    let body = json_body(req)?;
    let now = (commands.clock)();
    let draft = BookDraft::parse(&body, now).map_err(ApiError::Validation)?;
    if body.get("id").is_some_and(|body_id| body_id.as_str() != Some(id.to_string().as_str())) {
        return Err(ApiError::Validation(ValidationErrors::single("id", "does not match the book in the URL")));
    }
    for _ in 0..WRITE_ATTEMPTS {
        let current = commands.store.get(&id).await.map_err(internal)?.ok_or(ApiError::BookNotFound)?;
        if !if_match.matches_strongly(current.version) {
            return Err(ApiError::PreconditionFailed { current: current.version });
        }
        let next = current.replaced(draft.clone(), now);
        match commands.store.replace(&current, &next).await {
            Ok(()) => {
                tracing::info!(book_id = %next.id, version = %next.version, "book replaced");
                metrics::counter!(m::BOOKS_UPDATED).increment(1);
                let mut response = json_response(StatusCode::OK, &next, request_id)?;
                set_header(&mut response, header::ETAG, &etag(next.version));
                return Ok(response);
            }
            // Re-read: the book is gone (404), moved on (412), or, with `If-Match: *`, retried.
            Err(WriteError::Stale) => continue,
            Err(WriteError::DuplicateIsbn) => return Err(ApiError::DuplicateIsbn),
            Err(WriteError::Store(err)) => return Err(internal(err)),
        }
    }
    Err(ApiError::Internal)
}

async fn delete(commands: &Commands, req: &Request, id: &str, request_id: &str) -> Result<Response<Body>, ApiError> {
    let id = BookId::parse(id).ok_or(ApiError::BookNotFound)?;
    // Like a replacement, a deletion names the version it deletes (or `*`, deliberately any):
    // a key that can list the books cannot delete them blind.
    let if_match = EntityTags::from_header(req.headers(), "if-match")?.ok_or(ApiError::PreconditionRequired)?;
    for _ in 0..WRITE_ATTEMPTS {
        let current = commands.store.get(&id).await.map_err(internal)?.ok_or(ApiError::BookNotFound)?;
        if !if_match.matches_strongly(current.version) {
            return Err(ApiError::PreconditionFailed { current: current.version });
        }
        match commands.store.delete(&current).await {
            Ok(()) => {
                tracing::info!(book_id = %current.id, "book deleted");
                metrics::counter!(m::BOOKS_DELETED).increment(1);
                return Ok(super::empty_response(StatusCode::NO_CONTENT, request_id));
            }
            Err(WriteError::Stale) => continue,
            Err(WriteError::DuplicateIsbn) => return Err(ApiError::Internal),
            Err(WriteError::Store(err)) => return Err(internal(err)),
        }
    }
    Err(ApiError::Internal)
}

/// The `Idempotency-Key` header, hashed together with the caller's API key id so that two
/// clients choosing the same key never see each other's responses.
fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().unwrap_or_default();
    let valid = !key.is_empty() && key.len() <= IDEMPOTENCY_KEY_MAX && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::Validation(ValidationErrors::single(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        )));
    }
    let mut hash = Sha256::new();
    hash.update(api_key_id(req).unwrap_or_default().as_bytes());
    hash.update(b"\n");
    hash.update(key.as_bytes());
    Ok(Some(hex(&hash.finalize())))
}

/// Hash of the body in canonical form (object keys sorted), so key order does not matter.
fn fingerprint(body: &Value) -> String {
    fn canonical(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(body, &mut text);
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn saved_response(saved: &SavedResponse, request_id: &str, replayed: bool) -> Response<Body> {
    let mut response = super::empty_response(StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK), request_id);
    *response.body_mut() = Body::Text(saved.body.clone());
    for (name, value) in &saved.headers {
        if let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) {
            set_header(&mut response, name, value);
        }
    }
    if replayed {
        set_header(&mut response, header::HeaderName::from_static("idempotent-replayed"), "true");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = json!({"title": "A", "authors": ["x", "y"], "n": {"b": 1, "a": 2}});
        let b = json!({"n": {"a": 2, "b": 1}, "authors": ["x", "y"], "title": "A"});
        let c = json!({"title": "A", "authors": ["y", "x"], "n": {"b": 1, "a": 2}});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
