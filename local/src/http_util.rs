//! Small helpers shared by the emulated APIs: reading bodies, building JSON responses, and a
//! plain HTTP/1 client for talking to processes on loopback.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub(crate) type Body = Full<Bytes>;
pub(crate) type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Body>;

pub(crate) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) async fn read_body(req: Request<hyper::body::Incoming>) -> (http::request::Parts, Bytes) {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    (parts, bytes)
}

pub(crate) fn response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = response(status, value.to_string());
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// The error body shape the Lambda APIs answer with.
pub(crate) fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "errorType": error_type, "errorMessage": message }))
}

pub(crate) fn header<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A random UUID (v4 layout), as AWS uses for request ids.
pub(crate) fn uuid() -> String {
    let bytes = ulid::Ulid::new().0.to_be_bytes();
    let mut b = bytes;
    // Mix the time part with the random part so ids from one millisecond differ everywhere.
    for i in 0..6 {
        b[i] ^= b[15 - i];
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}
