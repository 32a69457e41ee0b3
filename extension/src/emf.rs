//! CloudWatch Embedded Metric Format: the platform metrics the extension derives, and the
//! aggregation of every value observed between two flushes into as few documents as the EMF
//! limits allow (one per namespace, dimension set and minute, split only beyond the limits).
//! Function documents are read with the workspace's one EMF reader (`telemetry_schema::emf`).
//! The aggregator counts what it holds in bytes as rendered, so its owner can cap it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use telemetry_schema::emf::{
    Dimensions, Document, MetricValues, MAX_METRICS_PER_DOCUMENT, MAX_VALUES_PER_METRIC, STANDARD_RESOLUTION,
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

/// Bytes a group (minute, namespace, dimension set) counts for besides its names: the frame of
/// its rendered document (`_aws`, `Timestamp`, `CloudWatchMetrics`…) and the entry holding it.
const GROUP_BYTES: usize = 160;
/// Bytes a metric of a group counts for besides its name (declared and used: twice) and unit.
const SERIES_BYTES: usize = 48;
/// Bytes a value counts for: the longest JSON number and a separator.
const VALUE_BYTES: usize = 25;

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

impl Observation {
    fn key(&self) -> GroupKey {
        GroupKey {
            minute: self.time_ms.div_euclid(60_000),
            namespace: self.namespace.clone(),
            dimensions: self.dimensions.clone(),
        }
    }

    /// Whether both go to the same metric of the same group.
    fn same_series(&self, other: &Self) -> bool {
        self.time_ms.div_euclid(60_000) == other.time_ms.div_euclid(60_000)
            && self.name == other.name
            && self.namespace == other.namespace
            && self.dimensions == other.dimensions
    }
}

impl GroupKey {
    fn bytes(&self) -> usize {
        let dimensions: usize = self.dimensions.iter().map(|(name, value)| 2 * name.len() + value.len() + 10).sum();
        GROUP_BYTES + self.namespace.len() + dimensions
    }
}

fn series_bytes(name: &str, unit: Option<&str>) -> usize {
    SERIES_BYTES + 2 * name.len() + unit.map_or(0, str::len)
}

/// Values observed since the last flush, grouped by minute, namespace and dimension set.
#[derive(Debug, Default)]
pub(crate) struct Aggregator {
    groups: BTreeMap<GroupKey, Group>,
    values: usize,
    /// What the groups, metrics and values count for (see [`Aggregator::bytes`]).
    bytes: usize,
}

impl Aggregator {
    pub(crate) fn observe(&mut self, observation: Observation) {
        let Observation { time_ms, namespace, dimensions, name, unit, value } = observation;
        let key = GroupKey { minute: time_ms.div_euclid(60_000), namespace, dimensions };
        let group = match self.groups.entry(key) {
            Entry::Occupied(group) => group.into_mut(),
            Entry::Vacant(vacant) => {
                self.bytes += vacant.key().bytes();
                vacant.insert(Group { first_ms: time_ms, ..Group::default() })
            }
        };
        group.first_ms = group.first_ms.min(time_ms);
        let series = match group.metrics.entry(name) {
            Entry::Occupied(series) => series.into_mut(),
            Entry::Vacant(vacant) => {
                self.bytes += series_bytes(vacant.key(), unit.as_deref());
                vacant.insert(Series::default())
            }
        };
        if series.unit.is_none() {
            series.unit = unit;
        }
        series.values.push(value);
        self.values += 1;
        self.bytes += VALUE_BYTES;
    }

    /// At least what observing all of these would add to [`Aggregator::bytes`], without looking
    /// anything up: as if every value opened a group and a metric of its own. Cheap, so that
    /// the exact [`Aggregator::cost`] is paid only near a cap.
    pub(crate) fn cost_bound(observations: &[Observation]) -> usize {
        observations
            .iter()
            .map(|o| {
                let dimensions: usize =
                    o.dimensions.iter().map(|(name, value)| 2 * name.len() + value.len() + 10).sum();
                VALUE_BYTES + GROUP_BYTES + o.namespace.len() + dimensions + series_bytes(&o.name, o.unit.as_deref())
            })
            .sum()
    }

    /// What observing all of these would add to [`Aggregator::bytes`].
    pub(crate) fn cost(&self, observations: &[Observation]) -> usize {
        let mut new_groups = BTreeSet::new();
        let mut new_series = BTreeSet::new();
        let mut bytes = observations.len() * VALUE_BYTES;
        let mut last: Option<&Observation> = None;
        for observation in observations {
            // A document's values come metric by metric: look each run up once.
            if last.is_some_and(|last| last.same_series(observation)) {
                continue;
            }
            last = Some(observation);
            let key = observation.key();
            let group = self.groups.get(&key);
            if group.is_none() && !new_groups.contains(&key) {
                bytes += key.bytes();
                new_groups.insert(key.clone());
            }
            if !group.is_some_and(|g| g.metrics.contains_key(&observation.name))
                && new_series.insert((key, observation.name.as_str()))
            {
                bytes += series_bytes(&observation.name, observation.unit.as_deref());
            }
        }
        bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Values waiting for the next flush.
    pub(crate) fn len(&self) -> usize {
        self.values
    }

    /// What the values waiting for the next flush count for: about the bytes of the documents
    /// they will be rendered into (names, dimension sets and each value's longest form).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Renders everything observed as EMF documents, `(timestamp ms, JSON)`, and starts afresh.
    pub(crate) fn drain(&mut self) -> Vec<(i64, String)> {
        let groups = std::mem::take(&mut self.groups);
        self.values = 0;
        self.bytes = 0;
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

/// The values of an EMF document a function wrote, or `None` when the document is not one the
/// aggregator can merge without changing its meaning (high-resolution metrics, or anything
/// CloudWatch would not extract): such a document is shipped as it is.
pub(crate) fn read_document(document: &Map<String, Value>, fallback_ms: i64) -> Option<Vec<Observation>> {
    let document = Document::read(document).ok()?;
    if document.metrics.iter().any(|m| m.storage_resolution != STANDARD_RESOLUTION) {
        return None;
    }
    let time_ms = document.timestamp_ms.unwrap_or(fallback_ms);
    let mut observations = Vec::new();
    for metric in document.metrics {
        for dimensions in &metric.dimension_sets {
            for value in &metric.values {
                observations.push(Observation {
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
    Some(observations)
}

/// Documents holding just these values: how they ship when an aggregator has no room for them.
pub(crate) fn render_apart(observations: Vec<Observation>) -> Vec<(i64, String)> {
    let mut apart = Aggregator::default();
    for observation in observations {
        apart.observe(observation);
    }
    apart.drain()
}

fn render(key: &GroupKey, timestamp: i64, metrics: &[(&String, Option<&str>, &[f64])]) -> String {
    let metrics: Vec<MetricValues<'_>> =
        metrics.iter().map(|(name, unit, values)| MetricValues { name: name.as_str(), unit: *unit, values }).collect();
    telemetry_schema::emf::write(timestamp, &key.namespace, &key.dimensions, &metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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

    fn merge(aggregator: &mut Aggregator, document: &Map<String, Value>) -> bool {
        let Some(observations) = read_document(document, 0) else { return false };
        observations.into_iter().for_each(|o| aggregator.observe(o));
        true
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
        assert!(merge(&mut aggregator, &document));
        assert!(merge(&mut aggregator, &document));
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
            assert!(!merge(&mut aggregator, &document), "{document:?}");
        }
        assert!(aggregator.is_empty());
    }

    #[test]
    fn bytes_count_new_groups_and_metrics_once_and_every_value() {
        let mut aggregator = Aggregator::default();
        let first = [observation(1_000, &DURATION, 1.0), observation(1_001, &DURATION, 2.0)];
        let cost = aggregator.cost(&first);
        assert_eq!(cost, GROUP_BYTES + 5 + (2 * 7 + 7 + 10) + SERIES_BYTES + 2 * 8 + 12 + 2 * VALUE_BYTES);
        first.into_iter().for_each(|o| aggregator.observe(o));
        assert_eq!(aggregator.bytes(), cost);
        let more = [observation(1_002, &DURATION, 3.0), observation(1_003, &INIT_DURATION, 4.0)];
        let added = aggregator.cost(&more);
        assert_eq!(added, 2 * VALUE_BYTES + SERIES_BYTES + 2 * 12 + 12, "the group is there already");
        more.into_iter().for_each(|o| aggregator.observe(o));
        assert_eq!(aggregator.bytes(), cost + added);
        aggregator.drain();
        assert_eq!(aggregator.bytes(), 0);
    }

    #[test]
    fn values_apart_render_alone() {
        let documents = render_apart(vec![observation(1_000, &DURATION, 5.0), observation(1_000, &ERRORS, 0.0)]);
        assert_eq!(documents.len(), 1);
        let document = parse(&documents[0].1);
        assert_eq!((document["Duration"].clone(), document["Errors"].clone()), (json!(5.0), json!(0.0)));
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
            let bytes = aggregator.bytes();
            let documents = aggregator.drain();
            let rendered: usize = documents.iter().map(|(_, d)| d.len()).sum();
            prop_assert!(rendered <= bytes, "rendered {} bytes, counted {}", rendered, bytes);
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
