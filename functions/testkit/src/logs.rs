//! Reading CloudWatch Logs back, as the tests and the bench check what was shipped.

use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
use aws_sdk_cloudwatchlogs::Client;

/// One event read back: its timestamp (ms since the epoch) and its message.
pub type LogEvent = (i64, String);

/// Every event of a log stream, oldest first: GetLogEvents from the head, page after page, until
/// a page is empty or the forward token stops moving (how CloudWatch Logs marks the end).
pub async fn stream_events(
    logs: &Client,
    group: &str,
    stream: &str,
) -> Result<Vec<LogEvent>, aws_sdk_cloudwatchlogs::Error> {
    let events = stream_events_ingested(logs, group, stream).await?;
    Ok(events.into_iter().map(|(timestamp, _, message)| (timestamp, message)).collect())
}

/// [`stream_events`] with the time CloudWatch Logs took each event in (`ingestionTime`, ms since
/// the epoch; the event's timestamp where the endpoint gives none): `(timestamp, ingested, message)`.
pub async fn stream_events_ingested(
    logs: &Client,
    group: &str,
    stream: &str,
) -> Result<Vec<(i64, i64, String)>, aws_sdk_cloudwatchlogs::Error> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await?;
        let got = page.events();
        events.extend(got.iter().map(|e| {
            let timestamp = e.timestamp().unwrap_or_default();
            (timestamp, e.ingestion_time().unwrap_or(timestamp), e.message().unwrap_or_default().to_owned())
        }));
        let next = page.next_forward_token().map(str::to_owned);
        if got.is_empty() || next == token {
            return Ok(events);
        }
        token = next;
    }
}

/// The messages of every stream of a log group (FilterLogEvents, every page).
pub async fn group_messages(logs: &Client, group: &str) -> Result<Vec<String>, aws_sdk_cloudwatchlogs::Error> {
    let pages: Vec<_> = logs.filter_log_events().log_group_name(group).into_paginator().send().try_collect().await?;
    Ok(pages.iter().flat_map(FilterLogEventsOutput::events).filter_map(|e| e.message().map(str::to_owned)).collect())
}
