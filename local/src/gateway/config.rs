//! What one REST API stage is made of, as `cloud` reads it from the local AWS endpoint: resources
//! and methods, API keys and the usage plans attached to the stage, method throttling.

use std::collections::BTreeMap;
use std::time::Duration;

/// API Gateway's default (and maximum) integration timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// Token-bucket limits: `rate` tokens per second refill a bucket of `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    /// `DAY`, `WEEK` or `MONTH`, as the API spells them.
    pub fn parse(text: &str) -> Option<Self> {
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
    pub limit: u64,
    pub period: QuotaPeriod,
    /// Requests subtracted from the limit in the first period.
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsagePlan {
    pub id: String,
    pub name: String,
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub value: String,
    pub enabled: bool,
    /// The usage plan attached to this stage that holds the key; `None` makes the key useless here.
    pub plan: Option<UsagePlan>,
}

/// One method of a resource and the function its `AWS_PROXY` integration invokes.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    pub http_method: String,
    pub api_key_required: bool,
    pub function_name: String,
    /// The integration's `timeoutInMillis`, when it sets one.
    pub timeout: Option<Duration>,
    /// Method throttling of the stage: this method's own settings, else the stage's `*/*` ones.
    pub throttle: Option<Throttle>,
}

/// One resource of the REST API.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: String,
    /// Path template, e.g. `/books/{id}` or `/files/{proxy+}`.
    pub path: String,
    /// Methods by HTTP method (`GET`, …, or `ANY`).
    pub methods: BTreeMap<String, Method>,
}

/// Everything the stage needs to serve requests.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    pub rest_api_id: String,
    pub rest_api_name: String,
    pub stage: String,
    pub account_id: String,
    pub deployment_id: Option<String>,
    pub stage_variables: BTreeMap<String, String>,
    /// Media types whose bodies travel base64-encoded (`binaryMediaTypes`).
    pub binary_media_types: Vec<String>,
    pub resources: Vec<Resource>,
    pub keys: Vec<ApiKey>,
    /// Longest wait for an integration; methods may set a shorter one. Tests shorten it.
    pub integration_timeout: Duration,
}

impl GatewayConfig {
    /// The enabled keys that a usage plan of this stage holds: the keys a client can use.
    pub fn usable_keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.iter().filter(|k| k.enabled && k.plan.is_some())
    }
}
