//! CloudWatch Embedded Metric Format: the platform metrics the extension derives, and the
//! aggregation of every value observed between two flushes into as few documents as the EMF
//! limits allow (one per namespace, dimension set and minute, split only beyond the limits).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// At most this many metrics in one document.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// At most this many values of one metric in one document.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// At most this many dimensions in one dimension set.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;

/// The dimension every platform metric carries.
pub const SERVICE_DIMENSION: &str = "Service";

pub const COLD_START: &str = "ColdStart";
pub const INIT_DURATION: &str = "InitDuration";
pub const DURATION: &str = "Duration";
pub const BILLED_DURATION: &str = "BilledDuration";
pub const MAX_MEMORY_USED: &str = "MaxMemoryUsed";
pub const MEMORY_UTILIZATION: &str = "MemoryUtilization";
pub const ERRORS: &str = "Errors";
pub const TIMEOUTS: &str = "Timeouts";
pub const POST_RUNTIME_DURATION: &str = "PostRuntimeDuration";
pub const LOGS_DROPPED: &str = "LogsDropped";

/// One metric the extension emits, dimension `Service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
}

/// Every metric the extension derives from the platform stream and from its own work: the list
/// dashboards and alarms are checked against.
pub const PLATFORM_METRICS: [MetricDef; 10] = [
    MetricDef { name: COLD_START, unit: "Count", description: "1 for an invocation that followed an init, else 0" },
    MetricDef { name: INIT_DURATION, unit: "Milliseconds", description: "init phase of a cold start" },
    MetricDef { name: DURATION, unit: "Milliseconds", description: "invoke phase, runtime and extensions" },
    MetricDef { name: BILLED_DURATION, unit: "Milliseconds", description: "billed duration" },
    MetricDef { name: MAX_MEMORY_USED, unit: "Megabytes", description: "peak memory of the environment" },
    MetricDef { name: MEMORY_UTILIZATION, unit: "Percent", description: "peak memory over configured memory" },
    MetricDef { name: ERRORS, unit: "Count", description: "1 for an invocation that ended in error, else 0" },
    MetricDef { name: TIMEOUTS, unit: "Count", description: "1 for an invocation that timed out, else 0" },
    MetricDef {
        name: POST_RUNTIME_DURATION,
        unit: "Milliseconds",
        description: "time extensions spent after the runtime answered",
    },
    MetricDef {
        name: LOGS_DROPPED,
        unit: "Count",
        description: "log records lost: dropped by the platform or by the extension's bounded buffer",
    },
];

/// Names and values of a dimension set, in the order the document declared them.
pub type Dimensions = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    minute: i64,
    namespace: String,
    dimensions: Dimensions,
}

#[derive(Debug, Default)]
struct Group {
    first_ms: i64,
    metrics: BTreeMap<String, Series>,
}

#[derive(Debug, Default)]
struct Series {
    unit: Option<String>,
    values: Vec<f64>,
}

/// One metric value waiting to be aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub time_ms: i64,
    pub namespace: String,
    pub dimensions: Dimensions,
    pub name: String,
    pub unit: Option<String>,
    pub value: f64,
}

/// Values observed since the last flush, grouped by minute, namespace and dimension set.
#[derive(Debug, Default)]
pub struct Aggregator {
    groups: BTreeMap<GroupKey, Group>,
    values: usize,
}

impl Aggregator {
    pub fn observe(&mut self, observation: Observation) {
        let key = GroupKey {
            minute: observation.time_ms.div_euclid(60_000),
            namespace: observation.namespace,
            dimensions: observation.dimensions,
        };
        let group =
            self.groups.entry(key).or_insert_with(|| Group { first_ms: observation.time_ms, ..Group::default() });
        group.first_ms = group.first_ms.min(observation.time_ms);
        let series = group.metrics.entry(observation.name).or_default();
        if series.unit.is_none() {
            series.unit = observation.unit;
        }
        series.values.push(observation.value);
        self.values += 1;
    }

    /// Takes the values of an EMF document the function wrote. Returns false, taking nothing,
    /// when the document is not one this aggregator can merge without changing its meaning
    /// (high-resolution metrics, oversized dimension sets, values that are not numbers): such
    /// a document is shipped as it is.
    pub fn observe_document(&mut self, document: &Map<String, Value>, fallback_ms: i64) -> bool {
        match read_document(document, fallback_ms) {
            Some(observations) => {
                for observation in observations {
                    self.observe(observation);
                }
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Values waiting for the next flush.
    pub fn len(&self) -> usize {
        self.values
    }

    /// Renders everything observed as EMF documents, `(timestamp ms, JSON)`, and starts afresh.
    pub fn drain(&mut self) -> Vec<(i64, String)> {
        let groups = std::mem::take(&mut self.groups);
        self.values = 0;
        let mut documents = Vec::new();
        for (key, group) in groups {
            let series: Vec<(&String, &Series)> = group.metrics.iter().collect();
            for round in 0.. {
                let start = round * MAX_VALUES_PER_METRIC;
                let slices: Vec<(&String, Option<&str>, &[f64])> = series
                    .iter()
                    .filter(|(_, s)| s.values.len() > start)
                    .map(|(name, s)| {
                        let end = (start + MAX_VALUES_PER_METRIC).min(s.values.len());
                        (*name, s.unit.as_deref(), &s.values[start..end])
                    })
                    .collect();
                if slices.is_empty() {
                    break;
                }
                for chunk in slices.chunks(MAX_METRICS_PER_DOCUMENT) {
                    documents.push((group.first_ms, render(&key, group.first_ms, chunk)));
                }
            }
        }
        documents
    }
}

fn render(key: &GroupKey, timestamp: i64, metrics: &[(&String, Option<&str>, &[f64])]) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| match unit {
            Some(unit) => json!({"Name": name, "Unit": unit}),
            None => json!({"Name": name}),
        })
        .collect();
    let names: Vec<&str> = key.dimensions.iter().map(|(name, _)| name.as_str()).collect();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp, "CloudWatchMetrics": [
            {"Namespace": key.namespace, "Dimensions": [names], "Metrics": definitions}
        ]}),
    );
    for (name, value) in &key.dimensions {
        document.insert(name.clone(), Value::String(value.clone()));
    }
    for (name, _, values) in metrics {
        let value = match values {
            [one] => json!(one),
            many => json!(many),
        };
        document.insert((*name).clone(), value);
    }
    Value::Object(document).to_string()
}

/// Whether a JSON object is an EMF document.
pub fn is_document(object: &Map<String, Value>) -> bool {
    object.get("_aws").and_then(|aws| aws.get("CloudWatchMetrics")).is_some()
}

/// Whether a log message is an EMF document.
pub fn is_document_text(message: &str) -> bool {
    message.contains("\"_aws\"")
        && serde_json::from_str::<Value>(message).ok().and_then(|v| v.as_object().map(is_document)).unwrap_or(false)
}

/// Every value a document declares, once per dimension set; `None` if anything is off.
fn read_document(document: &Map<String, Value>, fallback_ms: i64) -> Option<Vec<Observation>> {
    let aws = document.get("_aws")?.as_object()?;
    let time_ms = match aws.get("Timestamp") {
        None => fallback_ms,
        Some(t) => t.as_i64()?,
    };
    let mut observations = Vec::new();
    for directive in aws.get("CloudWatchMetrics")?.as_array()? {
        let namespace = directive.get("Namespace")?.as_str().filter(|n| !n.is_empty())?;
        let mut sets = Vec::new();
        for set in directive.get("Dimensions")?.as_array()? {
            let names = set.as_array()?;
            if names.len() > MAX_DIMENSIONS_PER_SET {
                return None;
            }
            let dimensions = names
                .iter()
                .map(|name| {
                    let name = name.as_str()?;
                    Some((name.to_owned(), document.get(name)?.as_str()?.to_owned()))
                })
                .collect::<Option<Dimensions>>()?;
            sets.push(dimensions);
        }
        if sets.is_empty() {
            sets.push(Vec::new());
        }
        for metric in directive.get("Metrics")?.as_array()? {
            let name = metric.get("Name")?.as_str()?;
            if metric.get("StorageResolution").is_some_and(|r| r.as_i64() != Some(60)) {
                return None;
            }
            let unit = match metric.get("Unit") {
                None => None,
                Some(unit) => Some(unit.as_str()?.to_owned()),
            };
            let values: Vec<f64> = match document.get(name)? {
                Value::Number(n) => vec![n.as_f64()?],
                Value::Array(items) if !items.is_empty() => {
                    items.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>()?
                }
                _ => return None,
            };
            for dimensions in &sets {
                for value in &values {
                    observations.push(Observation {
                        time_ms,
                        namespace: namespace.to_owned(),
                        dimensions: dimensions.clone(),
                        name: name.to_owned(),
                        unit: unit.clone(),
                        value: *value,
                    });
                }
            }
        }
    }
    Some(observations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn service(value: &str) -> Dimensions {
        vec![(SERVICE_DIMENSION.to_owned(), value.to_owned())]
    }

    fn observation(time_ms: i64, name: &str, value: f64) -> Observation {
        Observation {
            time_ms,
            namespace: "Books".into(),
            dimensions: service("command"),
            name: name.into(),
            unit: Some("Milliseconds".into()),
            value,
        }
    }

    fn parse(document: &str) -> Map<String, Value> {
        serde_json::from_str::<Value>(document).unwrap().as_object().unwrap().clone()
    }

    /// Every (namespace, dimensions, metric, value) a set of documents declares.
    fn values_of(documents: &[(i64, String)]) -> Vec<(String, Dimensions, String, u64)> {
        let mut all = Vec::new();
        for (time, document) in documents {
            let observations = read_document(&parse(document), *time).expect("our own documents are valid EMF");
            all.extend(observations.into_iter().map(|o| (o.namespace, o.dimensions, o.name, o.value.to_bits())));
        }
        all.sort();
        all
    }

    #[test]
    fn values_of_one_metric_share_one_document() {
        let mut aggregator = Aggregator::default();
        for i in 0..5 {
            aggregator.observe(observation(1_000 + i, DURATION, i as f64));
        }
        aggregator.observe(observation(1_010, INIT_DURATION, 80.0));
        let documents = aggregator.drain();
        assert_eq!(documents.len(), 1);
        let document = parse(&documents[0].1);
        assert_eq!(document["Duration"], json!([0.0, 1.0, 2.0, 3.0, 4.0]));
        assert_eq!(document["InitDuration"], json!(80.0));
        assert_eq!(document["Service"], "command");
        assert_eq!(document["_aws"]["Timestamp"], 1_000);
        assert_eq!(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service"]]));
        assert!(aggregator.is_empty());
    }

    #[test]
    fn different_minutes_and_dimensions_are_different_documents() {
        let mut aggregator = Aggregator::default();
        aggregator.observe(observation(59_999, DURATION, 1.0));
        aggregator.observe(observation(60_000, DURATION, 2.0));
        let mut other = observation(60_001, DURATION, 3.0);
        other.dimensions = service("query");
        aggregator.observe(other);
        assert_eq!(aggregator.drain().len(), 3);
    }

    #[test]
    fn function_documents_are_merged_per_dimension_set() {
        let document = parse(
            r#"{"_aws":{"Timestamp":120000,"CloudWatchMetrics":[{"Namespace":"Books",
                "Dimensions":[["Service"],["Service","Operation"]],
                "Metrics":[{"Name":"RequestLatency","Unit":"Milliseconds"},{"Name":"BooksCreated","Unit":"Count"}]}]},
                "Service":"command","Operation":"CreateBook","RequestLatency":[12.5,3],"BooksCreated":1,"request_id":"r"}"#,
        );
        let mut aggregator = Aggregator::default();
        assert!(aggregator.observe_document(&document, 0));
        assert!(aggregator.observe_document(&document, 0));
        assert_eq!(aggregator.len(), 12);
        let documents = aggregator.drain();
        assert_eq!(documents.len(), 2, "one per dimension set");
        let first = parse(&documents[0].1);
        assert_eq!(first["RequestLatency"], json!([12.5, 3.0, 12.5, 3.0]));
        assert_eq!(first["BooksCreated"], json!([1.0, 1.0]));
    }

    #[test]
    fn documents_this_aggregator_cannot_merge_are_left_alone() {
        let high_resolution = parse(
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],
               "Metrics":[{"Name":"M","StorageResolution":1}]}]},"M":1}"#,
        );
        let text_value = parse(
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M"}]}]},"M":"x","D":"d"}"#,
        );
        let missing_dimension = parse(
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M"}]}]},"M":1}"#,
        );
        let mut aggregator = Aggregator::default();
        for document in [high_resolution, text_value, missing_dimension] {
            assert!(!aggregator.observe_document(&document, 0), "{document:?}");
        }
        assert!(aggregator.is_empty());
    }

    proptest! {
        /// Whatever is observed comes out exactly once, within the EMF limits.
        #[test]
        fn drained_documents_hold_every_value_within_limits(
            observations in proptest::collection::vec((0i64..180_000, 0usize..130, 0usize..3, -1e6f64..1e6), 0..1500)
        ) {
            let mut aggregator = Aggregator::default();
            let mut expected = Vec::new();
            for (time, metric, service_index, value) in observations {
                let mut o = observation(time, &format!("M{metric}"), value);
                o.dimensions = service(&format!("s{service_index}"));
                expected.push((o.namespace.clone(), o.dimensions.clone(), o.name.clone(), o.value.to_bits()));
                aggregator.observe(o);
            }
            expected.sort();
            let documents = aggregator.drain();
            for (_, document) in &documents {
                let document = parse(document);
                let directive = &document["_aws"]["CloudWatchMetrics"][0];
                let metrics = directive["Metrics"].as_array().unwrap();
                prop_assert!(metrics.len() <= MAX_METRICS_PER_DOCUMENT);
                for metric in metrics {
                    let values = &document[metric["Name"].as_str().unwrap()];
                    prop_assert!(values.as_array().map_or(1, Vec::len) <= MAX_VALUES_PER_METRIC);
                }
            }
            prop_assert_eq!(values_of(&documents), expected);
        }
    }
}
