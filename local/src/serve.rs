//! Serving a stage: what `books-local serve` and `books-local up` run once the local AWS endpoint
//! holds what Terraform created. [`Serving::start`] reads the topology, starts the Lambda
//! emulator with the binaries laid out as in the images, the REST stage, the stream pollers and
//! the CloudWatch side; [`Serving::stop`] stops them in the order that loses nothing (the
//! environments get SHUTDOWN before the EMF extraction reads their last lines, the publisher
//! stops last) and hands the readers' positions back to the endpoint.
//!
//! What a user watches is printed on standard output as it happens: alarm transitions, reserved
//! concurrency changes and watch mode's rebuilds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cloud::CloudError;
use crate::cloudwatch::alarms::Evaluator;
use crate::cloudwatch::emf::Extraction;
use crate::cloudwatch::MetricSink;
use crate::gateway::{Gateway, DESCRIPTION_PATH};
use crate::invoke::Invoker;
use crate::lambda::{LambdaService, LambdaSettings};
use crate::positions::Positions;
use crate::stream_poller::StreamPoller;
use crate::watch::{Rebuilt, Watch};

/// How often the functions' reserved concurrency is read back from the endpoint.
const CONCURRENCY_FOLLOWED: Duration = Duration::from_secs(2);
/// How often the aliases are read again: a release or a rollback reaches callers within it.
const ALIASES_FOLLOWED: Duration = Duration::from_secs(1);

/// What to serve, and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The local AWS endpoint.
    pub endpoint: String,
    /// Its region.
    pub region: String,
    /// The REST API to serve (its id or its name).
    pub rest_api_id: String,
    /// Its stage.
    pub stage: String,
    /// The folder of the images' root file systems (`<rootfs>/<command|query>/var/task/…`).
    pub rootfs: PathBuf,
    /// The gateway's port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// How long an environment may stay idle before it is spun down.
    pub idle_timeout: Duration,
    /// Environments frozen between invocations, as Lambda does.
    pub freeze: bool,
    /// The API's OpenAPI document, served at [`DESCRIPTION_PATH`] beside the stage.
    pub api_description: Option<PathBuf>,
    /// Watch mode: source folders whose changes run `rebuild`.
    pub watch: Vec<PathBuf>,
    /// Watch mode's rebuild (`sh -c`): builds and stages the binaries into `rootfs`.
    pub rebuild: Option<String>,
}

impl ServeOptions {
    /// The stage `v1` of `rest_api_id` on `endpoint`, served as `make run` serves it.
    pub fn new(endpoint: &str, rest_api_id: &str, rootfs: &Path) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            region: "us-east-1".to_owned(),
            rest_api_id: rest_api_id.to_owned(),
            stage: "v1".to_owned(),
            rootfs: rootfs.to_owned(),
            port: 3000,
            idle_timeout: Duration::from_secs(300),
            freeze: true,
            api_description: None,
            watch: Vec::new(),
            rebuild: None,
        }
    }
}

/// Everything a script or a test needs to talk to a local cloud: what the ready file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// `http://127.0.0.1:<port>/<stage>`.
    pub base_url: String,
    /// A key of a usage plan attached to the stage, if there is one.
    pub api_key: Option<String>,
    /// The local AWS endpoint.
    pub aws_endpoint_url: String,
    /// Its region.
    pub region: String,
    /// The REST API served.
    pub rest_api_id: String,
    /// Its stage.
    pub stage: String,
    /// The functions it serves.
    pub functions: Vec<String>,
    /// The images' root file systems it runs them from.
    pub rootfs: PathBuf,
    /// The process serving it.
    pub pid: u32,
    /// The local AWS endpoint's process, when known.
    pub endpoint_pid: Option<u32>,
    /// The API's description, when served.
    #[serde(default)]
    pub api_description_url: Option<String>,
}

impl Ready {
    /// Written whole or not at all: a reader polling for the file never sees half of it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let staging = path.with_extension("tmp");
        std::fs::write(&staging, json)?;
        std::fs::rename(&staging, path)
    }

    /// A ready file some local cloud wrote.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }
}

/// Why a stage could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// What Terraform created could not be read.
    #[error(transparent)]
    Topology(#[from] CloudError),
    /// A function's handler is not in its image's root file system.
    #[error("{function} runs {handler} but {} does not exist; build and stage the binaries with `make run`", path.display())]
    MissingBinary {
        /// The function.
        function: String,
        /// Its image's command.
        handler: String,
        /// Where that is in the root file systems.
        path: PathBuf,
    },
    /// A file or the gateway's port.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// A stop signal many tasks wait on.
fn stop_channel() -> (watch::Sender<bool>, impl Fn() -> futures::future::BoxFuture<'static, ()>) {
    let (sender, receiver) = watch::channel(false);
    let stopped = move || -> futures::future::BoxFuture<'static, ()> {
        let mut receiver = receiver.clone();
        Box::pin(async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        })
    };
    (sender, stopped)
}

/// A stage being served, until [`Serving::stop`].
pub struct Serving {
    ready: Ready,
    lambda: Arc<LambdaService>,
    gateway: Arc<Gateway>,
    /// The gateway, the pollers, watch mode and the reserved concurrency follower: stopped first.
    stop_front: watch::Sender<bool>,
    pollers: Vec<(String, JoinHandle<BTreeMap<String, String>>)>,
    front: Vec<JoinHandle<()>>,
    /// Stopped after the environments, so that their last lines are read.
    cloudwatch: CloudWatchSide,
}

/// Where a log reader stopped: per log group, per log stream, the token after the last event.
type LogPositions = BTreeMap<String, BTreeMap<String, String>>;

/// The CloudWatch side of a served stage: metrics recorded by the gateway, the emulator, the
/// pollers and the EMF extraction, sent to the local endpoint; queue depths; the alarms
/// evaluated against them, their transitions printed.
struct CloudWatchSide {
    /// What records metrics holds a clone.
    metrics: MetricSink,
    /// Queue depths, alarms, the EMF extraction.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    extraction: JoinHandle<LogPositions>,
    /// The metric publisher: last, once nothing records any more.
    stop_publisher: watch::Sender<bool>,
    publisher: JoinHandle<()>,
}

impl CloudWatchSide {
    fn start(aws: &aws_config::SdkConfig, region: &str, logs_read: LogPositions) -> Self {
        let (metrics, recorded) = MetricSink::channel();
        let (stop_publisher, publisher_stopped) = stop_channel();
        let publisher = tokio::spawn(crate::cloudwatch::metrics::publish(
            aws_sdk_cloudwatch::Client::new(aws),
            recorded,
            publisher_stopped(),
        ));
        let (stop, stopped) = stop_channel();
        let (transitions, mut transitioned) = tokio::sync::mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(crate::cloudwatch::queues::publish_depths(
                aws_sdk_sqs::Client::new(aws),
                metrics.clone(),
                stopped(),
            )),
            tokio::spawn(
                Evaluator::new(aws_sdk_cloudwatch::Client::new(aws), aws_sdk_sns::Client::new(aws), region)
                    .with_transitions(transitions)
                    .run(stopped()),
            ),
            tokio::spawn(async move {
                while let Some(t) = transitioned.recv().await {
                    println!("  alarm    : {} {} -> {}: {}", t.alarm, t.from.as_str(), t.to.as_str(), t.reason);
                }
            }),
        ];
        let extraction = tokio::spawn(
            Extraction::new(aws_sdk_cloudwatchlogs::Client::new(aws), metrics.clone())
                .resuming(logs_read)
                .run(stopped()),
        );
        Self { metrics, stop, tasks, extraction, stop_publisher, publisher }
    }

    /// Stops reading and evaluating (the extraction reads what the environments wrote last),
    /// hands where the extraction stopped to `save`, then publishes what was recorded last.
    async fn stop<F: std::future::Future<Output = ()>>(self, save: impl FnOnce(LogPositions) -> F) {
        let _ = self.stop.send(true);
        drop(self.metrics);
        let read = self.extraction.await.unwrap_or_default();
        for task in self.tasks {
            let _ = task.await;
        }
        save(read).await;
        let _ = self.stop_publisher.send(true);
        let _ = self.publisher.await;
    }
}

/// Says where an alias now sends its invocations.
fn print_alias(alias: &crate::cloud::AliasConfig) {
    let function = format!("{}:{}", alias.function_name, alias.name);
    match &alias.route.additional {
        Some((other, weight)) => println!(
            "  lambda   : {function} runs version {} and {other} for {:.0}% of invocations",
            alias.route.version,
            weight * 100.0
        ),
        None => println!("  lambda   : {function} runs version {}", alias.route.version),
    }
}

/// Each function as its image holds it; fails on a handler the root file systems lack.
fn function_specs(
    topology: &crate::cloud::Topology,
    rootfs: &Path,
) -> Result<Vec<crate::invoke::FunctionSpec>, ServeError> {
    let mut specs = Vec::new();
    for function in &topology.functions {
        let spec = function.spec(&function.image_root(rootfs));
        if !spec.bootstrap.is_file() {
            return Err(ServeError::MissingBinary {
                function: function.name.clone(),
                handler: spec.handler,
                path: spec.bootstrap,
            });
        }
        tracing::info!(function = %spec.name, bootstrap = %spec.bootstrap.display(),
            extensions = ?spec.extensions_dir, memory_mb = spec.memory_mb, timeout = ?spec.timeout,
            reserved_concurrency = ?spec.reserved_concurrency, "function");
        specs.push(spec);
    }
    Ok(specs)
}

impl Serving {
    /// Reads the stage from the endpoint and serves it; `endpoint_pid` goes into [`Ready`].
    pub async fn start(options: &ServeOptions, endpoint_pid: Option<u32>) -> Result<Self, ServeError> {
        let aws = crate::cloud::sdk_config(&options.endpoint, &options.region).await;
        let topology = crate::cloud::read(&aws, &options.rest_api_id, &options.stage).await?;

        let specs = function_specs(&topology, &options.rootfs)?;
        // What can fail comes before anything starts.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await.map_err(io("gateway port"))?;
        let port = listener.local_addr().map_err(io("gateway port"))?.port();
        let description = match &options.api_description {
            Some(path) => Some(std::fs::read(path).map_err(io(format!("reading {}", path.display())))?.into()),
            None => None,
        };
        // Where the stream pollers and the EMF extraction were when the local cloud last stopped
        // (the local endpoint keeps it with the data it describes): they go on from there.
        let positions = Positions::load(&options.endpoint).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "the readers' positions could not be read: streams and logs are read from their start");
            Positions::default()
        });
        let cloudwatch = CloudWatchSide::start(&aws, &options.region, positions.logs.clone());
        let metrics = cloudwatch.metrics.clone();

        let settings = LambdaSettings {
            aws_endpoint_url: Some(options.endpoint.clone()),
            region: options.region.clone(),
            idle_timeout: options.idle_timeout,
            account_id: topology.gateway.account_id.clone(),
            freeze: options.freeze,
            metrics: Some(metrics.clone()),
            ..LambdaSettings::default()
        };
        let reserved =
            specs.iter().filter(|s| s.version == "$LATEST").map(|s| (s.name.clone(), s.reserved_concurrency)).collect();
        let lambda = LambdaService::new(specs, settings);
        for alias in &topology.aliases {
            lambda.set_alias(&alias.function_name, &alias.name, alias.route.clone());
        }
        let invoker: Arc<dyn Invoker> = lambda.clone();

        let (stop_front, front_stopped) = stop_channel();
        let mut pollers = Vec::new();
        for mapping in topology.mappings.iter().filter(|m| m.enabled) {
            let poller = StreamPoller::new(mapping.clone(), &aws, Arc::clone(&invoker))
                .with_metrics(metrics.clone())
                .with_checkpoints(positions.streams.get(&mapping.uuid).cloned().unwrap_or_default());
            pollers.push((mapping.uuid.clone(), tokio::spawn(poller.run(front_stopped()))));
        }
        let api_description_url = description.is_some().then(|| format!("http://127.0.0.1:{port}{DESCRIPTION_PATH}"));
        let gateway =
            Gateway::with_metrics(topology.gateway.clone(), Arc::clone(&invoker), metrics.clone(), description);
        gateway.resume_quota_usage(&positions.quotas);
        let mut front = vec![tokio::spawn(Arc::clone(&gateway).serve(listener, front_stopped()))];
        if let Some(rebuild) = options.rebuild.clone().filter(|_| !options.watch.is_empty()) {
            let images =
                topology.functions.iter().map(|f| (f.name.clone(), options.rootfs.join(f.image_kind()))).collect();
            let watch = Watch { paths: options.watch.clone(), rebuild, images };
            let (watched, watch_stop) = (Arc::clone(&lambda), front_stopped());
            front.push(tokio::spawn(async move {
                if let Err(error) = watch.run(watched, report_rebuild, watch_stop).await {
                    println!("  watch    : {error}: watch mode is off");
                }
            }));
        }
        let (following, follow_config, follow_stop) = (Arc::clone(&lambda), aws.clone(), front_stopped());
        front.push(tokio::spawn(async move {
            let changed = |function: &str, reserved: Option<u32>| {
                following.set_reserved_concurrency(function, reserved);
                match reserved {
                    Some(0) => {
                        println!("  lambda   : {function}: reserved concurrency 0, every invocation is throttled");
                    }
                    Some(n) => println!("  lambda   : {function}: reserved concurrency {n}"),
                    None => println!("  lambda   : {function}: reserved concurrency removed (the account's default)"),
                }
            };
            crate::cloud::follow_reserved_concurrency(
                &follow_config,
                reserved,
                CONCURRENCY_FOLLOWED,
                changed,
                follow_stop,
            )
            .await;
        }));

        let (following, follow_config, follow_stop) = (Arc::clone(&lambda), aws.clone(), front_stopped());
        let (aliases, rootfs) = (topology.aliases.clone(), options.rootfs.clone());
        let versions = topology.functions.iter().map(|f| (f.name.clone(), f.version.clone())).collect();
        front.push(tokio::spawn(async move {
            let changed = |alias: &crate::cloud::AliasConfig, read: Vec<crate::cloud::FunctionConfig>| {
                for function in read {
                    following.add_version(function.spec(&function.image_root(&rootfs)));
                }
                following.set_alias(&alias.function_name, &alias.name, alias.route.clone());
                print_alias(alias);
            };
            crate::cloud::follow_aliases(&follow_config, aliases, versions, ALIASES_FOLLOWED, changed, follow_stop)
                .await;
        }));

        let ready = Ready {
            base_url: format!("http://127.0.0.1:{port}/{}", options.stage),
            api_key: topology.gateway.keys.iter().find(|k| k.enabled && k.plan.is_some()).map(|k| k.value.clone()),
            aws_endpoint_url: options.endpoint.clone(),
            region: options.region.clone(),
            rest_api_id: topology.gateway.rest_api_id.clone(),
            stage: options.stage.clone(),
            functions: topology.functions.iter().filter(|f| f.version == "$LATEST").map(|f| f.name.clone()).collect(),
            rootfs: options.rootfs.clone(),
            pid: std::process::id(),
            endpoint_pid,
            api_description_url,
        };
        Ok(Self { ready, lambda, gateway, stop_front, pollers, front, cloudwatch })
    }

    /// What clients need to talk to it.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Stops serving: the gateway and the pollers first, then every environment gets SHUTDOWN
    /// (the extensions ship what they hold), then the CloudWatch side reads their last lines and
    /// publishes its last metrics; the readers' positions go back to the endpoint.
    pub async fn stop(self) {
        tracing::info!("shutting down: stopping the gateway and pollers, spinning environments down");
        let _ = self.stop_front.send(true);
        let mut stopped_at = Positions::default();
        for (mapping, poller) in self.pollers {
            if let Ok(checkpoints) = poller.await {
                stopped_at.streams.insert(mapping, checkpoints);
            }
        }
        for task in self.front {
            let _ = task.await;
        }
        stopped_at.quotas = self.gateway.quota_usage();
        self.lambda.shutdown().await;
        let endpoint = self.ready.aws_endpoint_url;
        let save = |logs| async move {
            stopped_at.logs = logs;
            if let Err(error) = stopped_at.save(&endpoint).await {
                tracing::warn!(%error, "the readers' positions could not be saved: the next start reads streams and logs from their start");
            }
        };
        self.cloudwatch.stop(save).await;
        tracing::info!("stopped");
    }
}

/// Watch mode's line after each rebuild.
fn report_rebuild(paths: &[PathBuf], outcome: &Rebuilt) {
    let first = paths.first().map(|p| p.display().to_string()).unwrap_or_default();
    let more = if paths.len() > 1 { format!(" and {} more", paths.len() - 1) } else { String::new() };
    match outcome {
        Rebuilt::Failed { status } => {
            println!("  watch    : {first}{more} changed; rebuild failed ({status}): the functions keep their code");
        }
        Rebuilt::Recycled { functions } if functions.is_empty() => {
            println!("  watch    : {first}{more} changed; rebuilt, no function's code changed");
        }
        Rebuilt::Recycled { functions } => println!(
            "  watch    : {first}{more} changed; new code for {}: the next invocations start on it",
            functions.join(", ")
        ),
    }
}

/// The banner `serve` and `up` print once serving.
pub fn print_banner(ready: &Ready, ready_file: Option<&Path>, freeze: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout();
    let base_url = &ready.base_url;
    writeln!(out, "\nBooks API running locally")?;
    writeln!(out, "  base URL : {base_url}")?;
    match &ready.api_key {
        Some(key) => {
            writeln!(out, "  API key  : {key}")?;
            writeln!(out, "  try      : curl -s -H 'x-api-key: {key}' {base_url}/books")?;
        }
        None => writeln!(out, "  (no API key is attached to a usage plan of this stage)")?,
    }
    if let Some(url) = &ready.api_description_url {
        writeln!(out, "  OpenAPI  : {url}")?;
    }
    if let Some(path) = ready_file {
        writeln!(out, "  as JSON  : {}", path.display())?;
    }
    let frozen = if freeze { "frozen between invocations" } else { "NOT frozen between invocations (--no-freeze)" };
    writeln!(out, "  Lambda   : environments {frozen}")?;
    writeln!(out, "  memory   : {}", crate::lambda::MEMORY_ENFORCEMENT)?;
    writeln!(out, "  AWS      : {} (a local endpoint)", ready.aws_endpoint_url)?;
    writeln!(out, "  CloudWatch: EMF becomes metrics, AWS/Lambda and AWS/ApiGateway metrics are published, alarms are evaluated (changes print here)")?;
    writeln!(out, "  Ctrl-C stops it (environments get SHUTDOWN and flush)\n")?;
    out.flush()
}
