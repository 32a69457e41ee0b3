//! The CloudWatch side of the local cloud, which the local endpoint stores but does not run:
//! metric data sent as AWS sends it ([`metrics`]: the gateway's `AWS/ApiGateway`, the
//! emulator's `AWS/Lambda`, the queues' `AWS/SQS` depths ([`queues`]), the EMF documents' own
//! namespaces), EMF documents in log groups turned into metrics ([`emf`]), and every alarm
//! evaluated on its schedule, notifying its SNS topic on a change ([`alarms`]).
//!
//! What the local endpoint cannot tell is not made up: moto never throttles, so the
//! `AWS/DynamoDB` throttle metrics are never published (CloudWatch treats missing data of that
//! namespace as "ignore", so those alarms stay as they are).

pub mod alarms;
pub mod emf;
pub mod metrics;
pub mod queues;

pub use metrics::{Datum, MetricSink};

/// One statistic of one metric, as a dashboard widget or an alarm names it.
#[derive(Debug, Clone, Copy)]
pub struct Statistic<'a> {
    /// The namespace (`AWS/Lambda`, `Books`…).
    pub namespace: &'a str,
    /// The metric's name.
    pub name: &'a str,
    /// Its dimensions, all of them (CloudWatch matches the whole set).
    pub dimensions: &'a [(&'a str, &'a str)],
    /// `Sum`, `SampleCount`, `p99`…
    pub stat: &'a str,
}

impl Statistic<'_> {
    /// Its values per `period_s` between `from_ms` and `to_ms` (GetMetricData, one query), as
    /// CloudWatch answers them: newest first, periods without data left out.
    pub async fn values(
        &self,
        cloudwatch: &aws_sdk_cloudwatch::Client,
        period_s: i32,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<f64>, aws_sdk_cloudwatch::Error> {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let dimensions = self.dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build());
        let metric = Metric::builder()
            .namespace(self.namespace)
            .metric_name(self.name)
            .set_dimensions(Some(dimensions.collect()))
            .build();
        let query = MetricDataQuery::builder()
            .id("m")
            .metric_stat(MetricStat::builder().metric(metric).period(period_s).stat(self.stat).build())
            .build();
        let answer = cloudwatch
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from_millis(from_ms))
            .end_time(DateTime::from_millis(to_ms))
            .send()
            .await?;
        Ok(answer.metric_data_results().iter().flat_map(|r| r.values().iter().copied()).collect())
    }
}
