//! Entry points of the fuzz targets (`fuzz/`) and of the replay of their corpora (`cargo test`):
//! each takes arbitrary bytes, runs one reader of the telemetry contract and panics when a
//! property of the contract breaks. Not part of the API the extension and the emulator use.

use serde_json::Value;

use crate::emf::{self, Document};
use crate::subscription::{SubscribeRequest, MAX_BYTES, MAX_ITEMS, TIMEOUT_MS};
use crate::{parse_delivery, NotADelivery, Record};

/// A Telemetry API delivery, as the extension's listener receives it: a JSON array is read as one
/// record per item, whatever the items are, and each record writes back to a JSON value that
/// reads as the same record (what the extension ships is what the platform sent).
pub fn telemetry_delivery(data: &[u8]) {
    match parse_delivery(data) {
        Ok(records) => {
            let items = serde_json::from_slice::<Value>(data).ok().and_then(|v| v.as_array().map(Vec::len));
            assert_eq!(Some(records.len()), items, "one record per item");
            for record in records {
                let written = serde_json::to_value(&record).expect("a record serialises");
                let again = serde_json::to_value(Record::from_value(written.clone())).expect("a record serialises");
                assert_eq!(written, again, "a record read back from its JSON is the same record");
            }
        }
        Err(NotADelivery::Json(value)) => assert!(!value.is_array(), "an array was refused"),
        Err(NotADelivery::Text(_)) => assert!(serde_json::from_slice::<Value>(data).is_err(), "JSON was read as text"),
    }
}

/// `PUT /2022-07-01/telemetry` bodies: an accepted subscription has buffering within the limits
/// the Telemetry API documents, and writes back to a body accepted with the same buffering.
pub fn telemetry_subscription(data: &[u8]) {
    let Ok((request, buffering)) = SubscribeRequest::parse(data) else { return };
    assert!(MAX_ITEMS.range.contains(&(buffering.max_items as u64)));
    assert!(MAX_BYTES.range.contains(&(buffering.max_bytes as u64)));
    let timeout_ms = u64::try_from(buffering.timeout.as_millis()).unwrap_or(u64::MAX);
    assert!(TIMEOUT_MS.range.contains(&timeout_ms));
    let written = serde_json::to_vec(&request).expect("a subscription serialises");
    let (again, same) = SubscribeRequest::parse(&written).expect("a subscription written back is accepted");
    assert_eq!((again, same), (request, buffering), "a subscription read back is the same");
}

/// Log messages read as Embedded Metric Format: an accepted document holds only what CloudWatch
/// would extract, within its documented limits.
pub fn emf(data: &[u8]) {
    let Ok(message) = std::str::from_utf8(data) else { return };
    let Ok(document) = Document::parse(message) else { return };
    for metric in &document.metrics {
        assert!((1..=emf::MAX_NAME_LENGTH).contains(&metric.name.chars().count()), "metric name {:?}", metric.name);
        assert!((1..=emf::MAX_NAME_LENGTH).contains(&metric.namespace.chars().count()));
        assert!((1..=emf::MAX_VALUES_PER_METRIC).contains(&metric.values.len()), "{} values", metric.values.len());
        assert!(metric.values.iter().all(|v| v.is_finite()), "values {:?}", metric.values);
        assert!(metric.unit.as_deref().is_none_or(|unit| emf::UNITS.contains(&unit)));
        assert!([emf::STANDARD_RESOLUTION, emf::HIGH_RESOLUTION].contains(&metric.storage_resolution));
        assert!(!metric.dimension_sets.is_empty(), "a metric without a dimension set is one empty set");
        assert!(metric.dimension_sets.iter().all(|set| set.len() <= emf::MAX_DIMENSIONS_PER_SET));
    }
}
