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

/// The fields enrichment adds, each under its first name, unless the line has one of them.
const REQUEST_ID: &[&str] = &["request_id", "requestId", "AWSRequestId", "aws_request_id"];
const COLD_START: &[&str] = &["cold_start", "coldStart"];
const FUNCTION_NAME: &[&str] = &["function_name", "functionName"];
const FUNCTION_VERSION: &[&str] = &["function_version", "functionVersion"];
const TRACE_ID: &[&str] = &["trace_id", "traceId", "xray_trace_id"];

/// What a line lacks of what a reader needs to place it, given `has` (whether the line has a
/// field of one of these names).
fn additions(
    has: impl Fn(&[&str]) -> bool,
    invocation: &Invocation,
    function: &Function,
) -> Vec<(&'static str, Value)> {
    let mut added = Vec::new();
    if !has(REQUEST_ID) {
        if let Some(id) = &invocation.request_id {
            added.push((REQUEST_ID[0], Value::String(id.clone())));
        }
    }
    if !has(COLD_START) {
        added.push((COLD_START[0], Value::Bool(invocation.cold)));
    }
    if !has(FUNCTION_NAME) {
        added.push((FUNCTION_NAME[0], Value::String(function.name.clone())));
    }
    if !has(FUNCTION_VERSION) {
        added.push((FUNCTION_VERSION[0], Value::String(function.version.clone())));
    }
    if !has(TRACE_ID) {
        if let Some(trace) = &invocation.trace_id {
            added.push((TRACE_ID[0], Value::String(trace.clone())));
        }
    }
    added
}

/// Adds what a reader needs to place a line, unless the line already says it.
pub(crate) fn enrich(object: &mut Map<String, Value>, invocation: &Invocation, function: &Function) {
    let added = additions(|keys| keys.iter().any(|k| object.contains_key(*k)), invocation, function);
    for (key, value) in added {
        object.insert(key.to_owned(), value);
    }
}

/// A line of text that is a JSON object, enriched without being rebuilt: what it lacks goes in
/// before its closing brace (with `source`, when given and missing), and the rest stays as the
/// function wrote it — its key order, its numbers' digits. Reading only its keys, and copying
/// it once, costs a fraction of parsing it into a map and writing that out again, and most of
/// what the extension ships are such lines. `None` for any other text, and for an EMF document
/// (`_aws`), which the pipeline reads whole.
pub(crate) fn enrich_text(
    text: &str,
    source: Option<&str>,
    invocation: &Invocation,
    function: &Function,
) -> Option<String> {
    let text = text.trim_end_matches(['\n', '\r']).trim();
    if !text.starts_with('{') {
        return None;
    }
    let keys: Keys = serde_json::from_str(text).ok()?;
    let has = |names: &[&str]| names.iter().any(|name| keys.has(name));
    if has(&["_aws"]) {
        return None;
    }
    let mut added = Vec::new();
    if let Some(source) = source.filter(|_| !has(&["source"])) {
        added.push(("source", Value::String(source.to_owned())));
    }
    added.extend(additions(has, invocation, function));
    // A valid object ends with its closing brace (trailing white space trimmed above).
    let body = text.strip_suffix('}')?;
    let mut line = String::with_capacity(text.len() + 160);
    line.push_str(body);
    for (index, (key, value)) in added.iter().enumerate() {
        if index > 0 || keys.count > 0 {
            line.push(',');
        }
        line.push('"');
        line.push_str(key);
        line.push_str("\":");
        line.push_str(&value.to_string());
    }
    line.push('}');
    Some(line)
}

/// The names [`enrich_text`] looks for among a line's keys.
const KNOWN: [&str; 15] = [
    "request_id",
    "requestId",
    "AWSRequestId",
    "aws_request_id",
    "cold_start",
    "coldStart",
    "function_name",
    "functionName",
    "function_version",
    "functionVersion",
    "trace_id",
    "traceId",
    "xray_trace_id",
    "_aws",
    "source",
];

/// Which of [`KNOWN`] a JSON object has among its top-level keys, and how many keys it has;
/// read without keeping a key or a value.
struct Keys {
    known: u32,
    count: usize,
}

impl Keys {
    fn has(&self, name: &str) -> bool {
        KNOWN.iter().position(|known| *known == name).is_some_and(|index| self.known & (1 << index) != 0)
    }
}

/// One key: its index in [`KNOWN`], if it is there.
struct Key(Option<usize>);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Key;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(Key(KNOWN.iter().position(|known| *known == key)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Keys;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Keys { known: 0, count: 0 };
                while let Some(Key(index)) = map.next_key::<Key>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.count += 1;
                    if let Some(index) = index {
                        keys.known |= 1 << index;
                    }
                }
                Ok(keys)
            }
        }
        deserializer.deserialize_map(Visitor)
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

    fn placed() -> (Invocation, Function) {
        let invocation = Invocation { request_id: Some("r1".into()), trace_id: Some("Root=1-a".into()), cold: true };
        (invocation, Function { name: "f".into(), version: "$LATEST".into() })
    }

    #[test]
    fn a_json_line_keeps_its_text_and_gets_what_it_lacks_at_its_end() {
        let (invocation, function) = placed();
        let line = "{\"level\":\"INFO\",\"duration_ms\":3.10,\"big\":12345678901234567890,\"message\":\"m\"}\n";
        assert_eq!(
            enrich_text(line, None, &invocation, &function).unwrap(),
            "{\"level\":\"INFO\",\"duration_ms\":3.10,\"big\":12345678901234567890,\"message\":\"m\",\"request_id\":\"r1\",\
             \"cold_start\":true,\"function_name\":\"f\",\"function_version\":\"$LATEST\",\"trace_id\":\"Root=1-a\"}"
        );
    }

    /// The fast path and the map it replaces say the same, as JSON, for every kind of line.
    #[test]
    fn enriching_the_text_or_the_map_gives_the_same_object() {
        let (invocation, function) = placed();
        let lines = [
            r#"{}"#,
            " { \"a\" : 1 , \"nested\": {\"request_id\": \"inner\"} }\r\n",
            r#"{"requestId":"mine","coldStart":false,"functionName":"g","functionVersion":"7","traceId":"t"}"#,
            r#"{"req\u0075est_id":"escaped","message":"quote \" and \\ and \u00e9"}"#,
            r#"{"source":"own","list":[1,{"x":null}],"text":"}"}"#,
        ];
        for source in [None, Some("extension")] {
            for line in lines {
                let fast: Value =
                    serde_json::from_str(&enrich_text(line, source, &invocation, &function).unwrap()).unwrap();
                let Some(mut object) = structure(LogLine::Text(line.into())) else { panic!("{line}") };
                if let Some(source) = source {
                    object.entry("source").or_insert_with(|| Value::String(source.to_owned()));
                }
                enrich(&mut object, &invocation, &function);
                assert_eq!(fast, Value::Object(object), "{line} from {source:?}");
            }
        }
    }

    #[test]
    fn other_text_and_emf_documents_take_the_long_way() {
        let (invocation, function) = placed();
        for line in
            ["plain text", "[1,2]", "{not json", r#"{"a":1} trailing"#, r#"{"_aws":{"CloudWatchMetrics":[]}}"#, " "]
        {
            assert_eq!(enrich_text(line, None, &invocation, &function), None, "{line}");
        }
    }
}
