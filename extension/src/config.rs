//! Configuration, only from `BOOKS_TELEMETRY_*` environment variables (plus the variables Lambda
//! gives every extension), with defaults that suit a production function. The bottom of the
//! module tree: it depends on no other module.

use std::net::SocketAddr;
use std::time::Duration;

/// When to flush (`BOOKS_TELEMETRY_FLUSH`); `flush` applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// At the end of each invocation while they are rare, in the background when frequent.
    Adaptive,
    /// At the end of each invocation, before the next event is taken.
    End,
    /// In the background, every interval.
    Background,
}

impl Strategy {
    /// Reads a strategy's name (case-insensitive; `periodic` is `background`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "adaptive" => Some(Self::Adaptive),
            "end" => Some(Self::End),
            "background" | "periodic" => Some(Self::Background),
            _ => None,
        }
    }
}

/// Every variable the extension reads, with its default, for `--help`-like documentation.
pub const VARIABLES: [(&str, &str); 15] = [
    ("BOOKS_TELEMETRY_LOG_GROUP", "log group to ship to (required)"),
    ("BOOKS_TELEMETRY_LOG_STREAM", "log stream (default: <yyyy/mm/dd>/[<version>]<random id>, created if missing)"),
    ("BOOKS_TELEMETRY_NAMESPACE", "EMF namespace of the platform metrics (default: Books)"),
    ("BOOKS_TELEMETRY_SERVICE", "value of the Service dimension (default: the function name)"),
    ("BOOKS_TELEMETRY_FLUSH", "adaptive | end | background (default: adaptive)"),
    (
        "BOOKS_TELEMETRY_FLUSH_INTERVAL_MS",
        "background flush period, each drawn between 3/4 and all of it, and the adaptive threshold (default: 10000)",
    ),
    ("BOOKS_TELEMETRY_BUFFER_BYTES", "cap of buffered log events; the oldest are dropped beyond it (default: 4 MiB)"),
    (
        "BOOKS_TELEMETRY_FLUSH_BYTES",
        "buffered log events that start a background flush before the interval (default: 256 KiB; at most half \
         the buffer cap counts)",
    ),
    (
        "BOOKS_TELEMETRY_METRICS_BYTES",
        "cap of aggregated metrics and EMF documents awaiting a flush, as rendered; beyond it function \
         documents ship unmerged as log lines and the oldest pending documents are dropped (default: 1 MiB)",
    ),
    (
        "BOOKS_TELEMETRY_REFUSAL_COOLDOWN_MS",
        "pause after CloudWatch Logs refuses the destination (access denied, log group missing), whose \
         events are dropped and counted; then one try per pause (default: 60000)",
    ),
    ("BOOKS_TELEMETRY_LISTEN", "address of the Telemetry API listener (default: 0.0.0.0:0, any free port)"),
    ("BOOKS_TELEMETRY_DELIVERY_TIMEOUT_MS", "Telemetry API buffering timeoutMs (default: 25, the minimum)"),
    ("BOOKS_TELEMETRY_PLATFORM_LOGS", "ship platform reports and failures as log events (default: true)"),
    ("BOOKS_TELEMETRY_SHUTDOWN_MARGIN_MS", "time kept free before the SHUTDOWN deadline (default: 300)"),
    ("BOOKS_TELEMETRY_LOG", "level of the extension's own diagnostics on stderr (default: warn)"),
];

/// The extension's settings (see [`VARIABLES`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where to ship.
    pub log_group: String,
    /// The stream in it.
    pub log_stream: String,
    /// EMF namespace of the platform metrics.
    pub namespace: String,
    /// Value of their `Service` dimension.
    pub service: String,
    /// The function (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
    /// Its version (`AWS_LAMBDA_FUNCTION_VERSION`).
    pub function_version: String,
    /// When to flush.
    pub flush: Strategy,
    /// Background flush period and the adaptive threshold.
    pub flush_interval: Duration,
    /// Cap of the log buffer.
    pub buffer_bytes: usize,
    /// Buffered log bytes that make a background flush due before its interval.
    pub flush_bytes: usize,
    /// Cap of the metrics waiting for a flush (aggregated values and rendered documents).
    pub metrics_bytes: usize,
    /// How long shipping pauses after CloudWatch Logs refused the destination itself.
    pub refusal_cool_down: Duration,
    /// The Telemetry API listener's address.
    pub listen: SocketAddr,
    /// The subscription's `timeoutMs`.
    pub delivery_timeout_ms: u32,
    /// Whether platform reports and failures are shipped as log events too.
    pub platform_logs: bool,
    /// Time kept free before the SHUTDOWN deadline.
    pub shutdown_margin: Duration,
    /// Level of the extension's own diagnostics.
    pub log_level: tracing::Level,
}

/// A variable that is missing or wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A variable's value is not what it must be.
    #[error("{name} is invalid ({value:?}): {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let function_name = get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "unknown".to_owned());
        let function_version = get("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".to_owned());
        let number = |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => match value.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(ConfigError::Invalid { name, value, expected: "an integer in the documented range" }),
                },
            }
        };
        let flush = match get("BOOKS_TELEMETRY_FLUSH") {
            None => Strategy::Adaptive,
            Some(value) => Strategy::parse(&value).ok_or(ConfigError::Invalid {
                name: "BOOKS_TELEMETRY_FLUSH",
                value,
                expected: "adaptive, end or background",
            })?,
        };
        let listen = match get("BOOKS_TELEMETRY_LISTEN") {
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
            Some(value) => value.parse().map_err(|_| ConfigError::Invalid {
                name: "BOOKS_TELEMETRY_LISTEN",
                value,
                expected: "an ip:port socket address",
            })?,
        };
        let platform_logs = match get("BOOKS_TELEMETRY_PLATFORM_LOGS").as_deref() {
            None | Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "BOOKS_TELEMETRY_PLATFORM_LOGS",
                    value: other.to_owned(),
                    expected: "true or false",
                })
            }
        };
        let log_level = match get("BOOKS_TELEMETRY_LOG") {
            None => tracing::Level::WARN,
            Some(value) => value.parse().map_err(|_| ConfigError::Invalid {
                name: "BOOKS_TELEMETRY_LOG",
                value,
                expected: "error, warn, info, debug or trace",
            })?,
        };
        let log_stream = get("BOOKS_TELEMETRY_LOG_STREAM").unwrap_or_else(|| {
            // Lambda's own naming, so operators find streams where they expect them.
            let day = chrono::Utc::now().format("%Y/%m/%d");
            format!("{day}/[{function_version}]{:032x}", fastrand::u128(..))
        });
        Ok(Self {
            log_group: get("BOOKS_TELEMETRY_LOG_GROUP").ok_or(ConfigError::Missing("BOOKS_TELEMETRY_LOG_GROUP"))?,
            log_stream,
            namespace: get("BOOKS_TELEMETRY_NAMESPACE").unwrap_or_else(|| "Books".to_owned()),
            service: get("BOOKS_TELEMETRY_SERVICE").unwrap_or_else(|| function_name.clone()),
            flush,
            flush_interval: Duration::from_millis(number("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", 10_000, 100, 600_000)?),
            buffer_bytes: number("BOOKS_TELEMETRY_BUFFER_BYTES", 4 << 20, 64 << 10, 1 << 30)? as usize,
            flush_bytes: number("BOOKS_TELEMETRY_FLUSH_BYTES", 256 << 10, 16 << 10, 1 << 30)? as usize,
            metrics_bytes: number("BOOKS_TELEMETRY_METRICS_BYTES", 1 << 20, 64 << 10, 1 << 30)? as usize,
            refusal_cool_down: Duration::from_millis(number(
                "BOOKS_TELEMETRY_REFUSAL_COOLDOWN_MS",
                60_000,
                100,
                3_600_000,
            )?),
            listen,
            delivery_timeout_ms: number("BOOKS_TELEMETRY_DELIVERY_TIMEOUT_MS", 25, 25, 30_000)? as u32,
            platform_logs,
            shutdown_margin: Duration::from_millis(number("BOOKS_TELEMETRY_SHUTDOWN_MARGIN_MS", 300, 0, 1_500)?),
            function_name,
            function_version,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_need_only_the_log_group() {
        let config =
            config(&[("BOOKS_TELEMETRY_LOG_GROUP", "/books/dev/command"), ("AWS_LAMBDA_FUNCTION_NAME", "cmd")])
                .unwrap();
        assert_eq!(config.service, "cmd");
        assert_eq!(config.namespace, "Books");
        assert_eq!(config.flush, Strategy::Adaptive);
        assert_eq!(config.buffer_bytes, 4 << 20);
        assert_eq!(config.metrics_bytes, 1 << 20);
        assert_eq!(config.flush_bytes, 256 << 10);
        assert_eq!(config.refusal_cool_down, Duration::from_secs(60));
        assert_eq!(config.delivery_timeout_ms, 25);
        assert!(config.log_stream.contains("[$LATEST]"), "{}", config.log_stream);
    }

    #[test]
    fn missing_log_group_is_named() {
        assert_eq!(config(&[]).unwrap_err(), ConfigError::Missing("BOOKS_TELEMETRY_LOG_GROUP"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("BOOKS_TELEMETRY_LOG_GROUP", "g"), ("BOOKS_TELEMETRY_FLUSH", "sometimes")]).unwrap_err();
        assert!(err.to_string().contains("BOOKS_TELEMETRY_FLUSH"), "{err}");
        let err = config(&[("BOOKS_TELEMETRY_LOG_GROUP", "g"), ("BOOKS_TELEMETRY_BUFFER_BYTES", "10")]).unwrap_err();
        assert!(err.to_string().contains("BOOKS_TELEMETRY_BUFFER_BYTES"), "{err}");
    }
}
