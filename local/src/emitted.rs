//! What reached the local CloudWatch Logs as EMF: every metric value of every document, read
//! with the workspace's one EMF reader (`telemetry_schema::emf`). The dashboards' drift check
//! and their local rendering read these points (`books-local metrics`).

use aws_config::SdkConfig;
use serde::Serialize;
use telemetry_schema::emf::Document;

use crate::cloud::CloudError;

/// One metric value, as CloudWatch would extract it from a document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    /// The log group the document was in.
    pub log_group: String,
    /// Its namespace.
    pub namespace: String,
    /// The metric's name.
    pub name: String,
    /// Its unit, when declared.
    pub unit: Option<String>,
    /// One of its dimension sets, names and values.
    pub dimensions: Vec<(String, String)>,
    /// The document's timestamp (or the log event's), milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
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
            let Some(message) = event.message().filter(|m| m.contains("\"_aws\"")) else { continue };
            // A document CloudWatch would not extract yields nothing, as in CloudWatch.
            let Ok(document) = Document::parse(message) else { continue };
            let timestamp_ms = document.timestamp_ms.or(event.timestamp()).unwrap_or_default();
            for metric in document.metrics {
                for dimensions in &metric.dimension_sets {
                    points.extend(metric.values.iter().map(|value| MetricPoint {
                        log_group: name.to_owned(),
                        namespace: metric.namespace.clone(),
                        name: metric.name.clone(),
                        unit: metric.unit.clone(),
                        dimensions: dimensions.clone(),
                        timestamp_ms,
                        value: *value,
                    }));
                }
            }
        }
    }
    Ok(points)
}
