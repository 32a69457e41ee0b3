//! The `AWS/SQS` metrics the alarms on queues watch: SQS publishes each queue's depth once a
//! minute; the local endpoint publishes nothing, so this task reads every queue's attributes and
//! records `ApproximateNumberOfMessagesVisible` and `ApproximateNumberOfMessagesNotVisible` per
//! `QueueName` (`ApproximateAgeOfOldestMessage` is not known to the local endpoint).

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

use super::metrics::{Datum, MetricSink};

/// How often the depths are read (SQS: every minute; shorter here so alarms with short periods
/// see every period).
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);

/// Records every queue's depth every [`INTERVAL`] until `shutdown` resolves.
pub async fn publish_depths(sqs: aws_sdk_sqs::Client, sink: MetricSink, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = &mut shutdown => return,
        }
        if let Err(error) = record_depths(&sqs, &sink).await {
            let error = aws_sdk_sqs::error::DisplayErrorContext(&error);
            tracing::warn!(%error, "queue depths not read");
        }
    }
}

/// Reads and records every queue's depth once.
pub(crate) async fn record_depths(sqs: &aws_sdk_sqs::Client, sink: &MetricSink) -> Result<(), aws_sdk_sqs::Error> {
    let listed = sqs.list_queues().send().await?;
    for url in listed.queue_urls() {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let Some(attributes) = attributes.attributes() else { continue };
        let name = url.rsplit('/').next().unwrap_or_default();
        for (attribute, metric) in [
            (QueueAttributeName::ApproximateNumberOfMessages, "ApproximateNumberOfMessagesVisible"),
            (QueueAttributeName::ApproximateNumberOfMessagesNotVisible, "ApproximateNumberOfMessagesNotVisible"),
        ] {
            if let Some(value) = attributes.get(&attribute).and_then(|v| v.parse::<f64>().ok()) {
                sink.record(Datum::now("AWS/SQS", metric, &[("QueueName", name)], "Count", value));
            }
        }
    }
    Ok(())
}
