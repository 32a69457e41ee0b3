//! Subscribing to the Telemetry API (`PUT /2022-07-01/telemetry`): the request an extension
//! sends, the schema versions, and the documented buffering limits the platform enforces.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The API's version, in its path; it stays `2022-07-01` whatever the schema version.
pub const API_VERSION: &str = "2022-07-01";

/// A schema version of the records; it decides what a function's log line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SchemaVersion {
    /// The first schema: log lines are always strings.
    #[serde(rename = "2022-07-01")]
    V2022_07_01,
    /// Log lines that are JSON objects are delivered as objects.
    #[serde(rename = "2022-12-13")]
    V2022_12_13,
    /// The current schema.
    #[serde(rename = "2025-01-29")]
    V2025_01_29,
}

impl SchemaVersion {
    /// Every version the platform accepts.
    pub const ALL: [Self; 3] = [Self::V2022_07_01, Self::V2022_12_13, Self::V2025_01_29];

    /// The version as the request writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2022_07_01 => "2022-07-01",
            Self::V2022_12_13 => "2022-12-13",
            Self::V2025_01_29 => "2025-01-29",
        }
    }

    /// Whether a log line that is a JSON object is delivered as that object.
    pub fn structured_log_lines(self) -> bool {
        self >= Self::V2022_12_13
    }
}

crate::open_enum! {
    /// A stream of records a subscriber may ask for (`types`).
    StreamType {
        /// The `platform.*` events.
        Platform = "platform",
        /// The function's log lines.
        Function = "function",
        /// The extensions' log lines.
        Extension = "extension",
    }
}

/// How records reach the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// `HTTP` (or `TCP`).
    pub protocol: Protocol,
    /// Where to: `http://sandbox.localdomain:<port>[/path]`.
    #[serde(rename = "URI")]
    pub uri: String,
}

/// The destination's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// JSON arrays POSTed to the URI.
    #[serde(rename = "HTTP")]
    Http,
    /// Newline-delimited JSON over a TCP connection.
    #[serde(rename = "TCP")]
    Tcp,
}

/// Buffering a subscriber asks for; absent fields take the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buffering {
    /// Records per delivery at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Bytes per delivery at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// How long records wait for a delivery, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The documented range and default of a buffering setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The field's name in the request.
    pub field: &'static str,
    /// The values the platform accepts.
    pub range: RangeInclusive<u64>,
    /// The value of an absent field.
    pub default: u64,
}

/// `maxItems`: 1,000 to 10,000, default 1,000 (the API reference's default; the Telemetry API
/// guide says 10,000).
pub const MAX_ITEMS: Limit = Limit { field: "maxItems", range: 1_000..=10_000, default: 1_000 };
/// `maxBytes`: 256 KiB to 1 MiB, default 256 KiB.
pub const MAX_BYTES: Limit = Limit { field: "maxBytes", range: 262_144..=1_048_576, default: 262_144 };
/// `timeoutMs`: 25 ms to 30 s, default 1 s.
pub const TIMEOUT_MS: Limit = Limit { field: "timeoutMs", range: 25..=30_000, default: 1_000 };

/// The buffering in effect: the request's values, or the defaults, within the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveBuffering {
    /// Records per delivery at most.
    pub max_items: usize,
    /// Bytes per delivery at most.
    pub max_bytes: usize,
    /// How long records wait for a delivery, at most.
    pub timeout: Duration,
}

/// The body of `PUT /2022-07-01/telemetry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    /// The records' schema.
    pub schema_version: SchemaVersion,
    /// Where they go.
    pub destination: Destination,
    /// Which streams.
    pub types: Vec<StreamType>,
    /// How they are batched.
    #[serde(default)]
    pub buffering: Buffering,
}

/// Why the platform refuses a subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// Not the request's shape (missing field, unknown schema version or stream type, …).
    #[error("invalid subscription request: {0}")]
    Shape(String),
    /// No stream asked for.
    #[error("types must not be empty")]
    NoTypes,
    /// A stream that does not exist.
    #[error("unknown type {0}")]
    UnknownType(String),
    /// A destination this platform does not deliver to.
    #[error("destination: {0}")]
    Destination(&'static str),
    /// A buffering value out of its documented range.
    #[error("buffering.{field} must be between {min} and {max} (got {value})")]
    Buffering {
        /// The field.
        field: &'static str,
        /// Its minimum.
        min: u64,
        /// Its maximum.
        max: u64,
        /// What was asked.
        value: u64,
    },
}

impl SubscribeRequest {
    /// Reads a request body, checking what the platform checks: an HTTP destination with its port
    /// (the only protocol delivered here), at least one stream, buffering within its limits.
    pub fn parse(body: &[u8]) -> Result<(Self, EffectiveBuffering), SubscriptionError> {
        let request: Self = serde_json::from_slice(body).map_err(|e| SubscriptionError::Shape(e.to_string()))?;
        if request.destination.protocol != Protocol::Http {
            return Err(SubscriptionError::Destination("only the HTTP protocol is delivered"));
        }
        let Some(rest) = request.destination.uri.strip_prefix("http://") else {
            return Err(SubscriptionError::Destination("URI must be an http:// URI"));
        };
        // The reference's own example of a refusal: "URI port is not provided".
        let authority = rest.split('/').next().unwrap_or_default();
        let port = authority.rsplit_once(':').map(|(_, port)| port).unwrap_or_default();
        if !matches!(port.parse::<u16>(), Ok(port) if port > 0) {
            return Err(SubscriptionError::Destination("URI port is not provided"));
        }
        if request.types.is_empty() {
            return Err(SubscriptionError::NoTypes);
        }
        if let Some(StreamType::Other(unknown)) = request.types.iter().find(|t| matches!(t, StreamType::Other(_))) {
            return Err(SubscriptionError::UnknownType(unknown.clone()));
        }
        let buffering = request.effective_buffering()?;
        Ok((request, buffering))
    }

    /// The buffering in effect, or the first value out of its range.
    pub fn effective_buffering(&self) -> Result<EffectiveBuffering, SubscriptionError> {
        let value = |limit: &Limit, asked: Option<u64>| {
            let value = asked.unwrap_or(limit.default);
            if limit.range.contains(&value) {
                Ok(value)
            } else {
                Err(SubscriptionError::Buffering {
                    field: limit.field,
                    min: *limit.range.start(),
                    max: *limit.range.end(),
                    value,
                })
            }
        };
        Ok(EffectiveBuffering {
            max_items: usize::try_from(value(&MAX_ITEMS, self.buffering.max_items)?).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(value(&MAX_BYTES, self.buffering.max_bytes)?).unwrap_or(usize::MAX),
            timeout: Duration::from_millis(value(&TIMEOUT_MS, self.buffering.timeout_ms)?),
        })
    }
}
