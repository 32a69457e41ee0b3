//! The HTTP contract of design.md §3 on API Gateway REST proxy events: routing, request
//! reading (size, media type, JSON), ETags and preconditions, and JSON responses. The command
//! and query handlers build on these; errors become problems in `problem`.

pub mod command;
mod cursor;
mod keyring;
mod problem;
pub mod query;

pub use cursor::{CursorKey, CursorKeys, KeyTooShort, MIN_KEY_BYTES};
pub use keyring::{CursorKeyring, KeyRead, KeysUnavailable, RefreshPolicy};
pub(crate) use problem::ApiError;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::Serialize;
use serde_json::Value;

use crate::domain::Version;
use crate::metrics::Operation;

/// Largest accepted request body.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API's resources, whatever stage or base path they are served under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource {
    Books,
    Book(String),
}

impl Resource {
    /// Recognises `/books` and `/books/{id}` from the event's own path (without the stage).
    pub(crate) fn of(req: &Request) -> Option<Self> {
        let path = req.raw_http_path();
        let mut segments = path.trim_matches('/').split('/');
        match (segments.next(), segments.next(), segments.next()) {
            (Some("books"), None, None) => Some(Self::Books),
            (Some("books"), Some(id), None) if !id.is_empty() => {
                let from_params = req.path_parameters_ref().and_then(|p| p.first("id").map(str::to_owned));
                Some(Self::Book(from_params.unwrap_or_else(|| id.to_owned())))
            }
            _ => None,
        }
    }
}

/// The id every response and log line carries: Lambda's request id when running in Lambda,
/// else API Gateway's.
pub(crate) fn request_id(req: &Request) -> String {
    if let Some(context) = req.lambda_context_ref() {
        return context.request_id.clone();
    }
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The API key id API Gateway validated for this request, if any (scopes idempotency keys).
pub(crate) fn api_key_id(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.api_key_id.clone(),
        _ => None,
    }
}

/// Reads the body as a JSON value: present, at most 64 KiB, `application/json`, well-formed.
pub(crate) fn json_body(req: &Request) -> Result<Value, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    let content_type =
        req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingBody);
    }
    if !content_type.as_deref().is_some_and(is_json_media_type) {
        return Err(ApiError::UnsupportedMediaType(content_type));
    }
    serde_json::from_slice(bytes).map_err(|err| ApiError::MalformedJson(err.to_string()))
}

/// `application/json` or `application/<something>+json`, with at most a UTF-8 charset.
fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    let charset_ok = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    json && charset_ok
}

/// Records the request metrics and the one log line per request, then renders the response.
pub(crate) fn finish(
    operation: Operation,
    started: std::time::Instant,
    result: Result<Response<Body>, ApiError>,
    req: &Request,
    request_id: &str,
) -> Response<Body> {
    use crate::metrics as m;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    m::record_ms(&metrics::histogram!(m::REQUEST_LATENCY, m::OPERATION => operation.as_str()), elapsed_ms);
    if let Err(err) = &result {
        match err {
            ApiError::Validation(_) | ApiError::MalformedJson(_) | ApiError::MissingBody => {
                metrics::counter!(m::VALIDATION_ERRORS).increment(1);
            }
            ApiError::PreconditionFailed { .. } => metrics::counter!(m::CONCURRENCY_CONFLICTS).increment(1),
            ApiError::DuplicateIsbn => metrics::counter!(m::ISBN_CONFLICTS).increment(1),
            ApiError::Internal => metrics::counter!(m::SERVER_ERRORS, m::OPERATION => operation.as_str()).increment(1),
            _ => {}
        }
    }
    let response = result.unwrap_or_else(|err| err.into_response(request_id, req.uri().path()));
    tracing::info!(
        operation = operation.as_str(),
        method = %req.method(),
        path = req.uri().path(),
        status = response.status().as_u16(),
        duration_ms = elapsed_ms,
        "request handled"
    );
    response
}

/// The strong ETag of a version.
pub(crate) fn etag(version: Version) -> String {
    format!("\"{version}\"")
}

/// An `If-Match` / `If-None-Match` header: `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntityTags {
    Any,
    /// `(weak, opaque tag without quotes)` pairs.
    List(Vec<(bool, String)>),
}

impl EntityTags {
    /// `None` when the header is absent; `Err` with the header name when it is malformed.
    pub(crate) fn from_header(headers: &HeaderMap, name: &'static str) -> Result<Option<Self>, ApiError> {
        let values: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
        if values.is_empty() {
            return Ok(None);
        }
        let malformed = || {
            let mut errors = crate::domain::ValidationErrors::default();
            errors.push(name, "must be * or a list of entity tags such as \"3\"");
            ApiError::Validation(errors)
        };
        let mut tags = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| malformed())?;
            for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if item == "*" {
                    return Ok(Some(Self::Any));
                }
                let (weak, quoted) = match item.strip_prefix("W/") {
                    Some(rest) => (true, rest),
                    None => (false, item),
                };
                let inner = quoted.strip_prefix('"').and_then(|s| s.strip_suffix('"')).ok_or_else(malformed)?;
                tags.push((weak, inner.to_owned()));
            }
        }
        if tags.is_empty() {
            return Err(malformed());
        }
        Ok(Some(Self::List(tags)))
    }

    /// Strong comparison, as `If-Match` requires.
    pub(crate) fn matches_strongly(&self, version: Version) -> bool {
        match self {
            Self::Any => true,
            Self::List(tags) => tags.iter().any(|(weak, tag)| !weak && *tag == version.to_string()),
        }
    }

    /// Weak comparison, as `If-None-Match` requires.
    pub(crate) fn matches_weakly(&self, version: Version) -> bool {
        match self {
            Self::Any => true,
            Self::List(tags) => tags.iter().any(|(_, tag)| *tag == version.to_string()),
        }
    }
}

/// A JSON response with the request id.
pub(crate) fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    let text = serde_json::to_string(body).map_err(|_| ApiError::Internal)?;
    let mut response = empty_response(status, request_id);
    *response.body_mut() = Body::Text(text);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A response without a body, with the request id.
pub(crate) fn empty_response(status: StatusCode, request_id: &str) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// Sets a header whose value we produced ourselves (ids, ETags, paths).
pub(crate) fn set_header(response: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in ["application/json", "Application/JSON; charset=UTF-8", "application/merge-patch+json"] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/json; charset=latin1", "application/xml", ""] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn entity_tags_parse_and_compare() {
        let mut headers = HeaderMap::new();
        headers.insert("if-match", HeaderValue::from_static("W/\"2\", \"3\""));
        let tags = EntityTags::from_header(&headers, "if-match").unwrap().unwrap();
        assert!(tags.matches_strongly(Version::new(3)));
        assert!(!tags.matches_strongly(Version::new(2)));
        assert!(tags.matches_weakly(Version::new(2)));
        headers.insert("if-match", HeaderValue::from_static("3"));
        assert!(EntityTags::from_header(&headers, "if-match").is_err());
        headers.insert("if-match", HeaderValue::from_static("*"));
        assert_eq!(EntityTags::from_header(&headers, "if-match").unwrap(), Some(EntityTags::Any));
        assert_eq!(EntityTags::from_header(&HeaderMap::new(), "if-match").unwrap(), None);
    }
}
