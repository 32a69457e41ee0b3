//! Metric data on its way to the local CloudWatch: a cheap handle that the gateway, the Lambda
//! emulator, the stream poller and the EMF extraction record through, and the task that sends
//! what they recorded with `PutMetricData`, once a second, each metric's values as CloudWatch's
//! `Values`/`Counts` pairs.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use tokio::sync::mpsc;

/// How often recorded values are sent.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// `PutMetricData` takes at most this many data in one request.
const MAX_DATA_PER_REQUEST: usize = 1000;
/// and at most this many distinct values in one datum.
const MAX_VALUES_PER_DATUM: usize = 150;

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    /// Its namespace (`AWS/Lambda`, `Books`, …).
    pub(crate) namespace: String,
    /// The metric's name.
    pub name: String,
    /// Its dimensions, names and values.
    pub dimensions: Vec<(String, String)>,
    /// Its unit (a CloudWatch `StandardUnit`), if any.
    pub(crate) unit: Option<String>,
    /// 1 (high resolution) or 60 seconds.
    pub(crate) storage_resolution: u32,
    /// When, in milliseconds since the epoch.
    pub(crate) timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

impl Datum {
    /// A standard-resolution value measured now.
    pub fn now(namespace: &str, name: &str, dimensions: &[(&str, &str)], unit: &str, value: f64) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: dimensions.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            unit: Some(unit.to_owned()),
            storage_resolution: telemetry_schema::emf::STANDARD_RESOLUTION,
            timestamp_ms: now_ms(),
            value,
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where values are recorded; cloning it is cheap. Recording never waits.
#[derive(Debug, Clone)]
pub struct MetricSink {
    sender: mpsc::UnboundedSender<Datum>,
}

impl MetricSink {
    /// A sink and the receiving end [`publish`] drains.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Datum>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, receiver)
    }

    /// Records one value (dropped when the publisher is gone).
    pub fn record(&self, datum: Datum) {
        let _ = self.sender.send(datum);
    }
}

/// Sends what `received` brings to CloudWatch every [`FLUSH_INTERVAL`] until `shutdown`
/// resolves, then sends what is left. A refused request is logged and its data dropped.
pub async fn publish(
    cloudwatch: aws_sdk_cloudwatch::Client,
    mut received: mpsc::UnboundedReceiver<Datum>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            () = tokio::time::sleep(FLUSH_INTERVAL) => {}
            () = &mut shutdown => stopping = true,
        }
        let mut batch = Vec::new();
        while let Ok(datum) = received.try_recv() {
            batch.push(datum);
        }
        for (namespace, data) in aggregate(batch) {
            for chunk in data.chunks(MAX_DATA_PER_REQUEST) {
                let sent = cloudwatch
                    .put_metric_data()
                    .namespace(&namespace)
                    .set_metric_data(Some(chunk.to_vec()))
                    .send()
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%namespace, data = chunk.len(),
                        error = %aws_sdk_cloudwatch::error::DisplayErrorContext(&error), "PutMetricData failed");
                }
            }
        }
    }
}

/// The values of one metric at one second, each with how often it was recorded.
type Values = BTreeMap<u64, f64>;

/// Per namespace, one datum per metric, dimension set, unit, resolution and second, with its
/// distinct values and their counts (non-finite values are dropped: CloudWatch refuses them).
pub(crate) fn aggregate(data: Vec<Datum>) -> BTreeMap<String, Vec<MetricDatum>> {
    type Key = (String, String, Vec<(String, String)>, Option<String>, u32, i64);
    let mut grouped: BTreeMap<Key, Values> = BTreeMap::new();
    for datum in data.into_iter().filter(|d| d.value.is_finite()) {
        let mut dimensions = datum.dimensions;
        dimensions.sort();
        let second = datum.timestamp_ms.div_euclid(1000) * 1000;
        let key = (datum.namespace, datum.name, dimensions, datum.unit, datum.storage_resolution, second);
        *grouped.entry(key).or_default().entry(datum.value.to_bits()).or_default() += 1.0;
    }
    let mut by_namespace: BTreeMap<String, Vec<MetricDatum>> = BTreeMap::new();
    for ((namespace, name, dimensions, unit, resolution, at), values) in grouped {
        let values: Vec<(f64, f64)> = values.into_iter().map(|(bits, count)| (f64::from_bits(bits), count)).collect();
        for part in values.chunks(MAX_VALUES_PER_DATUM) {
            let datum = MetricDatum::builder()
                .metric_name(&name)
                .set_dimensions(Some(
                    dimensions.iter().map(|(n, v)| Dimension::builder().name(n).value(v).build()).collect(),
                ))
                .set_unit(unit.as_deref().map(StandardUnit::from))
                .storage_resolution(i32::try_from(resolution).unwrap_or(60))
                .timestamp(DateTime::from_millis(at))
                .set_values(Some(part.iter().map(|(value, _)| *value).collect()))
                .set_counts(Some(part.iter().map(|(_, count)| *count).collect()))
                .build();
            by_namespace.entry(namespace.clone()).or_default().push(datum);
        }
    }
    by_namespace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(name: &str, value: f64, at: i64) -> Datum {
        Datum {
            namespace: "N".into(),
            name: name.into(),
            dimensions: vec![("B".into(), "b".into()), ("A".into(), "a".into())],
            unit: Some("Count".into()),
            storage_resolution: 60,
            timestamp_ms: at,
            value,
        }
    }

    #[test]
    fn values_of_one_metric_and_second_become_values_and_counts() {
        let data = vec![
            datum("M", 1.0, 1_000),
            datum("M", 1.0, 1_999),
            datum("M", 2.0, 1_500),
            datum("M", 5.0, 2_000),
            datum("M", f64::NAN, 1_000),
            datum("Other", 1.0, 1_000),
        ];
        let aggregated = aggregate(data);
        let sent = &aggregated["N"];
        assert_eq!(sent.len(), 3, "M at second 1, M at second 2, Other: {sent:?}");
        let first = sent.iter().find(|d| d.metric_name() == Some("M")).unwrap();
        assert_eq!(first.values(), [1.0, 2.0]);
        assert_eq!(first.counts(), [2.0, 1.0]);
        assert_eq!(first.timestamp().map(|t| t.to_millis().unwrap()), Some(1_000));
        let names: Vec<_> = first.dimensions().iter().map(|d| d.name().unwrap()).collect();
        assert_eq!(names, ["A", "B"], "one dimension set whatever the order recorded");
    }

    #[test]
    fn more_distinct_values_than_a_datum_takes_are_split() {
        let data = (0..400).map(|i| datum("M", f64::from(i), 1_000)).collect();
        let aggregated = aggregate(data);
        let sizes: Vec<_> = aggregated["N"].iter().map(|d| d.values().len()).collect();
        assert_eq!(sizes, [150, 150, 100]);
    }
}
