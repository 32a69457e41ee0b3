//! What reached the local CloudWatch Logs as EMF: every metric value of every document, read as
//! the local cloud's extraction reads them (`cloudwatch::emf::extract`), for `books-local metrics`.

use aws_config::SdkConfig;
use serde::Serialize;

use crate::cloud::CloudError;

/// One metric value, as CloudWatch would extract it from a document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    /// The log group the document was in.
    pub(crate) log_group: String,
    /// Its namespace.
    pub(crate) namespace: String,
    /// The metric's name.
    pub(crate) name: String,
    /// Its unit, when declared.
    pub(crate) unit: Option<String>,
    /// One of its dimension sets, names and values.
    pub(crate) dimensions: Vec<(String, String)>,
    /// The document's timestamp (or the log event's), milliseconds since the epoch.
    pub(crate) timestamp_ms: i64,
    /// The value.
    pub(crate) value: f64,
}

/// Every EMF value in the log groups whose names start with `prefix`.
pub async fn metric_points(config: &SdkConfig, prefix: &str) -> Result<Vec<MetricPoint>, CloudError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(prefix)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(crate::cloud::request_failed("log groups"))?;
    let mut points = Vec::new();
    let now = crate::cloudwatch::metrics::now_ms();
    for group in groups {
        let Some(name) = group.log_group_name() else { continue };
        let pages = logs
            .filter_log_events()
            .log_group_name(name)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(crate::cloud::request_failed("log events"))?;
        for event in
            pages.iter().flat_map(aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput::events)
        {
            let (Some(message), Some(at)) = (event.message(), event.timestamp()) else { continue };
            // The extraction's reading (CloudWatch's rules): a rejected document yields nothing.
            let Ok(Some(data)) = crate::cloudwatch::emf::extract(message, at, now) else { continue };
            points.extend(data.into_iter().map(|datum| MetricPoint {
                log_group: name.to_owned(),
                namespace: datum.namespace,
                name: datum.name,
                unit: datum.unit,
                dimensions: datum.dimensions,
                timestamp_ms: datum.timestamp_ms,
                value: datum.value,
            }));
        }
    }
    Ok(points)
}
