//! Telemetry records as Lambda delivers them (`{"time", "type", "record"}`), parsed leniently:
//! a record of a type we do not know, or one that is not even an object, is kept as raw JSON
//! rather than failing the batch it came in.

use serde_json::Value;

/// One record of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub time_ms: i64,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A line the function wrote: a string, or an object when the function logs JSON.
    Function(Value),
    /// A line an extension wrote.
    Extension(Value),
    /// A `platform.*` event: its type and its `record` object.
    Platform { event: String, record: Value },
    /// Anything else, exactly as delivered.
    Unknown(Value),
}

/// Parses one delivery (a JSON array of records). A body that is not an array is one unknown
/// record holding the body as text.
pub fn parse_delivery(body: &[u8], now_ms: i64) -> Vec<Record> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.into_iter().map(|item| parse_record(item, now_ms)).collect(),
        Ok(other) => vec![Record { time_ms: now_ms, kind: Kind::Unknown(other) }],
        Err(_) => vec![Record {
            time_ms: now_ms,
            kind: Kind::Unknown(Value::String(String::from_utf8_lossy(body).into_owned())),
        }],
    }
}

fn parse_record(mut item: Value, now_ms: i64) -> Record {
    let time_ms = item.get("time").and_then(Value::as_str).and_then(parse_time).unwrap_or(now_ms);
    let kind = match (item.get("type").and_then(Value::as_str), item.get("record")) {
        (Some("function"), Some(_)) => Kind::Function(item["record"].take()),
        (Some("extension"), Some(_)) => Kind::Extension(item["record"].take()),
        (Some(event), Some(_)) if event.starts_with("platform.") => {
            Kind::Platform { event: event.to_owned(), record: item["record"].take() }
        }
        _ => Kind::Unknown(item),
    };
    Record { time_ms, kind }
}

fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn every_record_type_is_recognised() {
        let body = json!([
            {"time": "2022-10-12T00:00:00.000Z", "type": "platform.start", "record": {"requestId": "r"}},
            {"time": "2022-10-12T00:00:00.001Z", "type": "function", "record": "hello\n"},
            {"time": "2022-10-12T00:00:00.002Z", "type": "function", "record": {"message": "hi"}},
            {"time": "2022-10-12T00:00:00.003Z", "type": "extension", "record": "ext"},
        ]);
        let records = parse_delivery(body.to_string().as_bytes(), 0);
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].time_ms, 1_665_532_800_000);
        assert_eq!(
            records[0].kind,
            Kind::Platform { event: "platform.start".into(), record: json!({"requestId": "r"}) }
        );
        assert_eq!(records[1].kind, Kind::Function(json!("hello\n")));
        assert_eq!(records[2].kind, Kind::Function(json!({"message": "hi"})));
        assert_eq!(records[3].kind, Kind::Extension(json!("ext")));
    }

    #[test]
    fn unknown_records_are_kept_raw_and_do_not_spoil_the_batch() {
        let body = json!([
            {"time": "2022-10-12T00:00:00.000Z", "type": "platform.restoreStart", "record": {}},
            {"time": "not a time", "type": "telemetry.future", "record": {"x": 1}},
            42,
            {"type": "function", "record": "still here"},
        ]);
        let records = parse_delivery(body.to_string().as_bytes(), 99);
        assert_eq!(records.len(), 4);
        assert!(matches!(&records[0].kind, Kind::Platform { event, .. } if event == "platform.restoreStart"));
        assert_eq!(
            records[1].kind,
            Kind::Unknown(json!({"time": "not a time", "type": "telemetry.future", "record": {"x": 1}}))
        );
        assert_eq!(records[1].time_ms, 99);
        assert_eq!(records[2].kind, Kind::Unknown(json!(42)));
        assert_eq!(records[3].kind, Kind::Function(json!("still here")));
    }

    #[test]
    fn a_body_that_is_not_an_array_is_one_raw_record() {
        let records = parse_delivery(b"{not json", 5);
        assert_eq!(records, vec![Record { time_ms: 5, kind: Kind::Unknown(json!("{not json")) }]);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_delivery(&body, 0);
        }

        #[test]
        fn one_record_per_array_item(lines in proptest::collection::vec(".*", 0..50)) {
            let body = Value::Array(lines.iter().map(|l| json!({"time": "2024-01-01T00:00:00Z", "type": "function", "record": l})).collect());
            let records = parse_delivery(body.to_string().as_bytes(), 0);
            prop_assert_eq!(records.len(), lines.len());
            for (record, line) in records.iter().zip(&lines) {
                prop_assert_eq!(&record.kind, &Kind::Function(json!(line)));
            }
        }
    }
}
