//! Records as the Telemetry API delivers them: a JSON array of `{"time", "type", "record"}`,
//! read leniently (a record of a type this schema does not know, or without its type's shape,
//! is kept whole rather than failing the delivery it came in).

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::platform::Platform;

/// When a record happened: the text delivered (RFC 3339, milliseconds, UTC), read once where the
/// record is read, and written back as it came.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordTime {
    text: String,
    ms: Option<i64>,
}

impl RecordTime {
    /// A time as delivered; [`RecordTime::ms`] is `None` when it is not RFC 3339.
    pub fn parse(text: &str) -> Self {
        let ms = chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis());
        Self { text: text.to_owned(), ms }
    }

    /// Now, as the platform stamps records.
    pub fn now() -> Self {
        let now = chrono::Utc::now();
        Self { text: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), ms: Some(now.timestamp_millis()) }
    }

    /// Milliseconds since the epoch, if the text was a valid time.
    pub fn ms(&self) -> Option<i64> {
        self.ms
    }

    /// The text, as delivered.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for RecordTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// One record of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it happened; see [`Record::time_ms`].
    pub time: RecordTime,
    /// What happened.
    pub event: Event,
}

/// What a record holds.
#[derive(Debug, Clone, PartialEq)]
// Records live for the moment they are read or written; boxing the platform events would cost
// an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A `platform.*` event.
    Platform(Platform),
    /// A line the function wrote (`function`).
    Function(LogLine),
    /// A line an extension wrote (`extension`).
    Extension(LogLine),
    /// A record of a type this schema does not know, or without its type's shape: the whole
    /// record, as delivered.
    Unknown(Value),
}

/// A line a process wrote: text, or (schema 2022-12-13 and later) the JSON object the line was.
#[derive(Debug, Clone, PartialEq)]
pub enum LogLine {
    /// Plain text, as written (trailing newline included).
    Text(String),
    /// A line that was a JSON object.
    Object(Map<String, Value>),
}

impl LogLine {
    /// A line as the platform delivers it: with `structured` (the subscription's schema version
    /// allows it), a line that is a JSON object is delivered as that object.
    pub fn from_output(line: &str, structured: bool) -> Self {
        if structured && line.trim_start().starts_with('{') {
            if let Ok(Value::Object(object)) = serde_json::from_str(line) {
                return Self::Object(object);
            }
        }
        Self::Text(line.to_owned())
    }

    fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::String(text) => Ok(Self::Text(text)),
            Value::Object(object) => Ok(Self::Object(object)),
            other => Err(other),
        }
    }
}

impl Serialize for LogLine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Object(object) => object.serialize(serializer),
        }
    }
}

impl Record {
    /// A record of `event` stamped now, as the platform stamps them.
    pub fn now(event: impl Into<Event>) -> Self {
        Self { time: RecordTime::now(), event: event.into() }
    }

    /// The record's time in milliseconds since the epoch, if it has a valid one.
    pub fn time_ms(&self) -> Option<i64> {
        self.time.ms()
    }

    /// The record's `type`.
    pub fn type_name(&self) -> &str {
        match &self.event {
            Event::Platform(event) => event.type_name(),
            Event::Function(_) => "function",
            Event::Extension(_) => "extension",
            Event::Unknown(raw) => raw.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Reads one item of a delivery; never fails (see [`Event::Unknown`]).
    pub fn from_value(mut item: Value) -> Self {
        let time = RecordTime::parse(item.get("time").and_then(Value::as_str).unwrap_or_default());
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        let event = match kind {
            "function" | "extension" => {
                let function = kind == "function";
                match item.get_mut("record").map(Value::take).map(LogLine::from_value) {
                    Some(Ok(line)) if function => Event::Function(line),
                    Some(Ok(line)) => Event::Extension(line),
                    Some(Err(other)) => {
                        item["record"] = other;
                        Event::Unknown(item)
                    }
                    None => Event::Unknown(item),
                }
            }
            _ => match item.get("record").and_then(|record| Platform::from_record(kind, record)) {
                Some(Ok(event)) => Event::Platform(event),
                _ => Event::Unknown(item),
            },
        };
        Self { time, event }
    }
}

impl From<Platform> for Event {
    fn from(event: Platform) -> Self {
        Self::Platform(event)
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Event::Unknown(raw) = &self.event {
            return raw.serialize(serializer);
        }
        let mut record = serializer.serialize_struct("Record", 3)?;
        record.serialize_field("time", &self.time)?;
        record.serialize_field("type", self.type_name())?;
        match &self.event {
            Event::Platform(event) => record.serialize_field("record", event)?,
            Event::Function(line) | Event::Extension(line) => record.serialize_field("record", line)?,
            Event::Unknown(_) => {}
        }
        record.end()
    }
}

/// A body that is not a delivery (a JSON array): what it was instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotADelivery {
    /// JSON, but not an array.
    #[error("a delivery is a JSON array, not {0}")]
    Json(Value),
    /// Not JSON at all.
    #[error("a delivery is a JSON array, not text")]
    Text(String),
}

/// Reads a delivery: one [`Record`] per item of the array, whatever the items are.
pub fn parse_delivery(body: &[u8]) -> Result<Vec<Record>, NotADelivery> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(Record::from_value).collect()),
        Ok(other) => Err(NotADelivery::Json(other)),
        Err(_) => Err(NotADelivery::Text(String::from_utf8_lossy(body).into_owned())),
    }
}
