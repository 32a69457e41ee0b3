//! The Telemetry API side: the listener Lambda delivers to, and the reading of each delivery,
//! once, at the edge, into the records of the shared schema (`telemetry_schema`).

pub(crate) mod listener;

use serde_json::Value;
use telemetry_schema::{parse_delivery, Event, NotADelivery, Record, RecordTime, SchemaVersion};

/// The schema we subscribe with: function lines that are JSON objects come as objects.
pub(crate) const SCHEMA_VERSION: SchemaVersion = SchemaVersion::V2022_12_13;

/// The records of a delivery; a body that is not one is kept as one unknown record (shipped as
/// it came), never an error: the platform would only retry it.
pub(crate) fn read_delivery(body: &[u8]) -> Vec<Record> {
    match parse_delivery(body) {
        Ok(records) => records,
        Err(NotADelivery::Json(value)) => vec![Record { time: RecordTime::default(), event: Event::Unknown(value) }],
        Err(NotADelivery::Text(text)) => {
            vec![Record { time: RecordTime::default(), event: Event::Unknown(Value::String(text)) }]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_a_delivery_is_one_unknown_record() {
        let records = read_delivery(b"{not json");
        assert_eq!(
            records,
            [Record { time: RecordTime::default(), event: Event::Unknown(Value::String("{not json".into())) }]
        );
        assert_eq!(records[0].time_ms(), None);
    }
}
