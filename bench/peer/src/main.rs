//! `peer-telemetry`: the extension `make bench` measures ours against. It is written the way the
//! `lambda-extension` crate's telemetry example shows (a telemetry processor service on the
//! crate's listener, Lambda's default buffering) and does the same job as books-telemetry in
//! the most direct way: every delivery's function lines, plus one line per `platform.report`,
//! go to CloudWatch Logs in one `PutLogEvents` before the delivery is acknowledged.
//!
//! Bench-only: it is never shipped. Reads `BOOKS_TELEMETRY_LOG_GROUP` like ours, and
//! `PEER_TELEMETRY_PORT` for its listener (the crate binds a fixed port on every interface).

use aws_config::BehaviorVersion;
use aws_sdk_cloudwatchlogs::config::SharedHttpClient;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;
use lambda_extension::{service_fn, Error, Extension, LambdaTelemetry, LambdaTelemetryRecord, SharedService};

async fn ship(client: &Client, group: &str, stream: &str, events: Vec<LambdaTelemetry>) -> Result<(), Error> {
    let lines: Vec<InputLogEvent> = events
        .into_iter()
        .filter_map(|event| {
            let message = match event.record {
                LambdaTelemetryRecord::Function(line) => line,
                LambdaTelemetryRecord::PlatformReport { request_id, metrics, .. } => serde_json::json!({
                    "type": "platform.report", "requestId": request_id, "durationMs": metrics.duration_ms,
                    "billedDurationMs": metrics.billed_duration_ms, "maxMemoryUsedMB": metrics.max_memory_used_mb,
                    "initDurationMs": metrics.init_duration_ms,
                })
                .to_string(),
                _ => return None,
            };
            InputLogEvent::builder().timestamp(event.time.timestamp_millis()).message(message).build().ok()
        })
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    client.put_log_events().log_group_name(group).log_stream_name(stream).set_log_events(Some(lines)).send().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let group = std::env::var("BOOKS_TELEMETRY_LOG_GROUP")?;
    let port: u16 = std::env::var("PEER_TELEMETRY_PORT").map_or(Ok(9003), |p| p.parse())?;
    let stream = format!("peer/{}", std::process::id());
    let client = Client::new(&aws_config::defaults(BehaviorVersion::latest()).http_client(https_client()).load().await);
    client.create_log_stream().log_group_name(&group).log_stream_name(&stream).send().await?;

    let processor = SharedService::new(service_fn(move |events: Vec<LambdaTelemetry>| {
        let (client, group, stream) = (client.clone(), group.clone(), stream.clone());
        async move { ship(&client, &group, &stream, events).await }
    }));
    Extension::new().with_telemetry_processor(processor).with_telemetry_port_number(port).run().await
}

/// The SDK's HTTPS client on rustls with ring, as everywhere in the workspace (see its manifest).
fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}
