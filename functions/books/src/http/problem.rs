//! Every way a request can fail, and the one place they become HTTP responses: RFC 9457
//! `application/problem+json` bodies naming the field at fault.

use http::{header, HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde::Serialize;

use crate::domain::{FieldError, ValidationErrors, Version};

/// A failed request; `into_response` renders it as problem+json with its status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("the request has invalid fields")]
    Validation(ValidationErrors),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("a JSON body is required")]
    MissingBody,
    #[error("the body must be JSON")]
    UnsupportedMediaType(Option<String>),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no such resource")]
    RouteNotFound,
    #[error("no book with this id")]
    BookNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("If-Match is required")]
    PreconditionRequired,
    #[error("If-Match does not match the current version")]
    PreconditionFailed { current: Version },
    #[error("a book with this ISBN already exists")]
    DuplicateIsbn,
    #[error("the idempotency key was already used with another body")]
    IdempotencyKeyReused,
    #[error("internal error")]
    Internal,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    instance: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

fn field(name: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError { field: name.to_owned(), message: message.into() }]
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::MalformedJson(_) | Self::MissingBody => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RouteNotFound | Self::BookNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::DuplicateIsbn => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `(type, title, detail, field errors)` of the problem document.
    fn describe(&self) -> (&'static str, &'static str, String, Vec<FieldError>) {
        match self {
            Self::Validation(errors) => {
                let detail = match errors.errors.as_slice() {
                    [only] if only.field.is_empty() => only.message.clone(),
                    [only] => format!("{} {}", only.field, only.message),
                    many => format!("{} fields are invalid", many.len()),
                };
                ("urn:books:problem:validation-error", "Invalid request", detail, errors.errors.clone())
            }
            Self::MalformedJson(reason) => {
                ("urn:books:problem:malformed-json", "Malformed JSON", reason.clone(), field("body", reason.clone()))
            }
            Self::MissingBody => (
                "urn:books:problem:validation-error",
                "Invalid request",
                self.to_string(),
                field("body", "is required"),
            ),
            Self::UnsupportedMediaType(found) => {
                let got = found.as_deref().unwrap_or("no Content-Type");
                let detail = format!("the body must be application/json, got {got}");
                ("about:blank", "Unsupported Media Type", detail.clone(), field("Content-Type", detail))
            }
            Self::PayloadTooLarge { limit } => {
                let detail = format!("the body must be at most {limit} bytes");
                ("about:blank", "Payload Too Large", detail.clone(), field("body", detail))
            }
            Self::RouteNotFound => ("about:blank", "Not Found", "no resource at this path".to_owned(), Vec::new()),
            Self::BookNotFound => {
                ("about:blank", "Not Found", "no book with this id".to_owned(), field("id", "no such book"))
            }
            Self::MethodNotAllowed { allow } => {
                ("about:blank", "Method Not Allowed", format!("this resource allows {allow}"), Vec::new())
            }
            Self::PreconditionRequired => (
                "about:blank",
                "Precondition Required",
                "send If-Match with the book's ETag (or *) to change or delete it".to_owned(),
                field("If-Match", "is required"),
            ),
            Self::PreconditionFailed { current } => (
                "urn:books:problem:version-mismatch",
                "Precondition Failed",
                format!("the book is at version {current}; re-read it and retry"),
                field("If-Match", format!("does not match the current ETag \"{current}\"")),
            ),
            Self::DuplicateIsbn => (
                "urn:books:problem:duplicate-isbn",
                "Conflict",
                self.to_string(),
                field("isbn", "is already used by another book"),
            ),
            Self::IdempotencyKeyReused => (
                "urn:books:problem:idempotency-key-reused",
                "Unprocessable Content",
                "this Idempotency-Key was first used with a different body".to_owned(),
                field("Idempotency-Key", "was used with a different body"),
            ),
            Self::Internal => (
                "about:blank",
                "Internal Server Error",
                "the request could not be completed; retry later".to_owned(),
                Vec::new(),
            ),
        }
    }

    /// Renders the problem document. `instance` is the request path.
    pub(crate) fn into_response(self, request_id: &str, instance: &str) -> Response<Body> {
        let status = self.status();
        let (kind, title, detail, errors) = self.describe();
        let problem = Problem { kind, title, status: status.as_u16(), detail, instance, request_id, errors };
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| String::from("{}"));
        let mut response = Response::new(Body::Text(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", id);
        }
        if let Self::MethodNotAllowed { allow } = &self {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Self::PreconditionFailed { current } = &self {
            if let Ok(etag) = HeaderValue::from_str(&super::etag(*current)) {
                headers.insert(header::ETAG, etag);
            }
        }
        response
    }
}
