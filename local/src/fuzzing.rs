//! Entry points of the fuzz targets (`fuzz/`) and of the replay of their corpora (`cargo test`):
//! each takes arbitrary bytes, runs one parser of the emulated API Gateway and panics when a
//! property of API Gateway's documented behaviour breaks. Not part of books-local's API.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::gateway::proxy::{self, MalformedResponse};
use crate::gateway::{route, Resource};

/// Splits an input into a first line and the rest.
fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

fn resources() -> Vec<Resource> {
    ["/", "/books", "/books/{id}", "/books/search", "/{proxy+}", "/files/{path+}"]
        .into_iter()
        .map(|path| Resource { id: path.to_owned(), path: path.to_owned(), methods: BTreeMap::new() })
        .collect()
}

/// Request paths against a resource tree: the resource chosen does not depend on the order the
/// resources are listed in, and its template with the path parameters put back is the path.
pub fn gateway_route(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    let mut resources = resources();
    let chosen = route(&resources, &path).map(|r| (r.resource.path.clone(), r.path_parameters));
    resources.reverse();
    let reversed = route(&resources, &path).map(|r| (r.resource.path.clone(), r.path_parameters));
    assert_eq!(chosen, reversed, "the route depends on the order of the resources");
    let Some((template, parameters)) = chosen else { return };
    let rebuilt: Vec<&str> = template
        .split('/')
        .map(|part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => parameters.get(name.trim_end_matches('+')).map(String::as_str).unwrap_or("{missing}"),
            None => part,
        })
        .collect();
    for (name, value) in &parameters {
        assert!(!value.is_empty(), "{name} matched an empty segment of {path:?}");
    }
    let segments = |p: &str| p.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(segments(&rebuilt.join("/")), segments(&path), "{template} with {parameters:?} is not {path:?}");
}

/// The query string of the proxy event: the single-value map holds each name's last value, the
/// multi-value map all of them in order. The pairs are read by the same `form_urlencoded` crate
/// the gateway uses (it replaced a decoder of ours this target caught), so what is checked here
/// is how the two maps are built from them.
pub fn gateway_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let (single, multi) = proxy::query_maps(Some(&query));
    let mut expected_single = serde_json::Map::new();
    let mut expected_multi: serde_json::Map<String, Value> = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        expected_single.insert(name.to_string(), Value::String(value.to_string()));
        match expected_multi.entry(name.to_string()).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(values) => values.push(Value::String(value.into_owned())),
            _ => unreachable!("only arrays are inserted"),
        }
    }
    if expected_single.is_empty() {
        assert_eq!((single, multi), (Value::Null, Value::Null), "an empty query string is null");
    } else {
        assert_eq!(single, Value::Object(expected_single), "queryStringParameters of {query:?}");
        assert_eq!(multi, Value::Object(expected_multi), "multiValueQueryStringParameters of {query:?}");
    }
}

/// A function's answer, as the integration reads it: the first line is the request's `Accept`,
/// the rest the payload. An answer is refused (API Gateway's 502) or becomes a response with a
/// content type; a text body passes through unchanged.
pub fn gateway_response(data: &[u8]) {
    let (accept, payload) = first_line(data);
    let accept = std::str::from_utf8(accept).ok();
    let binary = ["image/png".to_owned(), "application/octet-stream".to_owned()];
    match proxy::response(payload, &binary, accept) {
        Ok(response) => {
            assert!(response.headers.contains_key(http::header::CONTENT_TYPE), "a response without a content type");
            let object: Value = serde_json::from_slice(payload).expect("an accepted payload is JSON");
            let base64 = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
            if let (Some(text), false) = (object.get("body").and_then(Value::as_str), base64) {
                assert_eq!(&response.body[..], text.as_bytes(), "a text body changed on its way");
            }
        }
        Err(MalformedResponse::NotAnObject) => {
            assert!(!serde_json::from_slice::<Value>(payload).is_ok_and(|v| v.is_object()), "an object was refused");
        }
        Err(_) => {}
    }
}
