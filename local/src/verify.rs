//! The post-deployment check (`make aws-lambda-verify`, `books-local verify`): a little read-only
//! traffic through the deployed API with its key, then, from CloudWatch, proof that the telemetry
//! of that traffic arrived — the query function's log lines in its telemetry log group, the EMF
//! metrics the function and the extension write, the standard `AWS/ApiGateway` and `AWS/Lambda`
//! metrics — and that no alarm is in ALARM. It reads what to check from the environment's
//! Terraform outputs (`terraform output -json`), so it works the same against AWS and against
//! the local cloud (whose endpoint the SDK finds in `AWS_ENDPOINT_URL`).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::StateValue;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;

use crate::cloudwatch::metrics::now_ms;
use crate::cloudwatch::Statistic;

/// How often a request keeps the function (and its extension) running while the check waits.
pub(crate) const TRICKLE: Duration = Duration::from_secs(5);

/// What the outputs of the environment's Terraform say to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The stage's base URL (`…/v1`).
    pub url: String,
    /// A key of its usage plan.
    pub(crate) api_key: String,
    /// `ApiName` and `Stage` of the API's metrics.
    pub(crate) api_name: String,
    /// The stage.
    pub(crate) stage: String,
    /// The query function's name (the traffic reaches it).
    pub(crate) query_function: String,
    /// Its telemetry log group.
    pub(crate) query_log_group: String,
    /// The EMF namespace and the query function's `Service` dimension.
    pub(crate) namespace: String,
    /// `Service` of the query function.
    pub(crate) query_service: String,
    /// Prefix of the environment's alarm names.
    pub(crate) alarm_prefix: String,
}

impl Deployment {
    /// Reads `terraform output -json`; `url` replaces `invoke_url` (the local cloud serves the
    /// stage elsewhere).
    pub fn from_outputs(outputs: &Value, url: Option<&str>) -> Result<Self, MissingOutput> {
        let text = |name: &str| outputs[name]["value"].as_str().map(str::to_owned);
        let output = |name: &str| outputs[name]["value"].clone();
        let field = |name: &str, key: &str| output(name)[key].as_str().map(str::to_owned);
        let missing = MissingOutput;
        Ok(Self {
            url: url.map(str::to_owned).or_else(|| text("invoke_url")).ok_or_else(|| missing("invoke_url"))?,
            api_key: text("api_key_value").ok_or_else(|| missing("api_key_value"))?,
            api_name: text("rest_api_name").ok_or_else(|| missing("rest_api_name"))?,
            stage: text("stage_name").ok_or_else(|| missing("stage_name"))?,
            query_function: field("function_names", "query").ok_or_else(|| missing("function_names.query"))?,
            query_log_group: field("log_groups", "query").ok_or_else(|| missing("log_groups.query"))?,
            namespace: field("metrics", "namespace").ok_or_else(|| missing("metrics.namespace"))?,
            query_service: output("metrics")["services"]["query"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| missing("metrics.services.query"))?,
            alarm_prefix: format!("{}-", text("name_prefix").ok_or_else(|| missing("name_prefix"))?),
        })
    }
}

/// An output the check needs is missing from `terraform output -json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Terraform outputs have no {0} (apply the current root module)")]
pub struct MissingOutput(pub &'static str);

/// Why a request of the check got no status.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("HTTPS client: {0}")]
    Client(std::io::Error),
    #[error("the request: {0}")]
    Request(http::Error),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found.
    pub found: String,
}

/// Sends `requests` read-only requests (and one without a key), then waits up to `wait` for
/// their telemetry; returns every check, passed or not.
///
/// While it waits it sends one more request every [`TRICKLE`]: between invocations Lambda
/// freezes the function and its extension, so what the extension aggregates for the current
/// minute ships with a later invocation (or at spin-down) — an idle function's last metrics
/// would not arrive while anyone waits for them.
pub async fn verify(aws: &SdkConfig, deployment: &Deployment, requests: usize, wait: Duration) -> Vec<Check> {
    let started = now_ms() - 1_000;
    let mut checks = vec![traffic(deployment, requests).await];
    let cloudwatch = aws_sdk_cloudwatch::Client::new(aws);
    let logs = aws_sdk_cloudwatchlogs::Client::new(aws);
    let deadline = tokio::time::Instant::now() + wait;
    let telemetry = loop {
        let found = telemetry(&cloudwatch, &logs, deployment, started, requests).await;
        if found.iter().all(|c| c.ok) || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(TRICKLE.min(wait)).await;
        let _ = get(deployment, true).await;
    };
    checks.extend(telemetry);
    checks.push(alarms(&cloudwatch, &deployment.alarm_prefix).await);
    checks
}

/// One `GET /books?limit=1`, with the key or without; its status (0: no answer).
async fn get(deployment: &Deployment, with_key: bool) -> Result<u16, RequestError> {
    let connector = https_connector().map_err(RequestError::Client)?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    let mut request = http::Request::get(format!("{}/books?limit=1", deployment.url));
    if with_key {
        request = request.header("x-api-key", &deployment.api_key);
    }
    let request = request.body(Empty::new()).map_err(RequestError::Request)?;
    Ok(match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            status
        }
        Err(_) => 0,
    })
}

async fn traffic(deployment: &Deployment, requests: usize) -> Check {
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..=requests {
        let status = match get(deployment, i < requests).await {
            Ok(status) => status,
            Err(error) => return Check { what: "requests".into(), ok: false, found: error.to_string() },
        };
        *statuses.entry(status).or_default() += 1;
    }
    let ok = statuses.get(&200) == Some(&requests) && statuses.get(&403) == Some(&1);
    Check {
        what: format!("{requests} GET /books with the key answer 200, one without it 403"),
        ok,
        found: statuses
            .iter()
            .map(|(s, n)| format!("{n}×{}", if *s == 0 { "no answer".into() } else { s.to_string() }))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// HTTPS (a deployed stage) or HTTP (the local cloud), on rustls with ring and the system's
/// roots, as the SDK's own client.
fn https_connector() -> std::io::Result<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>>
{
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .build())
}

async fn telemetry(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    logs: &aws_sdk_cloudwatchlogs::Client,
    deployment: &Deployment,
    since: i64,
    requests: usize,
) -> Vec<Check> {
    let lines = logs
        .filter_log_events()
        .log_group_name(&deployment.query_log_group)
        .start_time(since)
        .limit(100)
        .send()
        .await
        .map(|page| page.events().len() as f64)
        .map_err(aws_sdk_cloudwatchlogs::error::DisplayErrorContext);
    let api = [("ApiName", deployment.api_name.as_str()), ("Stage", deployment.stage.as_str())];
    let function = [("FunctionName", deployment.query_function.as_str())];
    let service = [("Service", deployment.query_service.as_str())];
    // The function's request metrics carry the operation (`ListBooks` for the requests sent).
    let listing = [("Operation", "ListBooks"), ("Service", deployment.query_service.as_str())];
    let namespace = deployment.namespace.as_str();
    let (count, invocations, reported, emf) = tokio::join!(
        sum_since(cloudwatch, "AWS/ApiGateway", "Count", &api, "Sum", since),
        sum_since(cloudwatch, "AWS/Lambda", "Invocations", &function, "Sum", since),
        sum_since(cloudwatch, namespace, "Duration", &service, "SampleCount", since),
        sum_since(cloudwatch, namespace, "RequestLatency", &listing, "SampleCount", since),
    );
    let wanted = requests as f64;
    vec![
        at_least(format!("log lines of this traffic in {}", deployment.query_log_group), lines, 1.0),
        at_least(
            format!("AWS/ApiGateway Count of {} {} (its requests)", deployment.api_name, deployment.stage),
            count,
            wanted,
        ),
        at_least(format!("AWS/Lambda Invocations of {}", deployment.query_function), invocations, 1.0),
        at_least(
            format!(
                "{}/Duration of {} (books-telemetry's platform metrics)",
                deployment.namespace, deployment.query_service
            ),
            reported,
            1.0,
        ),
        at_least(
            format!(
                "{}/RequestLatency of {} ListBooks (the function's EMF)",
                deployment.namespace, deployment.query_service
            ),
            emf,
            1.0,
        ),
    ]
}

/// A check that `found` is at least `want`; what was found, or why nothing was, is reported.
fn at_least(what: String, found: Result<f64, impl std::fmt::Display>, want: f64) -> Check {
    Check {
        ok: found.as_ref().is_ok_and(|n| *n >= want),
        found: found.map_or_else(|e| e.to_string(), |n| format!("{n}")),
        what,
    }
}

/// One statistic of one metric from `since` until now, summed over one-minute periods.
async fn sum_since(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    stat: &str,
    since: i64,
) -> Result<f64, aws_sdk_cloudwatch::error::DisplayErrorContext<aws_sdk_cloudwatch::Error>> {
    let statistic = Statistic { namespace, name, dimensions, stat };
    let values = statistic
        .values(cloudwatch, 60, since.div_euclid(60_000) * 60_000, now_ms() + 60_000)
        .await
        .map_err(aws_sdk_cloudwatch::error::DisplayErrorContext)?;
    Ok(values.iter().sum())
}

async fn alarms(cloudwatch: &aws_sdk_cloudwatch::Client, prefix: &str) -> Check {
    let described = cloudwatch
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string());
    let alarms: Vec<_> = match described {
        Ok(pages) => pages.iter().flat_map(|p| p.metric_alarms().to_vec()).collect(),
        Err(error) => return Check { what: format!("alarms {prefix}*"), ok: false, found: error },
    };
    let count = |state: StateValue| alarms.iter().filter(|a| a.state_value() == Some(&state)).count();
    let firing: Vec<&str> =
        alarms.iter().filter(|a| a.state_value() == Some(&StateValue::Alarm)).filter_map(|a| a.alarm_name()).collect();
    let without_actions = alarms.iter().filter(|a| a.alarm_actions().is_empty()).count();
    Check {
        what: format!("alarms {prefix}*: none in ALARM, each notifying a topic"),
        ok: !alarms.is_empty() && firing.is_empty() && without_actions == 0,
        found: format!(
            "{} alarms: {} OK, {} INSUFFICIENT_DATA, {} ALARM{}{}",
            alarms.len(),
            count(StateValue::Ok),
            count(StateValue::InsufficientData),
            firing.len(),
            if firing.is_empty() { String::new() } else { format!(" ({})", firing.join(", ")) },
            if without_actions == 0 { String::new() } else { format!("; {without_actions} without an action") },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_terraform_outputs_name_what_to_check() {
        let outputs = json!({
            "invoke_url": {"value": "https://abc.execute-api.eu-west-1.amazonaws.com/v1"},
            "api_key_value": {"value": "k", "sensitive": true},
            "rest_api_name": {"value": "books-dev-api"},
            "stage_name": {"value": "v1"},
            "function_names": {"value": {"query": "books-dev-query", "command": "books-dev-command"}},
            "log_groups": {"value": {"query": "/books/dev/query"}},
            "metrics": {"value": {"namespace": "Books", "services": {"query": "query"}}},
            "name_prefix": {"value": "books-dev"},
        });
        let deployment = Deployment::from_outputs(&outputs, None).unwrap();
        assert_eq!(deployment.url, "https://abc.execute-api.eu-west-1.amazonaws.com/v1");
        assert_eq!(
            (deployment.api_name.as_str(), deployment.query_function.as_str()),
            ("books-dev-api", "books-dev-query")
        );
        assert_eq!(deployment.alarm_prefix, "books-dev-");
        let local = Deployment::from_outputs(&outputs, Some("http://127.0.0.1:3000/v1")).unwrap();
        assert_eq!(local.url, "http://127.0.0.1:3000/v1");
        let error = Deployment::from_outputs(&json!({}), None).unwrap_err();
        assert_eq!(error, MissingOutput("invoke_url"));
        assert!(error.to_string().contains("invoke_url"), "{error}");
    }
}
