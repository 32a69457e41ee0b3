//! CloudWatch Embedded Metric Format: the platform metrics the extension derives, and the
//! aggregation of every value observed between two flushes into as few documents as the EMF
//! limits allow (one per namespace, dimension set and minute, split only beyond the limits).
//! Function documents are read with the workspace's one EMF reader (`telemetry_schema::emf`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use telemetry_schema::emf::{
    Dimensions, Document, MAX_METRICS_PER_DOCUMENT, MAX_VALUES_PER_METRIC, STANDARD_RESOLUTION,
};

/// The dimension every platform metric carries.
pub const SERVICE_DIMENSION: &str = "Service";

/// One metric the extension emits, dimension `Service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Its name.
    pub name: &'static str,
    /// Its CloudWatch unit.
    pub unit: &'static str,
    /// What it measures.
    pub description: &'static str,
}

/// 1 for an invocation that followed an init, else 0.
pub const COLD_START: MetricDef =
    MetricDef { name: "ColdStart", unit: "Count", description: "1 for an invocation that followed an init, else 0" };
/// The init phase of a cold start.
pub const INIT_DURATION: MetricDef =
    MetricDef { name: "InitDuration", unit: "Milliseconds", description: "init phase of a cold start" };
/// The invoke phase.
pub const DURATION: MetricDef =
    MetricDef { name: "Duration", unit: "Milliseconds", description: "invoke phase, runtime and extensions" };
/// What is billed.
pub const BILLED_DURATION: MetricDef =
    MetricDef { name: "BilledDuration", unit: "Milliseconds", description: "billed duration" };
/// The environment's peak memory.
pub const MAX_MEMORY_USED: MetricDef =
    MetricDef { name: "MaxMemoryUsed", unit: "Megabytes", description: "peak memory of the environment" };
/// Peak memory over configured memory.
pub const MEMORY_UTILIZATION: MetricDef =
    MetricDef { name: "MemoryUtilization", unit: "Percent", description: "peak memory over configured memory" };
/// 1 for an invocation that ended in error, else 0.
pub const ERRORS: MetricDef =
    MetricDef { name: "Errors", unit: "Count", description: "1 for an invocation that ended in error, else 0" };
/// 1 for an invocation that timed out, else 0.
pub const TIMEOUTS: MetricDef =
    MetricDef { name: "Timeouts", unit: "Count", description: "1 for an invocation that timed out, else 0" };
/// Extension time after the runtime's answer.
pub const POST_RUNTIME_DURATION: MetricDef = MetricDef {
    name: "PostRuntimeDuration",
    unit: "Milliseconds",
    description: "time extensions spent after the runtime answered",
};
/// Log records lost.
pub const LOGS_DROPPED: MetricDef = MetricDef {
    name: "LogsDropped",
    unit: "Count",
    description: "log records lost: dropped by the platform or by the extension's bounded buffer",
};

/// Every metric the extension derives from the platform stream and from its own work: the list
/// dashboards and alarms are checked against.
pub const PLATFORM_METRICS: [MetricDef; 10] = [
    COLD_START,
    INIT_DURATION,
    DURATION,
    BILLED_DURATION,
    MAX_MEMORY_USED,
    MEMORY_UTILIZATION,
    ERRORS,
    TIMEOUTS,
    POST_RUNTIME_DURATION,
    LOGS_DROPPED,
];

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
pub(crate) struct Observation {
    pub(crate) time_ms: i64,
    pub(crate) namespace: String,
    pub(crate) dimensions: Dimensions,
    pub(crate) name: String,
    pub(crate) unit: Option<String>,
    pub(crate) value: f64,
}

/// Values observed since the last flush, grouped by minute, namespace and dimension set.
#[derive(Debug, Default)]
pub(crate) struct Aggregator {
    groups: BTreeMap<GroupKey, Group>,
    values: usize,
}

impl Aggregator {
    pub(crate) fn observe(&mut self, observation: Observation) {
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
    /// (high-resolution metrics, or anything CloudWatch would not extract): such a document is
    /// shipped as it is.
    pub(crate) fn observe_document(&mut self, document: &Map<String, Value>, fallback_ms: i64) -> bool {
        let Ok(document) = Document::read(document) else { return false };
        if document.metrics.iter().any(|m| m.storage_resolution != STANDARD_RESOLUTION) {
            return false;
        }
        let time_ms = document.timestamp_ms.unwrap_or(fallback_ms);
        for metric in document.metrics {
            for dimensions in &metric.dimension_sets {
                for value in &metric.values {
                    self.observe(Observation {
                        time_ms,
                        namespace: metric.namespace.clone(),
                        dimensions: dimensions.clone(),
                        name: metric.name.clone(),
                        unit: metric.unit.clone(),
                        value: *value,
                    });
                }
            }
        }
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Values waiting for the next flush.
    pub(crate) fn len(&self) -> usize {
        self.values
    }

    /// Renders everything observed as EMF documents, `(timestamp ms, JSON)`, and starts afresh.
    pub(crate) fn drain(&mut self) -> Vec<(i64, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn service(value: &str) -> Dimensions {
        vec![(SERVICE_DIMENSION.to_owned(), value.to_owned())]
    }

    fn observation(time_ms: i64, metric: &MetricDef, value: f64) -> Observation {
        Observation { name: metric.name.into(), unit: Some(metric.unit.into()), ..named(time_ms, metric.name, value) }
    }

    fn named(time_ms: i64, name: &str, value: f64) -> Observation {
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

    /// Every (namespace, dimensions, metric, value) a set of documents declares, as the
    /// workspace's EMF reader reads them.
    fn values_of(documents: &[(i64, String)]) -> Vec<(String, Dimensions, String, u64)> {
        let mut all = Vec::new();
        for (_, document) in documents {
            let read = Document::parse(document).expect("our own documents are valid EMF");
            for metric in read.metrics {
                for dimensions in &metric.dimension_sets {
                    for value in &metric.values {
                        all.push((metric.namespace.clone(), dimensions.clone(), metric.name.clone(), value.to_bits()));
                    }
                }
            }
        }
        all.sort();
        all
    }

    #[test]
    fn values_of_one_metric_share_one_document() {
        let mut aggregator = Aggregator::default();
        for i in 0..5 {
            aggregator.observe(observation(1_000 + i, &DURATION, i as f64));
        }
        aggregator.observe(observation(1_010, &INIT_DURATION, 80.0));
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
        aggregator.observe(observation(59_999, &DURATION, 1.0));
        aggregator.observe(observation(60_000, &DURATION, 2.0));
        let mut other = observation(60_001, &DURATION, 3.0);
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
                let mut o = named(time, &format!("M{metric}"), value);
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
