//! The Lambda proxy integration, payload format 1.0: an HTTP request becomes the event a function
//! receives, and the function's `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`
//! becomes the HTTP response.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::config::{ApiKey, GatewayConfig};
use super::routing::Route;

/// What API Gateway knows about a request when it calls the integration.
pub(crate) struct RequestContext<'a> {
    /// API Gateway's request id (`x-amzn-RequestId`).
    pub(crate) request_id: &'a str,
    /// Its extended request id (`x-amz-apigw-id`).
    pub(crate) extended_request_id: &'a str,
    /// When the request arrived.
    pub(crate) received: DateTime<Utc>,
    /// The client's address.
    pub(crate) source_ip: &'a str,
    /// Set only once the key has been validated.
    pub(crate) api_key: Option<&'a ApiKey>,
}

/// A request as the integration sees it.
pub(crate) struct IncomingRequest<'a> {
    /// The HTTP method.
    pub(crate) method: &'a str,
    /// The full request path, stage included (`/v1/books`).
    pub(crate) path: &'a str,
    /// The raw query string, if any.
    pub(crate) query: Option<&'a str>,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The request body.
    pub(crate) body: &'a [u8],
}

/// Whether `content_type` is one of the API's binary media types (`*/*`, `image/*`, exact).
pub(crate) fn is_binary(binary_media_types: &[String], content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else { return false };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (kind, _) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    binary_media_types.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        pattern == "*/*" || pattern == essence || pattern.strip_suffix("/*").is_some_and(|p| p == kind)
    })
}

/// The proxy event (payload 1.0) for a routed request.
pub(crate) fn event(
    config: &GatewayConfig,
    request: &IncomingRequest<'_>,
    route: &Route<'_>,
    context: &RequestContext,
) -> Value {
    let (headers, multi_value_headers) = header_maps(request.headers);
    let (query, multi_value_query) = query_maps(request.query);
    let content_type = request.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let (body, is_base64_encoded) = match std::str::from_utf8(request.body) {
        _ if request.body.is_empty() => (Value::Null, false),
        Ok(text) if !is_binary(&config.binary_media_types, content_type) => (Value::String(text.to_owned()), false),
        // Bytes that are not UTF-8 cannot travel as a JSON string: API Gateway would mangle them,
        // here they go base64-encoded as if their type were binary.
        _ => (Value::String(BASE64.encode(request.body)), true),
    };
    let below_stage = request.path.strip_prefix(&format!("/{}", config.stage)).filter(|p| !p.is_empty()).unwrap_or("/");
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let nullable_map = |map: &BTreeMap<String, String>| {
        if map.is_empty() {
            Value::Null
        } else {
            json!(map)
        }
    };
    json!({
        "resource": route.resource.path,
        "path": below_stage,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_value_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_value_query,
        "pathParameters": nullable_map(&route.path_parameters),
        "stageVariables": nullable_map(&config.stage_variables),
        "requestContext": {
            "accountId": config.account_id,
            "apiId": config.rest_api_id,
            "resourceId": route.resource.id,
            "resourcePath": route.resource.path,
            "httpMethod": request.method,
            "path": request.path,
            "stage": config.stage,
            "deploymentId": config.deployment_id,
            "requestId": context.request_id,
            "extendedRequestId": context.extended_request_id,
            "requestTime": context.received.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "requestTimeEpoch": context.received.timestamp_millis(),
            "protocol": "HTTP/1.1",
            "domainName": header("host").unwrap_or("127.0.0.1"),
            "domainPrefix": header("host").and_then(|h| h.split('.').next()).unwrap_or("127"),
            "identity": {
                "sourceIp": context.source_ip,
                "userAgent": header("user-agent"),
                "apiKey": context.api_key.map(|k| k.value.as_str()),
                "apiKeyId": context.api_key.map(|k| k.id.as_str()),
                "accessKey": null,
                "accountId": null,
                "caller": null,
                "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null,
                "cognitoIdentityId": null,
                "cognitoIdentityPoolId": null,
                "principalOrgId": null,
                "user": null,
                "userArn": null,
            },
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    })
}

fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        single.insert(name.as_str().to_owned(), Value::String(value.clone()));
        push(&mut multi, name.as_str(), value);
    }
    nullable_pair(single, multi)
}

/// The query string as API Gateway hands it to the function: each name's last value, and all of
/// them in order, `%XX` and `+` decoded (`application/x-www-form-urlencoded`, read by rust-url's
/// `form_urlencoded`; a hand-written decoder here once read `%+5` as byte 5, found by fuzzing).
pub(crate) fn query_maps(query: Option<&str>) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        single.insert(name.to_string(), Value::String(value.to_string()));
        push(&mut multi, &name, value.into_owned());
    }
    nullable_pair(single, multi)
}

fn push(multi: &mut Map<String, Value>, name: &str, value: String) {
    match multi.get_mut(name) {
        Some(Value::Array(values)) => values.push(Value::String(value)),
        _ => {
            multi.insert(name.to_owned(), json!([value]));
        }
    }
}

/// API Gateway sends `null`, not `{}`, when there is nothing.
fn nullable_pair(single: Map<String, Value>, multi: Map<String, Value>) -> (Value, Value) {
    if single.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (Value::Object(single), Value::Object(multi))
    }
}

/// Why a function's answer is not a proxy response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MalformedResponse {
    /// The payload is not a JSON object.
    #[error("the payload is not a JSON object")]
    NotAnObject,
    /// `statusCode` is missing or not a status.
    #[error("statusCode is missing or not an HTTP status")]
    StatusCode,
    /// A header name or value HTTP does not allow.
    #[error("header {0:?} is not a valid header")]
    Header(String),
    /// `body` is neither a string nor null.
    #[error("body is neither a string nor null")]
    Body,
    /// `isBase64Encoded` with a body that is not base64.
    #[error("isBase64Encoded is set but body is not base64")]
    Base64,
}

/// An HTTP response mapped back from a proxy response.
#[derive(Debug)]
pub(crate) struct ProxyResponse {
    /// The status.
    pub(crate) status: StatusCode,
    /// Headers and multi-value headers, merged.
    pub(crate) headers: HeaderMap,
    /// The body, decoded if it was base64.
    pub(crate) body: Bytes,
}

/// Maps the function's payload back to HTTP. Bodies marked `isBase64Encoded` are decoded only
/// when the response's `Content-Type` or the request's `Accept` is a binary media type —
/// otherwise API Gateway passes the base64 text through, and so does this.
pub(crate) fn response(
    payload: &[u8],
    binary_media_types: &[String],
    accept: Option<&str>,
) -> Result<ProxyResponse, MalformedResponse> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| MalformedResponse::NotAnObject)?;
    let object = value.as_object().ok_or(MalformedResponse::NotAnObject)?;
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(MalformedResponse::StatusCode)?;

    let mut headers = HeaderMap::new();
    let header_name =
        |name: &str| HeaderName::from_bytes(name.as_bytes()).map_err(|_| MalformedResponse::Header(name.to_owned()));
    let header_value = |name: &str, value: &Value| -> Result<Option<HeaderValue>, MalformedResponse> {
        let text = match value {
            Value::Null => return Ok(None),
            Value::String(text) => text.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            _ => return Err(MalformedResponse::Header(name.to_owned())),
        };
        HeaderValue::from_str(&text).map(Some).map_err(|_| MalformedResponse::Header(name.to_owned()))
    };
    // multiValueHeaders win over headers for the same name, as API Gateway merges them.
    if let Some(multi) = object.get("multiValueHeaders").filter(|v| !v.is_null()) {
        let multi = multi.as_object().ok_or_else(|| MalformedResponse::Header("multiValueHeaders".into()))?;
        for (name, values) in multi {
            let header = header_name(name)?;
            let values = values.as_array().ok_or_else(|| MalformedResponse::Header(name.clone()))?;
            for value in values {
                if let Some(value) = header_value(name, value)? {
                    headers.append(header.clone(), value);
                }
            }
        }
    }
    if let Some(single) = object.get("headers").filter(|v| !v.is_null()) {
        let single = single.as_object().ok_or_else(|| MalformedResponse::Header("headers".into()))?;
        for (name, value) in single {
            let header = header_name(name)?;
            if headers.contains_key(&header) {
                continue;
            }
            if let Some(value) = header_value(name, value)? {
                headers.insert(header, value);
            }
        }
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }

    let base64 = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) => {
            let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let binary = is_binary(binary_media_types, content_type) || is_binary(binary_media_types, accept);
            if base64 && binary {
                Bytes::from(BASE64.decode(text).map_err(|_| MalformedResponse::Base64)?)
            } else {
                Bytes::from(text.clone())
            }
        }
        Some(_) => return Err(MalformedResponse::Body),
    };
    Ok(ProxyResponse { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_merge_headers_and_decode_binary_bodies() {
        let binary = vec!["application/octet-stream".to_owned()];
        let payload = json!({
            "statusCode": 201,
            "headers": {"etag": "\"1\"", "x-both": "single", "content-type": "application/octet-stream"},
            "multiValueHeaders": {"x-both": ["a", "b"], "set-cookie": ["c=1", "d=2"]},
            "body": BASE64.encode([0u8, 159, 146, 150]),
            "isBase64Encoded": true,
        });
        let response = response(payload.to_string().as_bytes(), &binary, None).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.headers["etag"], "\"1\"");
        assert_eq!(response.headers.get_all("x-both").iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(response.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(&response.body[..], &[0u8, 159, 146, 150]);
    }

    #[test]
    fn base64_bodies_of_text_types_pass_through_as_text() {
        let payload = json!({"statusCode": 200, "body": "aGk=", "isBase64Encoded": true});
        let response = response(payload.to_string().as_bytes(), &[], None).unwrap();
        assert_eq!(&response.body[..], b"aGk=");
        assert_eq!(response.headers["content-type"], "application/json");
    }

    #[test]
    fn malformed_responses_are_refused() {
        for bad in [
            json!({"body": "x"}),
            json!({"statusCode": "200"}),
            json!({"statusCode": 99}),
            json!("text"),
            json!({"statusCode": 200, "body": {"a": 1}}),
            json!({"statusCode": 200, "headers": {"bad header": "x"}}),
            json!({"statusCode": 200, "headers": {"x": {"nested": true}}}),
        ] {
            assert!(response(bad.to_string().as_bytes(), &[], None).is_err(), "{bad}");
        }
        assert!(response(b"not json", &[], None).is_err());
    }

    #[test]
    fn query_strings_keep_repeated_values_and_decode() {
        let (single, multi) = query_maps(Some("tag=a&tag=b%20c&q=x+y&limit=5&flag"));
        assert_eq!(single["tag"], "b c");
        assert_eq!(multi["tag"], json!(["a", "b c"]));
        assert_eq!(single["q"], "x y");
        assert_eq!(single["flag"], "");
        assert_eq!(query_maps(None), (Value::Null, Value::Null));
    }

    #[test]
    fn binary_media_types_match_exactly_or_by_wildcard() {
        let types = vec!["image/*".to_owned(), "application/octet-stream".to_owned()];
        assert!(is_binary(&types, Some("image/png")));
        assert!(is_binary(&types, Some("application/octet-stream; charset=x")));
        assert!(!is_binary(&types, Some("application/json")));
        assert!(is_binary(&["*/*".to_owned()], Some("text/plain")));
        assert!(!is_binary(&types, None));
    }
}
