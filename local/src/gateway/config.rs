//! What one REST API stage is made of, as `cloud` reads it from the local AWS endpoint: resources
//! and methods, API keys and the usage plans attached to the stage, method throttling.

use std::collections::BTreeMap;
use std::time::Duration;

/// API Gateway's default (and maximum) integration timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// Token-bucket limits: `rate` tokens per second refill a bucket of `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Tokens added per second.
    pub rate: f64,
    /// The bucket's capacity.
    pub burst: u32,
}

/// The period a quota counts over (UTC calendar periods, as API Gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// A calendar day.
    Day,
    /// A week from Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl QuotaPeriod {
    /// `DAY`, `WEEK` or `MONTH`, as the API spells them.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "DAY" => Some(Self::Day),
            "WEEK" => Some(Self::Week),
            "MONTH" => Some(Self::Month),
            _ => None,
        }
    }
}

/// A usage plan's request quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per period.
    pub limit: u64,
    /// The period.
    pub period: QuotaPeriod,
    /// Requests subtracted from the limit in the first period.
    pub offset: u64,
}

/// A usage plan attached to the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct UsagePlan {
    /// Its id.
    pub id: String,
    /// Its name.
    pub(crate) name: String,
    /// Its token bucket, if it throttles.
    pub throttle: Option<Throttle>,
    /// Its quota, if it has one.
    pub quota: Option<Quota>,
}

/// An API key of the account.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Its id.
    pub id: String,
    /// Its name.
    pub(crate) name: String,
    /// The value clients send in `x-api-key`.
    pub value: String,
    /// A disabled key is refused.
    pub enabled: bool,
    /// The usage plan attached to this stage that holds the key; `None` makes the key useless here.
    pub plan: Option<UsagePlan>,
}

/// One method of a resource and the function its `AWS_PROXY` integration invokes.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// `GET`, `POST`, … or `ANY`.
    pub http_method: String,
    /// Whether the method needs a valid key (`apiKeyRequired`).
    pub api_key_required: bool,
    /// The function its integration invokes.
    pub function_name: String,
    /// The alias or version its integration invokes (`…:function:<name>:live`); `None` is `$LATEST`.
    pub qualifier: Option<String>,
    /// The integration's `timeoutInMillis`, when it sets one.
    pub timeout: Option<Duration>,
    /// Method throttling of the stage: this method's own settings, else the stage's `*/*` ones.
    pub throttle: Option<Throttle>,
}

/// One resource of the REST API.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Its id.
    pub id: String,
    /// Path template, e.g. `/books/{id}` or `/files/{proxy+}`.
    pub path: String,
    /// Methods by HTTP method (`GET`, …, or `ANY`).
    pub methods: BTreeMap<String, Method>,
}

/// Everything the stage needs to serve requests.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// The REST API's id.
    pub rest_api_id: String,
    /// Its name.
    pub rest_api_name: String,
    /// The stage served (`v1`).
    pub stage: String,
    /// The account (`requestContext.accountId`).
    pub account_id: String,
    /// The stage's deployment.
    pub deployment_id: Option<String>,
    /// The stage's variables (`stageVariables`).
    pub stage_variables: BTreeMap<String, String>,
    /// Media types whose bodies travel base64-encoded (`binaryMediaTypes`).
    pub binary_media_types: Vec<String>,
    /// Every resource of the REST API.
    pub resources: Vec<Resource>,
    /// Every API key, with its usage plan on this stage.
    pub keys: Vec<ApiKey>,
    /// Longest wait for an integration; methods may set a shorter one. Tests shorten it.
    pub integration_timeout: Duration,
    /// The stage's detailed CloudWatch metrics (`*/*` `metricsEnabled`): `AWS/ApiGateway`
    /// metrics per method and resource besides those per API and stage.
    pub(crate) detailed_metrics: bool,
    /// The region (in the `execute-api` ARNs a resource policy names).
    pub(crate) region: String,
    /// The REST API's resource policy, when it has one.
    pub resource_policy: Option<super::ResourcePolicy>,
}

impl GatewayConfig {
    /// The enabled keys that a usage plan of this stage holds: the keys a client can use.
    pub fn usable_keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.iter().filter(|k| k.enabled && k.plan.is_some())
    }
}
