//! Enrichment: a log line made into the structured event a reader can place — JSON stays JSON,
//! text becomes `{"message"}` — with the invocation it belongs to, whether it was a cold start
//! and the function, unless the line says so itself.

use serde_json::{Map, Value};
use telemetry_schema::LogLine;

/// The invocation records belong to, from the platform events of the same stream.
#[derive(Debug, Default)]
pub(crate) struct Invocation {
    pub(crate) request_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    /// True until the first invocation of this environment has been reported.
    pub(crate) cold: bool,
}

/// The function every line comes from.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) version: String,
}

/// A line as an object: a JSON object stays one (delivered as an object, or as text that is
/// one: Lambda's text log format delivers JSON lines as strings), other text becomes
/// `{"message": text}` without its line end. Blank lines are nothing.
pub(crate) fn structure(line: LogLine) -> Option<Map<String, Value>> {
    match line {
        LogLine::Object(object) => Some(object),
        LogLine::Text(text) => {
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                return None;
            }
            if text.trim_start().starts_with('{') {
                if let Ok(Value::Object(object)) = serde_json::from_str(text) {
                    return Some(object);
                }
            }
            Some(Map::from_iter([("message".to_owned(), Value::String(text.to_owned()))]))
        }
    }
}

/// Adds what a reader needs to place a line, unless the line already says it.
pub(crate) fn enrich(object: &mut Map<String, Value>, invocation: &Invocation, function: &Function) {
    let has = |object: &Map<String, Value>, keys: &[&str]| keys.iter().any(|k| object.contains_key(*k));
    if !has(object, &["request_id", "requestId", "AWSRequestId", "aws_request_id"]) {
        if let Some(id) = &invocation.request_id {
            object.insert("request_id".into(), Value::String(id.clone()));
        }
    }
    if !has(object, &["cold_start", "coldStart"]) {
        object.insert("cold_start".into(), Value::Bool(invocation.cold));
    }
    if !has(object, &["function_name", "functionName"]) {
        object.insert("function_name".into(), Value::String(function.name.clone()));
    }
    if !has(object, &["function_version", "functionVersion"]) {
        object.insert("function_version".into(), Value::String(function.version.clone()));
    }
    if !has(object, &["trace_id", "traceId", "xray_trace_id"]) {
        if let Some(trace) = &invocation.trace_id {
            object.insert("trace_id".into(), Value::String(trace.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_become_objects() {
        let text = |t: &str| structure(LogLine::Text(t.into())).map(Value::Object);
        assert_eq!(text("plain text\n"), Some(json!({"message": "plain text"})));
        assert_eq!(text(r#"{"level":"INFO"}"#), Some(json!({"level": "INFO"})));
        assert_eq!(text("{not json"), Some(json!({"message": "{not json"})));
        assert_eq!(text(" \n"), None);
        let object = json!({"message": "m"}).as_object().cloned().unwrap();
        assert_eq!(structure(LogLine::Object(object.clone())), Some(object));
    }

    #[test]
    fn enrichment_never_overrides_a_line_s_own_fields() {
        let invocation = Invocation { request_id: Some("r1".into()), trace_id: Some("Root=1-a".into()), cold: true };
        let function = Function { name: "f".into(), version: "$LATEST".into() };
        let mut plain = Map::new();
        enrich(&mut plain, &invocation, &function);
        assert_eq!(
            Value::Object(plain),
            json!({"request_id": "r1", "cold_start": true, "function_name": "f", "function_version": "$LATEST",
                   "trace_id": "Root=1-a"})
        );
        let mut own = json!({"requestId": "mine", "coldStart": false}).as_object().cloned().unwrap();
        enrich(&mut own, &invocation, &function);
        assert_eq!(own["requestId"], "mine");
        assert_eq!(own["coldStart"], false);
        assert!(!own.contains_key("request_id") && !own.contains_key("cold_start"));
    }
}
