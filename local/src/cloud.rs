//! Reads the topology Terraform created in the local AWS endpoint — the REST API's routes, keys
//! and usage plans, the functions' settings, the event source mappings — so the local cloud has
//! no second configuration.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::gateway::{
    ApiKey, GatewayConfig, MethodConfig, QuotaPeriod, Resource, Throttle, UsagePlan, INTEGRATION_TIMEOUT,
};
use crate::invoke::FunctionSpec;

#[derive(Debug, thiserror::Error)]
#[error("reading {what} from the local AWS endpoint: {reason}")]
pub struct CloudError {
    pub what: &'static str,
    pub reason: String,
}

fn fail(what: &'static str) -> impl Fn(String) -> CloudError {
    move |reason| CloudError { what, reason }
}

/// A function as Lambda knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub version: String,
    pub image_uri: String,
    pub command: Vec<String>,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
}

impl FunctionConfig {
    /// The function's image kind: the ECR repository's last dash-separated word
    /// (`books-local-query@sha256:…` → `query`).
    pub fn image_kind(&self) -> String {
        let repository = self.image_uri.split('@').next().unwrap_or_default();
        let name = repository.rsplit('/').next().unwrap_or_default();
        name.rsplit('-').next().unwrap_or(name).to_owned()
    }

    /// The spec the emulator runs, given the folder standing in for the image's file system:
    /// the handler (the image command's first word) is `<root>/var/task/<handler>`, the
    /// extensions are `<root>/opt/extensions/*`.
    pub fn spec(&self, image_root: &Path) -> FunctionSpec {
        let handler = self.command.first().cloned().unwrap_or_else(|| "bootstrap".to_owned());
        let task_root = image_root.join("var/task");
        let extensions = image_root.join("opt/extensions");
        FunctionSpec {
            name: self.name.clone(),
            arn: self.arn.clone(),
            bootstrap: task_root.join(&handler),
            bootstrap_args: self.command.iter().skip(1).cloned().collect(),
            handler,
            task_root,
            extensions_dir: extensions.is_dir().then_some(extensions),
            memory_mb: self.memory_mb,
            timeout: self.timeout,
            environment: self.environment.clone(),
            reserved_concurrency: self.reserved_concurrency,
            version: self.version.clone(),
            log_group: format!("/aws/lambda/{}", self.name),
        }
    }
}

/// A DynamoDB stream event source mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMapping {
    pub function_name: String,
    pub stream_arn: String,
    pub batch_size: usize,
    pub maximum_retry_attempts: Option<u32>,
    pub bisect_on_error: bool,
    pub maximum_record_age: Option<Duration>,
    pub report_batch_item_failures: bool,
    pub trim_horizon: bool,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub gateway: GatewayConfig,
    pub functions: Vec<FunctionConfig>,
    pub mappings: Vec<StreamMapping>,
}

fn function_name_of(arn: &str) -> String {
    // arn:aws:lambda:<region>:<account>:function:<name>[:qualifier] or a .../functions/<arn>/invocations URI.
    let arn = arn.split("/functions/").nth(1).map(|rest| rest.trim_end_matches("/invocations")).unwrap_or(arn);
    arn.split(":function:").nth(1).unwrap_or(arn).split(':').next().unwrap_or_default().to_owned()
}

pub async fn read(config: &SdkConfig, rest_api_id: &str, stage: &str) -> Result<Topology, CloudError> {
    let apigw = aws_sdk_apigateway::Client::new(config);
    let lambda = aws_sdk_lambda::Client::new(config);

    let resources = apigw
        .get_resources()
        .rest_api_id(rest_api_id)
        .limit(500)
        .send()
        .await
        .map_err(|e| fail("REST API resources")(format!("{e:?}")))?;
    let mut routes = Vec::new();
    for resource in resources.items() {
        let (Some(id), Some(path)) = (resource.id(), resource.path()) else { continue };
        let mut methods = HashMap::new();
        let names: Vec<String> = resource.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        for http_method in names {
            let method = apigw
                .get_method()
                .rest_api_id(rest_api_id)
                .resource_id(id)
                .http_method(&http_method)
                .send()
                .await
                .map_err(|e| fail("REST API method")(format!("{e:?}")))?;
            let uri = method.method_integration().and_then(|i| i.uri()).unwrap_or_default();
            methods.insert(
                http_method,
                MethodConfig {
                    api_key_required: method.api_key_required().unwrap_or(false),
                    function_name: function_name_of(uri),
                },
            );
        }
        routes.push(Resource { path: path.to_owned(), resource_id: id.to_owned(), methods });
    }

    let stage_info = apigw
        .get_stage()
        .rest_api_id(rest_api_id)
        .stage_name(stage)
        .send()
        .await
        .map_err(|e| fail("stage")(format!("{e:?}")))?;
    let stage_throttle = stage_info.method_settings().and_then(|m| m.get("*/*")).and_then(|s| {
        let rate = s.throttling_rate_limit();
        let burst = s.throttling_burst_limit();
        (rate > 0.0 && burst > 0).then_some(Throttle { rate, burst: burst as u32 })
    });

    let plans = apigw.get_usage_plans().limit(500).send().await.map_err(|e| fail("usage plans")(format!("{e:?}")))?;
    let all_keys = apigw
        .get_api_keys()
        .include_values(true)
        .limit(500)
        .send()
        .await
        .map_err(|e| fail("API keys")(format!("{e:?}")))?;
    let mut plan_of_key: HashMap<String, UsagePlan> = HashMap::new();
    for plan in plans.items() {
        let attached = plan.api_stages().iter().any(|s| s.api_id() == Some(rest_api_id) && s.stage() == Some(stage));
        let Some(plan_id) = plan.id().filter(|_| attached) else { continue };
        let usage_plan = UsagePlan {
            id: plan_id.to_owned(),
            throttle: plan.throttle().map(|t| Throttle { rate: t.rate_limit(), burst: t.burst_limit().max(1) as u32 }),
            quota: plan.quota().and_then(|q| {
                let period = q.period().and_then(|p| QuotaPeriod::parse(p.as_str()))?;
                Some((q.limit().max(0) as u64, period))
            }),
        };
        let keys = apigw
            .get_usage_plan_keys()
            .usage_plan_id(plan_id)
            .send()
            .await
            .map_err(|e| fail("usage plan keys")(format!("{e:?}")))?;
        for key in keys.items() {
            if let Some(id) = key.id() {
                plan_of_key.insert(id.to_owned(), usage_plan.clone());
            }
        }
    }
    let keys = all_keys
        .items()
        .iter()
        .filter_map(|key| {
            let id = key.id()?.to_owned();
            Some(ApiKey {
                plan: plan_of_key.get(&id).cloned(),
                id,
                value: key.value()?.to_owned(),
                enabled: key.enabled(),
            })
        })
        .collect();

    let mappings_out = lambda
        .list_event_source_mappings()
        .send()
        .await
        .map_err(|e| fail("event source mappings")(format!("{e:?}")))?;
    let mut wanted: Vec<String> =
        routes.iter().flat_map(|r: &Resource| r.methods.values().map(|m| m.function_name.clone())).collect();
    let mut mappings = Vec::new();
    for mapping in mappings_out.event_source_mappings() {
        let (Some(source), Some(function)) = (mapping.event_source_arn(), mapping.function_arn()) else { continue };
        if !source.contains(":dynamodb:") {
            continue;
        }
        let function_name = function_name_of(function);
        wanted.push(function_name.clone());
        mappings.push(StreamMapping {
            function_name,
            stream_arn: source.to_owned(),
            batch_size: mapping.batch_size().unwrap_or(100).max(1) as usize,
            maximum_retry_attempts: mapping.maximum_retry_attempts().and_then(|n| u32::try_from(n).ok()),
            bisect_on_error: mapping.bisect_batch_on_function_error().unwrap_or(false),
            maximum_record_age: mapping
                .maximum_record_age_in_seconds()
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64)),
            report_batch_item_failures: mapping
                .function_response_types()
                .iter()
                .any(|t| t.as_str() == "ReportBatchItemFailures"),
            trim_horizon: mapping.starting_position().map(|p| p.as_str() == "TRIM_HORIZON").unwrap_or(true),
            enabled: mapping.state().map(|s| s != "Disabled").unwrap_or(true),
        });
    }
    wanted.sort();
    wanted.dedup();

    let mut functions = Vec::new();
    for name in wanted.into_iter().filter(|n| !n.is_empty()) {
        let function =
            lambda.get_function().function_name(&name).send().await.map_err(|e| fail("function")(format!("{e:?}")))?;
        let Some(configuration) = function.configuration() else { continue };
        let reserved = lambda
            .get_function_concurrency()
            .function_name(&name)
            .send()
            .await
            .ok()
            .and_then(|c| c.reserved_concurrent_executions())
            .and_then(|n| u32::try_from(n).ok());
        functions.push(FunctionConfig {
            name: name.clone(),
            arn: configuration.function_arn().unwrap_or_default().to_owned(),
            version: configuration.version().unwrap_or("$LATEST").to_owned(),
            image_uri: function.code().and_then(|c| c.image_uri()).unwrap_or_default().to_owned(),
            command: configuration
                .image_config_response()
                .and_then(|r| r.image_config())
                .map(|c| c.command().to_vec())
                .unwrap_or_default(),
            memory_mb: configuration.memory_size().unwrap_or(128).max(128) as u32,
            timeout: Duration::from_secs(configuration.timeout().unwrap_or(3).max(1) as u64),
            environment: configuration
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            reserved_concurrency: reserved,
        });
    }

    let account_id = functions
        .first()
        .and_then(|f| f.arn.split(':').nth(4).map(str::to_owned))
        .unwrap_or_else(|| "123456789012".to_owned());
    Ok(Topology {
        gateway: GatewayConfig {
            rest_api_id: rest_api_id.to_owned(),
            stage: stage.to_owned(),
            account_id,
            resources: routes,
            keys,
            stage_throttle,
            integration_timeout: INTEGRATION_TIMEOUT,
        },
        functions,
        mappings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_arns_and_integration_uris() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:books-local-query/invocations";
        assert_eq!(function_name_of(uri), "books-local-query");
        assert_eq!(function_name_of("arn:aws:lambda:us-east-1:1:function:f:$LATEST"), "f");
    }

    #[test]
    fn image_kind_is_the_repository_suffix() {
        let config = FunctionConfig {
            name: "f".into(),
            arn: String::new(),
            version: "$LATEST".into(),
            image_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-local-query@sha256:aa".into(),
            command: vec!["books-projector".into()],
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            environment: BTreeMap::new(),
            reserved_concurrency: None,
        };
        assert_eq!(config.image_kind(), "query");
        let spec = config.spec(Path::new("/rootfs/query"));
        assert_eq!(spec.bootstrap, Path::new("/rootfs/query/var/task/books-projector"));
        assert_eq!(spec.handler, "books-projector");
    }
}
