//! The seam between the emulated AWS front doors (the REST gateway, the stream poller) and the
//! emulated Lambda service: what a function is, and how to invoke it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

/// One function as Terraform created it in the local AWS endpoint, resolved to the files that
/// stand in for its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Function name, e.g. `books-local-command`.
    pub name: String,
    /// Unqualified function ARN.
    pub arn: String,
    /// Executable started as the runtime (Lambda's `bootstrap`).
    pub bootstrap: PathBuf,
    /// Arguments of the runtime (the rest of the image command, if any).
    pub bootstrap_args: Vec<String>,
    /// Handler name (`_HANDLER`): the image command's first element, e.g. `books-command`.
    pub handler: String,
    /// `LAMBDA_TASK_ROOT` and the runtime's working directory.
    pub task_root: PathBuf,
    /// Folder whose executables start as external extensions (the image's `/opt/extensions`).
    pub extensions_dir: Option<PathBuf>,
    /// Memory size, reported in `platform.report`.
    pub memory_mb: u32,
    /// How long an invocation may run.
    pub timeout: Duration,
    /// The function's own environment variables (from its configuration).
    pub environment: BTreeMap<String, String>,
    /// Most environments at once (reserved concurrency); `None` means the account default.
    pub reserved_concurrency: Option<u32>,
    /// The function's version: `$LATEST`, or the number of a published version.
    pub version: String,
    /// Log group and stream names Lambda would use (`/aws/lambda/<name>`).
    pub log_group: String,
}

/// Where an alias sends its invocations: its version, and with a routing configuration a share
/// of them to one other version (Lambda's weighted alias).
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRoute {
    /// The version the alias names (`FunctionVersion`).
    pub version: String,
    /// `RoutingConfig.AdditionalVersionWeights`: the other version and its share, 0 to 1.
    pub additional: Option<(String, f64)>,
}

impl AliasRoute {
    /// The version one invocation runs, given `draw`, uniform in [0, 1): the additional version
    /// takes the draws below its weight.
    pub fn pick(&self, draw: f64) -> &str {
        match &self.additional {
            Some((version, weight)) if draw < *weight => version,
            _ => &self.version,
        }
    }

    /// Every version it may run.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.version.as_str()).chain(self.additional.as_ref().map(|(v, _)| v.as_str()))
    }
}

/// One invocation request (the `Invoke` API, `RequestResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeRequest {
    /// The function to invoke.
    pub function_name: String,
    /// The version or alias to invoke (the Invoke API's `Qualifier`); `None` is `$LATEST`.
    pub qualifier: Option<String>,
    /// The event, JSON.
    pub payload: Vec<u8>,
    /// `X-Amzn-Trace-Id` to pass as `Lambda-Runtime-Trace-Id`; generated when absent.
    pub trace_id: Option<String>,
    /// Client context, base64 as the Invoke API takes it; the runtime gets the JSON it encodes
    /// in `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// Cognito identity of a mobile SDK caller (JSON), passed as `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
}

/// What became of an invocation, as the Lambda service reports it to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeOutcome {
    /// The runtime posted a response.
    Response(Vec<u8>),
    /// The runtime posted an error (`Unhandled` function error), with its JSON body.
    FunctionError {
        /// `Lambda-Runtime-Function-Error-Type`, e.g. `Runtime.HandlerError`.
        error_type: String,
        /// The error document the runtime posted.
        payload: Vec<u8>,
    },
    /// The function ran past its timeout; the environment was shut down.
    Timeout,
    /// The runtime or init failed (crash, init error, exit); the environment was shut down.
    Failed {
        /// Lambda's error type, e.g. `Runtime.ExitError`.
        error_type: String,
        /// What happened.
        message: String,
    },
    /// No environment could take the invocation (concurrency limit reached).
    Throttled,
    /// No function of that name, or no version or alias of it by that qualifier.
    NotFound,
}

impl InvokeOutcome {
    /// The error type of a function error or a failure, as telemetry reports it.
    pub(crate) fn error_type(&self) -> Option<&str> {
        match self {
            Self::FunctionError { error_type, .. } | Self::Failed { error_type, .. } => Some(error_type),
            _ => None,
        }
    }
}

/// The Lambda service as the front doors see it.
pub trait Invoker: Send + Sync {
    /// Runs one invocation to its outcome.
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome>;
}
