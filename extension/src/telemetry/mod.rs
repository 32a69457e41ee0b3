//! The Telemetry API side: a listener that takes Lambda's deliveries and answers at once, and
//! the parsing of each record (platform events, function and extension lines, unknown types).

pub mod listener;
pub mod record;

/// The Telemetry API schema we subscribe with: function records may be JSON objects.
pub const SCHEMA_VERSION: &str = "2022-12-13";
/// The API's own version, in its path: it stays `2022-07-01` whatever the schema.
pub const API_VERSION: &str = "2022-07-01";
