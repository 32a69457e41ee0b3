//! The query side of the API: `GET /books/{id}` (with `If-None-Match`) and `GET /books` (author
//! and tag filters, limit, signed cursors), served from the read model.

use http::{header, Method, Response, StatusCode};
use lambda_http::{Body, Request, RequestExt};
use serde::Serialize;

use super::{
    empty_response, etag, json_response, request_id, set_header, ApiError, CursorKeyring, EntityTags, KeysUnavailable,
    Resource,
};
use crate::domain::{Book, BookId, ValidationErrors, AUTHOR_MAX_CHARS, TAG_MAX_CHARS};
use crate::metrics::Operation;
use crate::store::{DynamoError, ListFilter, ViewStore};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
const QUERY_PARAMETERS: [&str; 4] = ["author", "tag", "limit", "cursor"];

/// Everything the query handler needs, built once per process.
#[derive(Clone)]
pub struct Queries {
    /// The read model every answer comes from.
    pub view: ViewStore,
    /// Sign the cursors of `GET /books` and check the ones clients send back; read when a list
    /// first needs them, so `GET /books/{id}` never depends on the secret store.
    pub cursor_keys: CursorKeyring,
}

#[derive(Serialize)]
struct BookList {
    items: Vec<Book>,
    next_cursor: Option<String>,
}

/// Handles one API Gateway request; every failure becomes a problem response.
pub async fn handle(queries: &Queries, req: Request) -> Response<Body> {
    let started = std::time::Instant::now();
    let request_id = request_id(&req);
    let (operation, result) = match (Resource::of(&req), req.method()) {
        (None, _) => (Operation::Unrouted, Err(ApiError::RouteNotFound)),
        (Some(Resource::Books), &Method::GET) => (Operation::ListBooks, list(queries, &req, &request_id).await),
        (Some(Resource::Book(id)), &Method::GET) => (Operation::GetBook, get(queries, &req, &id, &request_id).await),
        (Some(_), _) => (Operation::Unrouted, Err(ApiError::MethodNotAllowed { allow: "GET" })),
    };
    super::finish(operation, started, result, &req, &request_id)
}

// The keyring has logged why; the client learns only that the list failed on our side.
#[allow(clippy::needless_pass_by_value)]
fn keys_unavailable(_: KeysUnavailable) -> ApiError {
    ApiError::Internal
}

// Takes the error by value so that call sites read `.map_err(internal)`.
#[allow(clippy::needless_pass_by_value)]
fn internal(err: DynamoError) -> ApiError {
    tracing::error!(error = %err, source = ?err.source, "view call failed");
    ApiError::Internal
}

async fn get(queries: &Queries, req: &Request, id: &str, request_id: &str) -> Result<Response<Body>, ApiError> {
    let id = BookId::parse(id).ok_or(ApiError::BookNotFound)?;
    let if_none_match = EntityTags::from_header(req.headers(), "if-none-match")?;
    let book = queries.view.get(&id).await.map_err(internal)?.ok_or(ApiError::BookNotFound)?;
    let mut response = if if_none_match.is_some_and(|tags| tags.matches_weakly(book.version)) {
        empty_response(StatusCode::NOT_MODIFIED, request_id)
    } else {
        json_response(StatusCode::OK, &book, request_id)?
    };
    set_header(&mut response, header::ETAG, &etag(book.version));
    set_header(&mut response, header::CACHE_CONTROL, "no-cache");
    Ok(response)
}

/// A list request after parsing its query string.
pub(crate) struct ListRequest {
    pub(crate) filter: ListFilter,
    limit: usize,
    cursor: Option<String>,
}

pub(crate) fn parse_list_request(req: &Request) -> Result<ListRequest, ApiError> {
    let params = req.query_string_parameters();
    let mut errors = ValidationErrors::default();
    let mut names: Vec<&str> = params.iter().map(|(name, _)| name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        if !QUERY_PARAMETERS.contains(&name) {
            errors.push(name, format!("is not a parameter of this list; use {}", QUERY_PARAMETERS.join(", ")));
        } else if params.all(name).is_some_and(|values| values.len() > 1) {
            errors.push(name, "must be given at most once");
        }
    }
    let mut text = |name: &str, max: usize| -> Option<String> {
        let value = params.first(name)?.trim();
        if value.is_empty() {
            errors.push(name, "must not be blank");
        } else if value.chars().count() > max {
            errors.push(name, format!("must have at most {max} characters"));
        } else {
            return Some(value.to_owned());
        }
        None
    };
    let author = text("author", AUTHOR_MAX_CHARS);
    let tag = text("tag", TAG_MAX_CHARS);
    let cursor = text("cursor", 2048);
    let limit = match params.first("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"));
                DEFAULT_LIMIT
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(ListRequest { filter: ListFilter { author, tag }, limit, cursor })
}

async fn list(queries: &Queries, req: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let request = parse_list_request(req)?;
    let query = request.filter.fingerprint();
    let start = match &request.cursor {
        None => None,
        Some(cursor) => Some(
            queries
                .cursor_keys
                .decode(&query, cursor)
                .await
                .map_err(keys_unavailable)?
                .map_err(|err| ApiError::Validation(ValidationErrors::single("cursor", err.to_string())))?,
        ),
    };
    let page = queries.view.list(&request.filter, request.limit, start).await.map_err(internal)?;
    let next_cursor = match page.next {
        Some(key) => Some(queries.cursor_keys.encode(&query, &key).await.map_err(keys_unavailable)?),
        None => None,
    };
    let mut response = json_response(StatusCode::OK, &BookList { items: page.items, next_cursor }, request_id)?;
    set_header(&mut response, header::CACHE_CONTROL, "no-cache");
    Ok(response)
}
