//! CloudWatch Embedded Metric Format: a log event that is a JSON object with an `_aws` member
//! declaring metrics whose values are members of the same object. [`Document::read`] turns one
//! into the metric data it declares, as CloudWatch extracts it; it is the one EMF reader of the
//! workspace (the extension merges function documents with it, the end-to-end check reads what
//! reached CloudWatch Logs with it).

use serde::Serialize;
use serde_json::{Map, Value};

/// At most this many metrics in one document.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// At most this many values of one metric in one document.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// At most this many dimensions in one dimension set.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// At most this many characters in a namespace, a metric name or a dimension name.
pub const MAX_NAME_LENGTH: usize = 255;
/// The units a metric definition may declare (CloudWatch's `StandardUnit`).
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];
/// The storage resolution of a standard metric, in seconds.
pub const STANDARD_RESOLUTION: u32 = 60;
/// The storage resolution of a high-resolution metric, in seconds.
pub const HIGH_RESOLUTION: u32 = 1;

/// Names and values of a dimension set, in the order the document declared them.
pub type Dimensions = Vec<(String, String)>;

/// One metric a document declares: its values, reported once per dimension set.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The namespace of its directive.
    pub namespace: String,
    /// Its dimension sets (an empty set when the directive declares none).
    pub dimension_sets: Vec<Dimensions>,
    /// Its name.
    pub name: String,
    /// Its unit, when declared (`Milliseconds`, `Count`, …).
    pub unit: Option<String>,
    /// [`STANDARD_RESOLUTION`] or [`HIGH_RESOLUTION`].
    pub storage_resolution: u32,
    /// Its values (a document may hold one number or an array).
    pub values: Vec<f64>,
}

/// A document, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `_aws.Timestamp`, milliseconds since the epoch, when the document has one.
    pub timestamp_ms: Option<i64>,
    /// Every metric of every directive.
    pub metrics: Vec<Metric>,
}

/// Why an object is not a document CloudWatch would extract metrics from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmfError {
    /// Not JSON, or not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// No `_aws.CloudWatchMetrics` array.
    #[error("no _aws.CloudWatchMetrics")]
    NotEmf,
    /// `_aws.Timestamp` is not an integer.
    #[error("_aws.Timestamp is not an integer")]
    Timestamp,
    /// A directive without a namespace, or with one longer than [`MAX_NAME_LENGTH`].
    #[error("a directive has no Namespace of 1 to 255 characters")]
    Namespace,
    /// A directive with more than [`MAX_METRICS_PER_DOCUMENT`] metric definitions.
    #[error("a directive has {0} metric definitions (at most {MAX_METRICS_PER_DOCUMENT})")]
    TooManyMetrics(usize),
    /// A directive's `Dimensions` is not an array of arrays of names.
    #[error("a directive's Dimensions is not an array of dimension sets")]
    DimensionSets,
    /// More than [`MAX_DIMENSIONS_PER_SET`] dimensions in a set.
    #[error("a dimension set has {0} dimensions (at most {MAX_DIMENSIONS_PER_SET})")]
    TooManyDimensions(usize),
    /// A dimension whose value is missing or not a string.
    #[error("dimension {0} has no string value")]
    Dimension(String),
    /// A metric definition without a name of 1 to 255 characters, or with a unit that is not a string.
    #[error("a metric definition is malformed")]
    Definition,
    /// A unit that is not one of [`UNITS`].
    #[error("metric {0} has a unit CloudWatch does not know")]
    Unit(String),
    /// An array of more than [`MAX_VALUES_PER_METRIC`] values.
    #[error("metric {0} has more than {MAX_VALUES_PER_METRIC} values")]
    TooManyValues(String),
    /// A storage resolution other than 1 or 60.
    #[error("metric {0} has a storage resolution other than 1 or 60")]
    StorageResolution(String),
    /// A metric whose value is missing, empty or not numbers.
    #[error("metric {0} has no numeric value")]
    Value(String),
}

/// A metric to write: its name, unit and values (one value is written as a number, several as
/// an array).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricValues<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its unit, one of [`UNITS`], when it has one.
    pub unit: Option<&'a str>,
    /// Its values, at most [`MAX_VALUES_PER_METRIC`].
    pub values: &'a [f64],
}

/// Writes a document of one directive: `metrics` (at most [`MAX_METRICS_PER_DOCUMENT`]) in
/// `namespace`, with one dimension set, at `timestamp_ms`. [`Document::read`] reads it back.
pub fn write(
    timestamp_ms: i64,
    namespace: &str,
    dimensions: &[(String, String)],
    metrics: &[MetricValues<'_>],
) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Aws<'a> {
        timestamp: i64,
        cloud_watch_metrics: [Directive<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Directive<'a> {
        namespace: &'a str,
        dimensions: [Vec<&'a str>; 1],
        metrics: Vec<Definition<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Definition<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<&'a str>,
    }
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Member<'a> {
        Dimension(&'a str),
        One(f64),
        Many(&'a [f64]),
    }
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(rename = "_aws")]
        aws: Aws<'a>,
        #[serde(flatten)]
        members: std::collections::BTreeMap<&'a str, Member<'a>>,
    }
    let mut members = std::collections::BTreeMap::new();
    for (name, value) in dimensions {
        members.insert(name.as_str(), Member::Dimension(value));
    }
    for metric in metrics {
        let value = match metric.values {
            [one] => Member::One(*one),
            many => Member::Many(many),
        };
        members.insert(metric.name, value);
    }
    let directive = Directive {
        namespace,
        dimensions: [dimensions.iter().map(|(name, _)| name.as_str()).collect()],
        metrics: metrics.iter().map(|m| Definition { name: m.name, unit: m.unit }).collect(),
    };
    let out = Out { aws: Aws { timestamp: timestamp_ms, cloud_watch_metrics: [directive] }, members };
    // Strings, numbers and arrays of numbers: serialising cannot fail.
    serde_json::to_string(&out).unwrap_or_default()
}

/// Whether a JSON object is an EMF document (it declares metrics, well-formed or not).
pub fn is_document(object: &Map<String, Value>) -> bool {
    object.get("_aws").and_then(|aws| aws.get("CloudWatchMetrics")).is_some()
}

impl Document {
    /// Reads a log message; see [`Document::read`].
    pub fn parse(message: &str) -> Result<Self, EmfError> {
        match serde_json::from_str::<Value>(message) {
            Ok(Value::Object(object)) => Self::read(&object),
            _ => Err(EmfError::NotAnObject),
        }
    }

    /// Reads a document: every metric of every directive with its values and dimension sets.
    pub fn read(object: &Map<String, Value>) -> Result<Self, EmfError> {
        let aws = object.get("_aws").and_then(Value::as_object).ok_or(EmfError::NotEmf)?;
        let timestamp_ms = match aws.get("Timestamp") {
            None => None,
            Some(time) => Some(time.as_i64().ok_or(EmfError::Timestamp)?),
        };
        let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or(EmfError::NotEmf)?;
        let mut metrics = Vec::new();
        for directive in directives {
            let namespace = directive
                .get("Namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty() && n.chars().count() <= MAX_NAME_LENGTH)
                .ok_or(EmfError::Namespace)?;
            let dimension_sets = dimension_sets(object, directive)?;
            let definitions = directive.get("Metrics").and_then(Value::as_array).ok_or(EmfError::Definition)?;
            if definitions.len() > MAX_METRICS_PER_DOCUMENT {
                return Err(EmfError::TooManyMetrics(definitions.len()));
            }
            for definition in definitions {
                let name = definition
                    .get("Name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty() && n.chars().count() <= MAX_NAME_LENGTH)
                    .ok_or(EmfError::Definition)?;
                let unit = match definition.get("Unit") {
                    None => None,
                    Some(unit) => {
                        let unit = unit.as_str().ok_or(EmfError::Definition)?;
                        if !UNITS.contains(&unit) {
                            return Err(EmfError::Unit(name.to_owned()));
                        }
                        Some(unit.to_owned())
                    }
                };
                let storage_resolution = match definition.get("StorageResolution") {
                    None => STANDARD_RESOLUTION,
                    Some(value) => match value.as_u64() {
                        Some(1) => HIGH_RESOLUTION,
                        Some(60) => STANDARD_RESOLUTION,
                        _ => return Err(EmfError::StorageResolution(name.to_owned())),
                    },
                };
                let values = match object.get(name) {
                    Some(Value::Number(number)) => vec![number.as_f64().ok_or_else(|| EmfError::Value(name.into()))?],
                    Some(Value::Array(items)) if items.len() > MAX_VALUES_PER_METRIC => {
                        return Err(EmfError::TooManyValues(name.to_owned()))
                    }
                    Some(Value::Array(items)) if !items.is_empty() => items
                        .iter()
                        .map(Value::as_f64)
                        .collect::<Option<Vec<f64>>>()
                        .ok_or_else(|| EmfError::Value(name.to_owned()))?,
                    _ => return Err(EmfError::Value(name.to_owned())),
                };
                metrics.push(Metric {
                    namespace: namespace.to_owned(),
                    dimension_sets: dimension_sets.clone(),
                    name: name.to_owned(),
                    unit,
                    storage_resolution,
                    values,
                });
            }
        }
        Ok(Self { timestamp_ms, metrics })
    }
}

fn dimension_sets(object: &Map<String, Value>, directive: &Value) -> Result<Vec<Dimensions>, EmfError> {
    let sets = directive.get("Dimensions").and_then(Value::as_array).ok_or(EmfError::DimensionSets)?;
    let mut read = Vec::with_capacity(sets.len().max(1));
    for set in sets {
        let names = set.as_array().ok_or(EmfError::DimensionSets)?;
        if names.len() > MAX_DIMENSIONS_PER_SET {
            return Err(EmfError::TooManyDimensions(names.len()));
        }
        let dimensions = names
            .iter()
            .map(|name| {
                let name = name.as_str().ok_or(EmfError::DimensionSets)?;
                let value = object.get(name).and_then(Value::as_str).ok_or_else(|| EmfError::Dimension(name.into()))?;
                Ok((name.to_owned(), value.to_owned()))
            })
            .collect::<Result<Dimensions, EmfError>>()?;
        read.push(dimensions);
    }
    if read.is_empty() {
        read.push(Vec::new());
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_document_reads_back_as_written() {
        let dimensions = vec![("Service".to_owned(), "query".to_owned())];
        let written = write(
            1_764_000_000_000,
            "Books",
            &dimensions,
            &[
                MetricValues { name: "Duration", unit: Some("Milliseconds"), values: &[1.5, 2.0] },
                MetricValues { name: "ColdStart", unit: None, values: &[1.0] },
            ],
        );
        let document = Document::parse(&written).unwrap();
        assert_eq!(document.timestamp_ms, Some(1_764_000_000_000));
        let metric = |name: &str| document.metrics.iter().find(|m| m.name == name).unwrap().clone();
        assert_eq!(metric("Duration").values, vec![1.5, 2.0]);
        assert_eq!(metric("Duration").unit.as_deref(), Some("Milliseconds"));
        assert_eq!(metric("ColdStart").values, vec![1.0]);
        assert_eq!(metric("ColdStart").dimension_sets, vec![dimensions.clone()]);
        let raw: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(raw["ColdStart"], serde_json::json!(1.0), "one value is a number, not an array");
    }
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn the_documented_example_reads_as_cloudwatch_extracts_it() {
        // The example of AWS's "Specification: Embedded metric format".
        let document = object(json!({
            "_aws": {"Timestamp": 1_574_109_732_004_i64, "CloudWatchMetrics": [{
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}]
            }]},
            "functionVersion": "$LATEST", "time": 100, "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"
        }));
        let read = Document::read(&document).unwrap();
        assert_eq!(read.timestamp_ms, Some(1_574_109_732_004));
        assert_eq!(
            read.metrics,
            vec![Metric {
                namespace: "lambda-function-metrics".into(),
                dimension_sets: vec![vec![("functionVersion".into(), "$LATEST".into())]],
                name: "time".into(),
                unit: Some("Milliseconds".into()),
                storage_resolution: STANDARD_RESOLUTION,
                values: vec![100.0],
            }]
        );
    }

    #[test]
    fn arrays_of_values_high_resolution_and_no_dimensions_are_read() {
        let document = object(json!({
            "_aws": {"CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [],
                "Metrics": [{"Name": "Latency", "StorageResolution": 1}]}]},
            "Latency": [1, 2.5, 3]
        }));
        let read = Document::read(&document).unwrap();
        assert_eq!(read.timestamp_ms, None);
        assert_eq!(read.metrics[0].values, [1.0, 2.5, 3.0]);
        assert_eq!(read.metrics[0].storage_resolution, HIGH_RESOLUTION);
        assert_eq!(read.metrics[0].dimension_sets, vec![Vec::<(String, String)>::new()]);
        assert_eq!(read.metrics[0].unit, None);
    }

    #[test]
    fn what_cloudwatch_would_not_extract_is_an_error_naming_the_part() {
        let base = || {
            json!({"_aws": {"CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["D"]], "Metrics": [{"Name": "M"}]}]},
                   "D": "d", "M": 1})
        };
        let case = |change: &dyn Fn(&mut Value)| {
            let mut document = base();
            change(&mut document);
            Document::read(&object(document)).unwrap_err()
        };
        assert_eq!(case(&|d| d["M"] = json!("x")), EmfError::Value("M".into()));
        assert_eq!(case(&|d| d["M"] = json!([])), EmfError::Value("M".into()));
        assert_eq!(case(&|d| d["D"] = json!(1)), EmfError::Dimension("D".into()));
        assert_eq!(case(&|d| d["_aws"]["Timestamp"] = json!("now")), EmfError::Timestamp);
        assert_eq!(case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")), EmfError::Namespace);
        assert_eq!(
            case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"] = json!(5)),
            EmfError::StorageResolution("M".into())
        );
        let many: Vec<String> = (0..31).map(|i| format!("D{i}")).collect();
        assert_eq!(
            case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([many])),
            EmfError::TooManyDimensions(31)
        );
        // The limits of the specification's schema: names of 1 to 255 characters, its units,
        // at most 100 definitions in a directive and 100 values in an array.
        let long = "n".repeat(256);
        assert_eq!(case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!(long)), EmfError::Namespace);
        assert_eq!(
            case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] = json!(long)),
            EmfError::Definition
        );
        assert_eq!(
            case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("ms")),
            EmfError::Unit("M".into())
        );
        let definitions: Vec<Value> = (0..101).map(|i| json!({"Name": format!("M{i}")})).collect();
        assert_eq!(
            case(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(definitions)),
            EmfError::TooManyMetrics(101)
        );
        assert_eq!(case(&|d| d["M"] = json!(vec![1; 101])), EmfError::TooManyValues("M".into()));
        let hundred = object(json!({"_aws": {"CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [],
            "Metrics": [{"Name": "M", "Unit": "Bytes/Second"}]}]}, "M": vec![1; 100]}));
        assert_eq!(Document::read(&hundred).unwrap().metrics[0].values.len(), 100, "100 values are allowed");
        assert_eq!(Document::parse("not json"), Err(EmfError::NotAnObject));
        assert_eq!(Document::parse(r#"{"message": "x"}"#), Err(EmfError::NotEmf));
    }
}
