//! Reads the topology Terraform created in the local AWS endpoint — the REST API's routes, keys
//! and usage plans, the functions' settings, the event source mappings — so the local cloud has
//! no second configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_apigateway::error::DisplayErrorContext;

use crate::gateway::{
    ApiKey, GatewayConfig, Method, Quota, QuotaPeriod, Resource, ResourcePolicy, Throttle, UsagePlan,
    INTEGRATION_TIMEOUT,
};
use crate::invoke::{AliasRoute, FunctionSpec};

/// Why the topology could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// A call to the local AWS endpoint failed.
    #[error("reading {what} from the local AWS endpoint: {reason}")]
    Request {
        /// What was being read.
        what: &'static str,
        /// The SDK's error, with its context.
        reason: String,
    },
    /// No function of that name, and not one whose name ends with `-<name>`.
    #[error("no function {name:?} in the local AWS endpoint, nor one alone whose name ends with \"-{name}\" (found: [{candidates}])")]
    FunctionNotFound {
        /// The name asked for.
        name: String,
        /// The functions whose names end with it.
        candidates: String,
    },
    /// No REST API of that id or name.
    #[error("no REST API named or with id {0:?} in the local AWS endpoint (did Terraform apply?)")]
    RestApiNotFound(String),
    /// The REST API has no such stage.
    #[error("REST API {rest_api} has no stage {stage:?}")]
    StageNotFound {
        /// The REST API's id.
        rest_api: String,
        /// The stage asked for.
        stage: String,
    },
    /// Something the endpoint holds that API Gateway would not have taken.
    #[error("{0}")]
    Unusable(String),
}

pub(crate) fn request_failed<E: std::error::Error>(what: &'static str) -> impl FnOnce(E) -> CloudError {
    move |err| CloudError::Request { what, reason: DisplayErrorContext(err).to_string() }
}

/// Everything the local cloud serves, as the local AWS endpoint describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The REST API stage: routes, keys, usage plans, limits.
    pub gateway: GatewayConfig,
    /// Every function the gateway or an event source mapping invokes: its `$LATEST`, and each
    /// version an invocation may run (named, or routed to by an alias).
    pub functions: Vec<FunctionConfig>,
    /// The aliases the gateway's integrations and the mappings invoke.
    pub aliases: Vec<AliasConfig>,
    /// The DynamoDB stream event source mappings of those functions.
    pub mappings: Vec<EventSourceMapping>,
}

/// An alias as Lambda knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasConfig {
    /// The function's name.
    pub function_name: String,
    /// The alias's name (`live`).
    pub name: String,
    /// Where it sends invocations.
    pub route: AliasRoute,
}

/// A function (one version of it) as Lambda knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    /// The function's name.
    pub name: String,
    /// Its unqualified ARN.
    pub arn: String,
    /// Its version: `$LATEST` or a published version's number.
    pub version: String,
    /// The image it runs (`<repository>@sha256:…`).
    pub image_uri: String,
    /// The image config's command: the handler first, then its arguments.
    pub command: Vec<String>,
    /// Its memory size.
    pub memory_mb: u32,
    /// Its timeout.
    pub timeout: Duration,
    /// Its environment variables.
    pub environment: BTreeMap<String, String>,
    /// Its reserved concurrency, if set.
    pub reserved_concurrency: Option<u32>,
}

impl FunctionConfig {
    /// The image's kind: the ECR repository's last dash-separated word
    /// (`…/books-local-query@sha256:…` → `query`), naming the folder that stands in for it.
    pub fn image_kind(&self) -> String {
        let without_digest = self.image_uri.split('@').next().unwrap_or_default();
        let last_segment = without_digest.rsplit('/').next().unwrap_or_default();
        let name = last_segment.split(':').next().unwrap_or_default();
        name.rsplit('-').next().unwrap_or(name).to_owned()
    }

    /// The folder of `rootfs` standing in for its image: `<rootfs>/<digest's hex>` when the
    /// image by that digest was unpacked there (so that versions of other images run their own
    /// files), else `<rootfs>/<kind>` (the build tree's, `make run`).
    pub fn image_root(&self, rootfs: &Path) -> std::path::PathBuf {
        let by_digest = self.image_uri.split_once("@sha256:").map(|(_, hex)| rootfs.join(hex));
        by_digest.filter(|folder| folder.is_dir()).unwrap_or_else(|| rootfs.join(self.image_kind()))
    }

    /// See [`function_spec`].
    pub fn spec(&self, image_root: &Path) -> FunctionSpec {
        function_spec(self, image_root)
    }
}

/// What the emulator runs for `config`, given the folder standing in for its image's file system.
///
/// The convention mirrors our images: the image command's first element is the runtime binary,
/// an absolute path inside the image (`/var/task/books-query`) or a name relative to the working
/// directory `<root>/var/task` (also `LAMBDA_TASK_ROOT`); the rest of the command are its
/// arguments, external extensions are the executables in `<root>/opt/extensions/` (when that
/// folder exists), and logs go to `/aws/lambda/<name>`.
pub fn function_spec(config: &FunctionConfig, image_root: &Path) -> FunctionSpec {
    let command = config.command.first().cloned().unwrap_or_else(|| "bootstrap".to_owned());
    let task_root = image_root.join("var/task");
    let extensions = image_root.join("opt/extensions");
    let bootstrap = match command.strip_prefix('/') {
        Some(inside_image) => image_root.join(inside_image),
        None => task_root.join(&command),
    };
    let handler = Path::new(&command).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(command);
    FunctionSpec {
        name: config.name.clone(),
        arn: config.arn.clone(),
        bootstrap,
        bootstrap_args: config.command.iter().skip(1).cloned().collect(),
        handler,
        task_root,
        extensions_dir: extensions.is_dir().then_some(extensions),
        memory_mb: config.memory_mb,
        timeout: config.timeout,
        environment: config.environment.clone(),
        reserved_concurrency: config.reserved_concurrency,
        version: config.version.clone(),
        log_group: format!("/aws/lambda/{}", config.name),
    }
}

/// Where a mapping starts reading its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record the stream holds.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
}

/// A DynamoDB stream event source mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSourceMapping {
    /// The mapping's id.
    pub uuid: String,
    /// The function it invokes.
    pub function_name: String,
    /// The alias or version it invokes (`FunctionArn` qualified); `None` is `$LATEST`.
    pub qualifier: Option<String>,
    /// The stream's ARN.
    pub event_source_arn: String,
    /// Records per invocation at most.
    pub batch_size: usize,
    /// `None` retries until the record expires (`-1`).
    pub maximum_retry_attempts: Option<u32>,
    /// Whether a failed batch is split in two and each half retried.
    pub bisect_batch_on_function_error: bool,
    /// `None` keeps records however old (`-1`).
    pub maximum_record_age: Option<Duration>,
    /// `FunctionResponseTypes` holds `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// Where it starts reading.
    pub starting_position: StartingPosition,
    /// Whether it polls.
    pub enabled: bool,
    /// Where records it gives up on are described (`DestinationConfig.OnFailure`): an SQS queue
    /// or SNS topic ARN.
    pub on_failure: Option<String>,
}

/// The function named by a Lambda ARN (`…:function:<name>[:qualifier]`), an API Gateway
/// integration URI (`…/functions/<arn>/invocations`) or a plain name.
pub(crate) fn function_name_of(arn_or_uri: &str) -> String {
    function_of(arn_or_uri).0
}

/// The function and the qualifier (alias or version) a Lambda ARN, an API Gateway integration
/// URI or a `name[:qualifier]` names; `$LATEST` is no qualifier.
pub(crate) fn function_of(arn_or_uri: &str) -> (String, Option<String>) {
    let arn = arn_or_uri
        .split_once("/functions/")
        .map(|(_, rest)| rest.trim_end_matches("/invocations"))
        .unwrap_or(arn_or_uri);
    let name = arn.split_once(":function:").map(|(_, rest)| rest).unwrap_or(arn);
    let (name, qualifier) = name.split_once(':').map_or((name, None), |(name, qualifier)| (name, Some(qualifier)));
    (name.to_owned(), qualifier.filter(|q| !q.is_empty() && *q != "$LATEST").map(str::to_owned))
}

/// The SDK configuration of the local AWS endpoint, on the workspace's one TLS stack (rustls
/// with ring, see its manifest). moto takes any credentials: those of the environment
/// (`books-local endpoint` sets them), else fixed ones, never the chain's profiles or instance role.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = aws_sdk_lambda::config::Credentials::new(
        variable("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "testing".into()),
        variable("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "testing".into()),
        variable("AWS_SESSION_TOKEN"),
        None,
        "books-local",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .load()
        .await
}

/// The SDK configuration the usual way (credentials, region and endpoint from the environment
/// and profile), on the same TLS stack; `region` overrides the chain's.
pub async fn sdk_config_from_environment(region: Option<&str>) -> SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}

/// Reads the REST API `rest_api` (its id or its name) and its stage `stage`, the usage plans,
/// keys and functions behind them, and the functions' DynamoDB event source mappings.
pub async fn read(config: &SdkConfig, rest_api: &str, stage: &str) -> Result<Topology, CloudError> {
    let apigw = aws_sdk_apigateway::Client::new(config);
    let lambda = aws_sdk_lambda::Client::new(config);

    let mut gateway = read_gateway(&apigw, rest_api, stage).await?;
    let mappings = read_mappings(&lambda).await?;
    // Per function, the qualifiers its callers name (None: $LATEST).
    let mut wanted: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    let invoked = gateway.resources.iter().flat_map(|r| r.methods.values().map(|m| (&m.function_name, &m.qualifier)));
    for (name, qualifier) in invoked.chain(mappings.iter().map(|m| (&m.function_name, &m.qualifier))) {
        if !name.is_empty() {
            wanted.entry(name.clone()).or_default().insert(qualifier.clone());
        }
    }

    let mut functions = Vec::new();
    let mut aliases = Vec::new();
    for (name, qualifiers) in wanted {
        let latest = read_function(&lambda, &name, None).await?;
        let mut versions = BTreeSet::new();
        for qualifier in qualifiers.into_iter().flatten() {
            if is_version(&qualifier) {
                versions.insert(qualifier);
            } else {
                let alias = read_alias(&lambda, &name, &qualifier).await?;
                versions.extend(alias.route.versions().map(str::to_owned));
                aliases.push(alias);
            }
        }
        // $LATEST first: whoever takes the first configuration of a name gets the function's own.
        let reserved = latest.reserved_concurrency;
        functions.push(latest);
        for version in versions {
            functions.push(FunctionConfig {
                reserved_concurrency: reserved,
                ..read_function(&lambda, &name, Some(&version)).await?
            });
        }
    }
    if let Some(account) = functions.first().and_then(|f| f.arn.split(':').nth(4)) {
        gateway.account_id = account.to_owned();
    }
    Ok(Topology { gateway, functions, aliases, mappings })
}

/// Whether a qualifier names a published version (a number) rather than an alias.
fn is_version(qualifier: &str) -> bool {
    !qualifier.is_empty() && qualifier.bytes().all(|b| b.is_ascii_digit())
}

/// One alias of a function (`GetAlias`): its version, and the one it routes a share to.
async fn read_alias(lambda: &aws_sdk_lambda::Client, function: &str, alias: &str) -> Result<AliasConfig, CloudError> {
    let answer =
        lambda.get_alias().function_name(function).name(alias).send().await.map_err(request_failed("alias"))?;
    let additional = answer
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .and_then(|weights| weights.iter().next())
        .map(|(version, weight)| (version.clone(), *weight));
    Ok(AliasConfig {
        function_name: function.to_owned(),
        name: alias.to_owned(),
        route: AliasRoute { version: answer.function_version().unwrap_or("$LATEST").to_owned(), additional },
    })
}

async fn read_gateway(
    apigw: &aws_sdk_apigateway::Client,
    rest_api: &str,
    stage_name: &str,
) -> Result<GatewayConfig, CloudError> {
    let api = match apigw.get_rest_api().rest_api_id(rest_api).send().await {
        Ok(api) => (
            api.id().unwrap_or(rest_api).to_owned(),
            api.name().unwrap_or_default().to_owned(),
            api.binary_media_types().to_vec(),
            api.policy().map(str::to_owned),
        ),
        Err(_) => {
            let apis = apigw
                .get_rest_apis()
                .limit(500)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(request_failed("REST APIs"))?;
            let api = apis
                .into_iter()
                .find(|a| a.name() == Some(rest_api))
                .ok_or_else(|| CloudError::RestApiNotFound(rest_api.to_owned()))?;
            (
                api.id().unwrap_or_default().to_owned(),
                api.name().unwrap_or_default().to_owned(),
                api.binary_media_types().to_vec(),
                api.policy().map(str::to_owned),
            )
        }
    };
    let (rest_api_id, rest_api_name, binary_media_types, policy) = api;

    let stage = apigw
        .get_stage()
        .rest_api_id(&rest_api_id)
        .stage_name(stage_name)
        .send()
        .await
        .map_err(|_| CloudError::StageNotFound { rest_api: rest_api_id.clone(), stage: stage_name.to_owned() })?;
    let method_throttles: BTreeMap<String, Throttle> = stage
        .method_settings()
        .into_iter()
        .flatten()
        .filter_map(|(key, settings)| {
            let rate = settings.throttling_rate_limit();
            let burst = u32::try_from(settings.throttling_burst_limit()).ok()?;
            // Negative limits mean "not set" (the account's limits apply).
            (rate >= 0.0).then(|| (method_setting_key(key), Throttle { rate, burst }))
        })
        .collect();

    let detailed_metrics = stage
        .method_settings()
        .and_then(|settings| settings.get("*/*"))
        .is_some_and(aws_sdk_apigateway::types::MethodSetting::metrics_enabled);

    let mut resources = Vec::new();
    let items = apigw
        .get_resources()
        .rest_api_id(&rest_api_id)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(request_failed("REST API resources"))?;
    for resource in &items {
        let (Some(id), Some(path)) = (resource.id(), resource.path()) else { continue };
        let mut methods = BTreeMap::new();
        let names: Vec<String> = resource.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        for http_method in names {
            let method = apigw
                .get_method()
                .rest_api_id(&rest_api_id)
                .resource_id(id)
                .http_method(&http_method)
                .send()
                .await
                .map_err(request_failed("REST API method"))?;
            let integration = method.method_integration();
            let function = integration.and_then(|i| i.uri()).map(function_of).unwrap_or_default();
            let throttle = [format!("{path}/{http_method}"), format!("{path}/*"), "*/*".to_owned()]
                .iter()
                .find_map(|key| method_throttles.get(key).copied());
            methods.insert(
                http_method.clone(),
                Method {
                    function_name: function.0,
                    qualifier: function.1,
                    timeout: integration
                        .map(aws_sdk_apigateway::types::Integration::timeout_in_millis)
                        .filter(|ms| *ms > 0)
                        .map(|ms| Duration::from_millis(ms as u64)),
                    api_key_required: method.api_key_required().unwrap_or(false),
                    http_method,
                    throttle,
                },
            );
        }
        resources.push(Resource { id: id.to_owned(), path: path.to_owned(), methods });
    }

    let keys = read_keys(apigw, &rest_api_id, stage_name).await?;
    let policy = policy
        .as_deref()
        .map(ResourcePolicy::parse)
        .transpose()
        .map_err(|problem| CloudError::Unusable(format!("REST API {rest_api_id}: {problem}")))?;
    if let Some(skipped) = policy.as_ref().map(ResourcePolicy::skipped).filter(|n| *n > 0) {
        tracing::warn!(skipped, "the REST API's resource policy has statements the local gateway cannot decide (a principal other than *, a condition other than aws:SourceIp): they are left out");
    }
    Ok(GatewayConfig {
        rest_api_id,
        rest_api_name,
        stage: stage_name.to_owned(),
        // Replaced by the functions' account when there are functions.
        account_id: "123456789012".to_owned(),
        deployment_id: stage.deployment_id().map(str::to_owned),
        stage_variables: stage.variables().map(|v| v.clone().into_iter().collect()).unwrap_or_default(),
        binary_media_types,
        resources,
        keys,
        integration_timeout: INTEGRATION_TIMEOUT,
        detailed_metrics,
        region: apigw.config().region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string),
        resource_policy: policy,
    })
}

/// A stage method-settings key (`~1books~1{id}/GET`, `*/*`) as `<resource path>/<METHOD>`.
fn method_setting_key(key: &str) -> String {
    if key.starts_with('*') {
        return key.to_owned();
    }
    let decoded = key.replace("~1", "/");
    if decoded.starts_with('/') {
        decoded
    } else {
        format!("/{decoded}")
    }
}

/// Every API key, each with the usage plan of this stage that holds it (if any).
async fn read_keys(
    apigw: &aws_sdk_apigateway::Client,
    rest_api_id: &str,
    stage: &str,
) -> Result<Vec<ApiKey>, CloudError> {
    let mut plan_of_key: BTreeMap<String, UsagePlan> = BTreeMap::new();
    let plans = apigw
        .get_usage_plans()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(request_failed("usage plans"))?;
    for plan in &plans {
        let attached = plan.api_stages().iter().any(|s| s.api_id() == Some(rest_api_id) && s.stage() == Some(stage));
        let Some(plan_id) = plan.id().filter(|_| attached) else { continue };
        let usage_plan = UsagePlan {
            id: plan_id.to_owned(),
            name: plan.name().unwrap_or_default().to_owned(),
            throttle: plan
                .throttle()
                .map(|t| Throttle { rate: t.rate_limit(), burst: u32::try_from(t.burst_limit()).unwrap_or(0) }),
            quota: plan.quota().and_then(|q| {
                Some(Quota {
                    limit: u64::try_from(q.limit()).ok()?,
                    period: QuotaPeriod::parse(q.period()?.as_str())?,
                    offset: u64::try_from(q.offset()).unwrap_or(0),
                })
            }),
        };
        let keys = apigw
            .get_usage_plan_keys()
            .usage_plan_id(plan_id)
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(request_failed("usage plan keys"))?;
        for key in keys {
            if let Some(id) = key.id() {
                plan_of_key.insert(id.to_owned(), usage_plan.clone());
            }
        }
    }

    let mut keys = Vec::new();
    let api_keys = apigw
        .get_api_keys()
        .include_values(true)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(request_failed("API keys"))?;
    for key in &api_keys {
        let (Some(id), Some(value)) = (key.id(), key.value()) else { continue };
        keys.push(ApiKey {
            id: id.to_owned(),
            name: key.name().unwrap_or_default().to_owned(),
            value: value.to_owned(),
            enabled: key.enabled(),
            plan: plan_of_key.get(id).cloned(),
        });
    }
    Ok(keys)
}

/// The DynamoDB stream event source mappings (other sources are not emulated).
async fn read_mappings(lambda: &aws_sdk_lambda::Client) -> Result<Vec<EventSourceMapping>, CloudError> {
    let mut mappings = Vec::new();
    let listed = lambda
        .list_event_source_mappings()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(request_failed("event source mappings"))?;
    for mapping in &listed {
        let (Some(source), Some(function)) = (mapping.event_source_arn(), mapping.function_arn()) else { continue };
        if !source.starts_with("arn:aws:dynamodb:") || !source.contains("/stream/") {
            continue;
        }
        mappings.push(EventSourceMapping {
            uuid: mapping.uuid().unwrap_or_default().to_owned(),
            function_name: function_name_of(function),
            qualifier: function_of(function).1,
            event_source_arn: source.to_owned(),
            batch_size: mapping.batch_size().and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0).unwrap_or(100),
            maximum_retry_attempts: mapping.maximum_retry_attempts().and_then(|n| u32::try_from(n).ok()),
            bisect_batch_on_function_error: mapping.bisect_batch_on_function_error().unwrap_or(false),
            maximum_record_age: mapping
                .maximum_record_age_in_seconds()
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs),
            report_batch_item_failures: mapping
                .function_response_types()
                .iter()
                .any(|t| t.as_str() == "ReportBatchItemFailures"),
            starting_position: match mapping.starting_position().map(aws_sdk_lambda::types::EventSourcePosition::as_str)
            {
                Some("LATEST") => StartingPosition::Latest,
                _ => StartingPosition::TrimHorizon,
            },
            enabled: !matches!(mapping.state(), Some("Disabled" | "Disabling")),
            on_failure: mapping
                .destination_config()
                .and_then(|d| d.on_failure())
                .and_then(|f| f.destination())
                .map(str::to_owned),
        });
    }
    Ok(mappings)
}

/// Reads one function's configuration (what `books-local invoke` runs): the function named
/// `name`, or else the one function whose name ends with `-<name>` (`query` for
/// `books-local-query`).
pub async fn read_one_function(config: &SdkConfig, name: &str) -> Result<FunctionConfig, CloudError> {
    let lambda = aws_sdk_lambda::Client::new(config);
    if lambda.get_function().function_name(name).send().await.is_ok() {
        return read_function(&lambda, name, None).await;
    }
    let listed: Vec<aws_sdk_lambda::types::FunctionConfiguration> = lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(request_failed("functions"))?;
    let suffix = format!("-{name}");
    let mut found: Vec<&str> =
        listed.iter().filter_map(|f| f.function_name()).filter(|n| n.ends_with(&suffix)).collect();
    match found.len() {
        1 => read_function(&lambda, found[0], None).await,
        _ => {
            found.sort_unstable();
            Err(CloudError::FunctionNotFound { name: name.to_owned(), candidates: found.join(", ") })
        }
    }
}

/// One version of a function (`$LATEST` without `version`); its reserved concurrency is the
/// function's own, read only for `$LATEST`.
async fn read_function(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    version: Option<&str>,
) -> Result<FunctionConfig, CloudError> {
    let function = lambda
        .get_function()
        .function_name(name)
        .set_qualifier(version.map(str::to_owned))
        .send()
        .await
        .map_err(request_failed("function"))?;
    let configuration = function.configuration();
    // GetFunction includes the concurrency; GetFunctionConcurrency is the authoritative call.
    let reserved = match version {
        Some(_) => None,
        None => match lambda.get_function_concurrency().function_name(name).send().await {
            Ok(concurrency) => concurrency.reserved_concurrent_executions(),
            Err(_) => {
                function.concurrency().and_then(aws_sdk_lambda::types::Concurrency::reserved_concurrent_executions)
            }
        },
    };
    // The unqualified ARN: moto answers a version's with its number appended.
    let arn = configuration.and_then(|c| c.function_arn()).unwrap_or_default();
    let arn = match arn.split(':').count() {
        8 => arn.rsplit_once(':').map_or(arn, |(unqualified, _)| unqualified),
        _ => arn,
    };
    Ok(FunctionConfig {
        name: name.to_owned(),
        arn: arn.to_owned(),
        version: version.map_or_else(|| "$LATEST".to_owned(), str::to_owned),
        image_uri: function.code().and_then(|c| c.image_uri()).unwrap_or_default().to_owned(),
        command: configuration
            .and_then(|c| c.image_config_response())
            .and_then(|r| r.image_config())
            .map(|c| c.command().to_vec())
            .unwrap_or_default(),
        memory_mb: configuration
            .and_then(aws_sdk_lambda::types::FunctionConfiguration::memory_size)
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(128),
        timeout: Duration::from_secs(
            configuration
                .and_then(aws_sdk_lambda::types::FunctionConfiguration::timeout)
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(3),
        ),
        environment: configuration
            .and_then(|c| c.environment())
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        reserved_concurrency: reserved.and_then(|n| u32::try_from(n).ok()),
    })
}

/// Sleeps `every` and answers `true`, or answers `false` as soon as `stop` resolves.
async fn sleep_unless_stopped<F: std::future::Future<Output = ()>>(
    every: Duration,
    stop: &mut std::pin::Pin<&mut F>,
) -> bool {
    tokio::select! {
        () = stop.as_mut() => false,
        () = tokio::time::sleep(every) => true,
    }
}

/// Follows the functions' reserved concurrency on the endpoint (`PutFunctionConcurrency`,
/// `DeleteFunctionConcurrency`, "throttle" by reserving 0) every `every`, giving each change
/// to `changed` with the function's name, until `stop` resolves. `known` holds what each
/// function started with. A read that fails keeps what was known.
pub async fn follow_reserved_concurrency(
    config: &SdkConfig,
    mut known: Vec<(String, Option<u32>)>,
    every: Duration,
    mut changed: impl FnMut(&str, Option<u32>),
    stop: impl std::future::Future<Output = ()>,
) {
    let lambda = aws_sdk_lambda::Client::new(config);
    tokio::pin!(stop);
    while sleep_unless_stopped(every, &mut stop).await {
        for (name, reserved) in &mut known {
            let Ok(now) = lambda.get_function_concurrency().function_name(name.as_str()).send().await else { continue };
            let now = now.reserved_concurrent_executions().and_then(|n| u32::try_from(n).ok());
            if now != *reserved {
                *reserved = now;
                changed(name, now);
            }
        }
    }
}

/// Moves each function's alias to the version Terraform's `function_versions` output names
/// (`{"<role>": {"name", "alias", "version"}}`), all of the traffic at once; answers what moved.
pub async fn release_at_once(config: &SdkConfig, function_versions: &str) -> Result<Vec<String>, CloudError> {
    #[derive(serde::Deserialize)]
    struct Published {
        name: String,
        alias: String,
        version: String,
    }
    let published: BTreeMap<String, Published> = serde_json::from_str(function_versions)
        .map_err(|e| CloudError::Unusable(format!("Terraform's function_versions output: {e}")))?;
    let lambda = aws_sdk_lambda::Client::new(config);
    let mut moved = Vec::new();
    for function in published.values() {
        let alias = read_alias(&lambda, &function.name, &function.alias).await?;
        if alias.route == (AliasRoute { version: function.version.clone(), additional: None }) {
            continue;
        }
        lambda
            .update_alias()
            .function_name(&function.name)
            .name(&function.alias)
            .function_version(&function.version)
            .routing_config(aws_sdk_lambda::types::AliasRoutingConfiguration::builder().build())
            .send()
            .await
            .map_err(request_failed("alias"))?;
        moved.push(format!(
            "{}:{} now runs version {} (was {})",
            function.name, function.alias, function.version, alias.route.version
        ));
    }
    Ok(moved)
}

/// Follows the aliases on the endpoint (`UpdateAlias`: a release, a canary's share, a rollback)
/// every `every`, until `stop` resolves. When one moves, the versions it now names that were not
/// read before are read (`GetFunction` with the version) and given to `changed` with the alias's
/// new configuration; `known` holds the aliases as they started, `versions` the (function,
/// version) pairs already read. A read that fails keeps what was known, and is tried again.
pub async fn follow_aliases(
    config: &SdkConfig,
    mut known: Vec<AliasConfig>,
    mut versions: BTreeSet<(String, String)>,
    every: Duration,
    mut changed: impl FnMut(&AliasConfig, Vec<FunctionConfig>),
    stop: impl std::future::Future<Output = ()>,
) {
    let lambda = aws_sdk_lambda::Client::new(config);
    tokio::pin!(stop);
    while sleep_unless_stopped(every, &mut stop).await {
        for alias in &mut known {
            let Ok(now) = read_alias(&lambda, &alias.function_name, &alias.name).await else { continue };
            if now.route == alias.route {
                continue;
            }
            let unread: Vec<&str> = now
                .route
                .versions()
                .filter(|v| !versions.contains(&(now.function_name.clone(), (*v).to_owned())))
                .collect();
            let mut read = Vec::new();
            for version in &unread {
                match read_function(&lambda, &now.function_name, Some(version)).await {
                    Ok(function) => read.push(function),
                    Err(error) => {
                        tracing::warn!(function = %now.function_name, version, %error, "alias moved to a version that could not be read");
                        break;
                    }
                }
            }
            if read.len() < unread.len() {
                continue; // the alias keeps its route until every version it names is known
            }
            versions.extend(read.iter().map(|f| (f.name.clone(), f.version.clone())));
            changed(&now, read);
            *alias = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(image_uri: &str, command: &[&str]) -> FunctionConfig {
        FunctionConfig {
            name: "books-local-projector".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:books-local-projector".into(),
            version: "$LATEST".into(),
            image_uri: image_uri.into(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            memory_mb: 256,
            timeout: Duration::from_secs(10),
            environment: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
            reserved_concurrency: Some(2),
        }
    }

    #[test]
    fn function_names_come_from_arns_and_integration_uris() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:books-local-query/invocations";
        assert_eq!(function_name_of(uri), "books-local-query");
        assert_eq!(function_name_of("arn:aws:lambda:us-east-1:1:function:f:$LATEST"), "f");
        assert_eq!(function_name_of("plain"), "plain");
    }

    #[test]
    fn an_image_unpacked_by_digest_is_preferred_to_its_kind() {
        let rootfs = std::env::temp_dir().join(format!("books-image-root-{}", std::process::id()));
        let hex = "ab".repeat(32);
        let function = config(&format!("1.dkr.ecr.eu-west-1.amazonaws.com/books-dev-query@sha256:{hex}"), &[]);
        assert_eq!(function.image_root(&rootfs), rootfs.join("query"));
        std::fs::create_dir_all(rootfs.join(&hex)).expect("a folder");
        assert_eq!(function.image_root(&rootfs), rootfs.join(&hex));
        std::fs::remove_dir_all(&rootfs).expect("cleaned");
    }

    #[test]
    fn qualifiers_come_from_alias_and_version_arns() {
        let uri = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:books-dev-query:live/invocations";
        assert_eq!(function_of(uri), ("books-dev-query".into(), Some("live".into())));
        assert_eq!(function_of("arn:aws:lambda:eu-west-1:1:function:f:7"), ("f".into(), Some("7".into())));
        assert_eq!(function_of("arn:aws:lambda:eu-west-1:1:function:f:$LATEST"), ("f".into(), None));
        assert_eq!(function_of("f:live"), ("f".into(), Some("live".into())));
        assert_eq!(function_of("f"), ("f".into(), None));
    }

    #[test]
    fn the_image_kind_is_the_repository_suffix() {
        let by_digest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-local-query@sha256:aa";
        assert_eq!(config(by_digest, &[]).image_kind(), "query");
        let by_tag = "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-local-command:abc";
        assert_eq!(config(by_tag, &[]).image_kind(), "command");
    }

    #[test]
    fn the_spec_lays_the_function_out_as_in_its_image() {
        let spec = function_spec(&config("r/books-query@sha256:aa", &["books-projector", "--flag"]), Path::new("/img"));
        assert_eq!(spec.bootstrap, Path::new("/img/var/task/books-projector"));
        assert_eq!(spec.bootstrap_args, ["--flag"]);
        assert_eq!(spec.handler, "books-projector");
        assert_eq!(spec.task_root, Path::new("/img/var/task"));
        assert_eq!(spec.extensions_dir, None, "no such folder here");
        let absolute = function_spec(&config("r/books-query@sha256:aa", &["/var/task/books-query"]), Path::new("/img"));
        assert_eq!(absolute.bootstrap, Path::new("/img/var/task/books-query"));
        assert_eq!(absolute.handler, "books-query");
        assert_eq!(spec.log_group, "/aws/lambda/books-local-projector");
        assert_eq!((spec.memory_mb, spec.timeout, spec.reserved_concurrency), (256, Duration::from_secs(10), Some(2)));
        assert_eq!(spec.environment["A"], "1");
    }

    #[test]
    fn method_setting_keys_name_resource_paths() {
        assert_eq!(method_setting_key("*/*"), "*/*");
        assert_eq!(method_setting_key("~1books~1{id}/GET"), "/books/{id}/GET");
        assert_eq!(method_setting_key("books/GET"), "/books/GET");
    }
}
