//! The Runtime API (2018-06-01) the runtime process polls: `invocation/next` (long poll),
//! `invocation/{id}/response`, `invocation/{id}/error` and `init/error`.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use hyper::Response;

use super::sandbox::{RuntimeAnswer, Sandbox};
use crate::http_util::{self, Body};

/// Largest synchronous response Lambda accepts.
pub(super) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

pub(super) async fn next(sandbox: Arc<Sandbox>) -> Response<Body> {
    sandbox.update(|s| s.runtime_waiting = true);
    let invocation = sandbox.wait_for(|s| s.pending.take()).await;
    let mut response = http_util::response(StatusCode::OK, invocation.payload.clone());
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    // Lambda always sends the payload's type; AWS's C++ runtime client (under awslambdaric and
    // the other runtime interface clients) dereferences it unchecked and crashes without it.
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set("lambda-runtime-deadline-ms", &invocation.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &invocation.invoked_arn);
    set("lambda-runtime-trace-id", &invocation.trace_id);
    // The Invoke API takes the client context base64-encoded; the runtime gets its JSON (the
    // runtime clients parse the header as JSON).
    if let Some(context) = invocation.client_context.as_deref().and_then(decode_client_context) {
        set("lambda-runtime-client-context", &context);
    }
    if let Some(identity) = &invocation.cognito_identity {
        set("lambda-runtime-cognito-identity", identity);
    }
    response
}

/// The JSON of a base64-encoded client context; `None` when it is not base64 of UTF-8.
fn decode_client_context(encoded: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

pub(super) fn respond(
    sandbox: &Sandbox,
    request_id: &str,
    answer: RuntimeAnswer,
    size: usize,
    timing: (std::time::Instant, std::time::Instant),
) -> Response<Body> {
    if size > MAX_RESPONSE_BYTES {
        return http_util::lambda_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!("response of {size} bytes exceeds {MAX_RESPONSE_BYTES}"),
        );
    }
    let accepted = sandbox.update(|s| {
        if s.current.as_deref() == Some(request_id) && s.answer.is_none() {
            s.answer = Some(answer);
            s.answer_timing = Some(timing);
            true
        } else {
            false
        }
    });
    if accepted {
        http_util::json(StatusCode::ACCEPTED, &serde_json::json!({"status": "OK"}))
    } else {
        http_util::lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no open invocation {request_id}"),
        )
    }
}

pub(super) fn error_answer(error_type: Option<&str>, body: Bytes) -> RuntimeAnswer {
    RuntimeAnswer::Error { error_type: error_type.unwrap_or("Unhandled").to_owned(), body }
}

pub(super) fn init_error(sandbox: &Sandbox, error_type: Option<&str>, body: &[u8]) -> Response<Body> {
    let message = format!("{}: {}", error_type.unwrap_or("Runtime.Unknown"), String::from_utf8_lossy(body));
    sandbox.update(|s| s.init_error = Some(message));
    http_util::json(StatusCode::ACCEPTED, &serde_json::json!({"status": "OK"}))
}
