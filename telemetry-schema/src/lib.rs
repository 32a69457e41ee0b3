//! The telemetry contract both ends of this project share, as types: `books-local` produces the
//! Lambda Telemetry API (its emulator) and `books-telemetry` consumes it (the extension), so a
//! change of shape is a compile error on both sides rather than an end-to-end surprise.
//!
//! - [`Record`]: one record of a Telemetry API delivery (`{"time", "type", "record"}`), whose
//!   [`Event`] is a [`Platform`] event, a [`LogLine`] of the function or of an extension, or a
//!   record this schema does not know, kept whole: one odd record never fails a delivery.
//! - [`subscription`]: the subscription request an extension sends, its schema versions and
//!   the documented buffering limits.
//! - [`emf`]: reading CloudWatch Embedded Metric Format documents, the one EMF reader of the
//!   workspace.
//!
//! Shapes follow AWS's "Lambda Telemetry API `Event` schema reference" (schema 2022-12-13 and
//! later); a field the reference marks optional is an `Option`.

pub mod emf;
#[doc(hidden)]
pub mod fuzzing;
mod platform;
mod record;
pub mod subscription;

pub use platform::{
    ExtensionState, InitReport, InitReportMetrics, InitRuntimeDone, InitStart, InitializationType, LogsDropped, Phase,
    Platform, Report, ReportMetrics, RestoreReport, RestoreRuntimeDone, RestoreStart, RuntimeDone, RuntimeDoneMetrics,
    Span, Start, Status, TelemetrySubscription, TraceContext,
};
pub use record::{parse_delivery, Event, LogLine, NotADelivery, Record, RecordTime};
pub use subscription::{SchemaVersion, StreamType};

/// A string-valued enumeration of the API that keeps values it does not know (`Other`), so a
/// value AWS adds later does not turn a whole event into an unknown record.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this schema does not know, as delivered.
            Other(String),
        }

        impl $name {
            /// The value as the API writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::from(text.as_ref()))
            }
        }
    };
}
pub(crate) use open_enum;
