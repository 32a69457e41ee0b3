//! `books-local`: the local cloud. `serve` reads what Terraform created in the local AWS
//! endpoint, starts the Lambda emulator with the binaries laid out as in the images, serves the
//! REST stage and polls the streams until Ctrl-C, then shuts every environment down cleanly;
//! `metrics` prints the EMF values that reached the local CloudWatch Logs; `verify` checks a
//! deployed stage's telemetry and alarms (`make aws-lambda-verify`); `invoke` runs one function
//! once with an event file, in environments of its own, as `sam local invoke` does.
//!
//! ```text
//! books-local serve --endpoint http://127.0.0.1:4566 --rest-api-id abc123 --rootfs .build/rootfs [--ready-file F]
//! books-local invoke query --event events/query-list-books.json [--ready-file .build/local.ready.json]
//! books-local metrics --endpoint http://127.0.0.1:4566 [--log-group-prefix /books/local/]
//! terraform output -json | books-local verify [--url http://127.0.0.1:3000/v1] [--wait-secs 600]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use books_local::cloud::CloudError;
use books_local::cloudwatch::alarms::Evaluator;
use books_local::cloudwatch::emf::Extraction;
use books_local::cloudwatch::MetricSink;
use books_local::gateway::{Gateway, DESCRIPTION_PATH};
use books_local::invoke::{InvokeOutcome, Invoker};
use books_local::lambda::{LambdaService, LambdaSettings};
use books_local::positions::Positions;
use books_local::stream_poller::StreamPoller;
use books_local::watch::{Rebuilt, Watch};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

/// How often the functions' reserved concurrency is read back from the endpoint.
const CONCURRENCY_FOLLOWED: Duration = Duration::from_secs(2);

/// The Books API's local cloud: the unchanged binaries in an emulated Lambda behind an emulated
/// API Gateway, against a local AWS endpoint (moto).
#[derive(Parser)]
#[command(name = "books-local", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the stage Terraform created, until Ctrl-C.
    Serve(ServeArgs),
    /// Print every EMF value in the local CloudWatch Logs, one JSON object per line.
    Metrics(MetricsArgs),
    /// Check a deployed stage (on AWS or in the local cloud): a little read-only traffic with its
    /// key, then its logs, EMF and standard metrics in CloudWatch, and its alarms.
    Verify(VerifyArgs),
    /// Invoke one function once with an event, in environments of its own (freeze, extensions
    /// and telemetry as in `serve`): its lines on standard error as they come, then the platform's
    /// REPORT; the response on standard output. Exits 1 unless the function answered.
    Invoke(InvokeArgs),
}

/// Where the local AWS endpoint is.
#[derive(Args)]
struct Endpoint {
    /// The local AWS endpoint (moto).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: String,
    /// Its region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// The REST API to serve (its id or its name).
    #[arg(long)]
    rest_api_id: String,
    /// Its stage.
    #[arg(long, default_value = "v1")]
    stage: String,
    /// The folder of the images' root file systems (`<rootfs>/<command|query>/var/task/…`).
    #[arg(long)]
    rootfs: PathBuf,
    /// The gateway's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Seconds an environment may stay idle before it is spun down.
    #[arg(long = "idle-timeout-secs", default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Do not freeze environments between invocations (Lambda does; this is for comparison).
    #[arg(long)]
    no_freeze: bool,
    /// Where to write, once serving, what clients need as JSON (base URL, API key, endpoint,
    /// process ids); removed at the end.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// The API's OpenAPI document, to serve at `/openapi.yaml` beside the stage.
    #[arg(long)]
    api_description: Option<PathBuf>,
    /// Watch mode: a source folder whose changes run `--rebuild` (repeatable); functions whose
    /// image folder then holds other files get new environments.
    #[arg(long = "watch", requires = "rebuild")]
    watch: Vec<PathBuf>,
    /// The rebuild of watch mode (`sh -c`): builds and stages the binaries into `--rootfs`.
    #[arg(long)]
    rebuild: Option<String>,
}

#[derive(Args)]
struct MetricsArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Only the log groups whose names start with this.
    #[arg(long, default_value = "/")]
    log_group_prefix: String,
}

#[derive(Args)]
struct VerifyArgs {
    /// `terraform output -json` of the environment, or `-` for standard input.
    #[arg(long, default_value = "-")]
    outputs: String,
    /// The stage's base URL, when not the outputs' `invoke_url` (the local cloud serves it).
    #[arg(long)]
    url: Option<String>,
    /// The region (default: the SDK's chain, e.g. AWS_REGION); the endpoint comes the usual way
    /// (AWS_ENDPOINT_URL for the local cloud).
    #[arg(long)]
    region: Option<String>,
    /// Requests with the key to send.
    #[arg(long, default_value_t = 10)]
    requests: usize,
    /// How long to wait for the telemetry to arrive (CloudWatch takes a minute or two).
    #[arg(long = "wait-secs", default_value_t = 600)]
    wait_secs: u64,
}

#[derive(Args)]
struct InvokeArgs {
    /// The function: its name on the endpoint (`books-local-query`), or the end of one alone
    /// (`query`, `command`, `projector`).
    function: String,
    /// The event: a JSON file, or `-` for standard input (default: `{}`).
    #[arg(long)]
    event: Option<String>,
    /// A running local cloud's ready file, for its endpoint, region and images (default, when no
    /// --endpoint is given: .build/local.ready.json, the one `make run` writes).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// The local AWS endpoint, without a ready file (or AWS_ENDPOINT_URL).
    #[arg(long)]
    endpoint: Option<String>,
    /// Its region, without a ready file.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The folder of the images' root file systems, without a ready file.
    #[arg(long)]
    rootfs: Option<PathBuf>,
}

/// What `serve` writes to its ready file: everything a script or a test needs to talk to it.
#[derive(Serialize)]
struct Ready<'a> {
    /// `http://127.0.0.1:<port>/<stage>`.
    base_url: &'a str,
    /// A key of a usage plan attached to the stage, if there is one.
    api_key: Option<&'a str>,
    /// The local AWS endpoint.
    aws_endpoint_url: &'a str,
    region: &'a str,
    rest_api_id: &'a str,
    stage: &'a str,
    /// The functions it serves.
    functions: Vec<&'a str>,
    /// The images' root file systems it runs them from.
    rootfs: &'a Path,
    /// This process.
    pid: u32,
    /// The local AWS endpoint's process, when `scripts/with-moto` started it (`BOOKS_MOTO_PID`).
    endpoint_pid: Option<u32>,
}

/// Why the local cloud could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Topology(#[from] CloudError),
    #[error("{function} runs {handler} but {} does not exist; build and stage the binaries with `make run`", path.display())]
    MissingBinary { function: String, handler: String, path: PathBuf },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Invocation(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOOKS_LOCAL_LOG")
                .unwrap_or_else(|_| "books_local=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Metrics(args) => metrics(args).await,
        Command::Verify(args) => verify(args).await,
        Command::Invoke(args) => invoke(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("books-local: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn metrics(args: MetricsArgs) -> Result<(), StartError> {
    let aws = books_local::cloud::sdk_config(&args.endpoint.endpoint, &args.endpoint.region).await;
    let points = books_local::emitted::metric_points(&aws, &args.log_group_prefix).await?;
    let mut out = std::io::stdout().lock();
    for point in points {
        let line = serde_json::to_string(&point).map_err(|e| io("metric point")(e.into()))?;
        writeln!(out, "{line}").map_err(io("stdout"))?;
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> Result<(), StartError> {
    let text = if args.outputs == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(io("reading the outputs from standard input"))?
    } else {
        std::fs::read_to_string(&args.outputs).map_err(io(format!("reading {}", args.outputs)))?
    };
    let outputs: serde_json::Value = serde_json::from_str(&text).map_err(|e| io("the outputs")(e.into()))?;
    let deployment = books_local::verify::Deployment::from_outputs(&outputs, args.url.as_deref())
        .map_err(|e| io("the outputs")(std::io::Error::other(e)))?;
    let aws = books_local::cloud::sdk_config_from_environment(args.region.as_deref()).await;
    println!("Verifying {} (waiting up to {} s for its telemetry)", deployment.url, args.wait_secs);
    let checks =
        books_local::verify::verify(&aws, &deployment, args.requests, Duration::from_secs(args.wait_secs)).await;
    for check in &checks {
        println!("  {:<4} {}: {}", if check.ok { "ok" } else { "FAIL" }, check.what, check.found);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        return Err(io("verification")(std::io::Error::other(format!("{failed} of {} checks failed", checks.len()))));
    }
    println!("==> {} checks passed: the deployment's telemetry arrives and no alarm is in ALARM", checks.len());
    Ok(())
}

/// Where `invoke` finds the endpoint and the images: a ready file, or the arguments.
struct InvokeTarget {
    endpoint: String,
    region: String,
    rootfs: PathBuf,
}

fn invoke_target(args: &InvokeArgs) -> Result<InvokeTarget, StartError> {
    let endpoint = args.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let ready_file = match (&args.ready_file, &endpoint) {
        (Some(path), _) => Some(path.clone()),
        (None, None) => Some(PathBuf::from(".build/local.ready.json")),
        (None, Some(_)) => None,
    };
    if let Some(path) = ready_file {
        let text = std::fs::read_to_string(&path).map_err(io(format!(
            "reading {} (start the local cloud with `make run`, or give --endpoint and --rootfs)",
            path.display()
        )))?;
        let ready: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| io(format!("reading {}", path.display()))(e.into()))?;
        let field = |name: &str| ready[name].as_str().map(str::to_owned);
        let missing = |name: &str| io(format!("{}", path.display()))(std::io::Error::other(format!("no {name}")));
        return Ok(InvokeTarget {
            endpoint: field("aws_endpoint_url").ok_or_else(|| missing("aws_endpoint_url"))?,
            region: field("region").unwrap_or_else(|| args.region.clone()),
            rootfs: field("rootfs").map(PathBuf::from).ok_or_else(|| missing("rootfs"))?,
        });
    }
    let rootfs = args.rootfs.clone().ok_or_else(|| {
        io("--rootfs")(std::io::Error::other("without a ready file, --rootfs names the images' root file systems"))
    })?;
    Ok(InvokeTarget { endpoint: endpoint.unwrap_or_default(), region: args.region.clone(), rootfs })
}

/// Reads the event: a file, standard input, or `{}`; it must be JSON, as Lambda's Invoke requires.
fn read_event(event: Option<&str>) -> Result<Vec<u8>, StartError> {
    let bytes = match event {
        None => b"{}".to_vec(),
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(io("reading the event"))?;
            bytes
        }
        Some(path) => std::fs::read(path).map_err(io(format!("reading the event {path}")))?,
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| StartError::Invocation(format!("the event is not JSON (Lambda would refuse it): {e}")))?;
    Ok(bytes)
}

/// The line Lambda writes after each invocation, from its `platform.report`.
fn report_line(report: &telemetry_schema::Report) -> String {
    let metrics = &report.metrics;
    let mut line = format!("REPORT RequestId: {}\tDuration: {:.2} ms", report.request_id, metrics.duration_ms);
    if let Some(billed) = metrics.billed_duration_ms {
        line += &format!("\tBilled Duration: {billed} ms");
    }
    if let Some(size) = metrics.memory_size_mb {
        line += &format!("\tMemory Size: {size} MB");
    }
    if let Some(used) = metrics.max_memory_used_mb {
        line += &format!("\tMax Memory Used: {used} MB");
    }
    if let Some(init) = metrics.init_duration_ms {
        line += &format!("\tInit Duration: {init:.2} ms");
    }
    if let Some(status) = report.status.as_ref().filter(|s| **s != telemetry_schema::Status::Success) {
        line += &format!("\tStatus: {}", status.as_str());
    }
    if let Some(error_type) = &report.error_type {
        line += &format!("\tError Type: {error_type}");
    }
    line
}

async fn invoke(args: InvokeArgs) -> Result<(), StartError> {
    let target = invoke_target(&args)?;
    let payload = read_event(args.event.as_deref())?;
    let aws = books_local::cloud::sdk_config(&target.endpoint, &target.region).await;
    let function = books_local::cloud::read_one_function(&aws, &args.function).await?;
    let name = function.name.clone();
    let spec = function.spec(&target.rootfs.join(function.image_kind()));
    if !spec.bootstrap.is_file() {
        return Err(StartError::MissingBinary { function: name, handler: spec.handler, path: spec.bootstrap });
    }
    let (observer, mut observed) = tokio::sync::mpsc::unbounded_channel();
    let settings = LambdaSettings {
        aws_endpoint_url: Some(target.endpoint.clone()),
        region: target.region.clone(),
        account_id: function.arn.split(':').nth(4).unwrap_or("123456789012").to_owned(),
        observer: Some(observer),
        ..LambdaSettings::default()
    };
    let lambda = LambdaService::new(vec![spec], settings);
    let request = books_local::invoke::InvokeRequest { function_name: name.clone(), payload, ..Default::default() };
    let outcome = lambda.invoke(request).await;
    // SHUTDOWN, as when Lambda spins the environment down: the extensions ship what they hold.
    lambda.shutdown().await;
    while let Ok(observation) = observed.try_recv() {
        if let books_local::lambda::observe::Observation::Report { report, .. } = observation {
            eprintln!("{}", report_line(&report));
        }
    }
    let mut out = std::io::stdout().lock();
    let failure = match outcome {
        InvokeOutcome::Response(body) => {
            out.write_all(&body).and_then(|()| writeln!(out)).map_err(io("stdout"))?;
            return Ok(());
        }
        InvokeOutcome::FunctionError { error_type, payload } => {
            out.write_all(&payload).and_then(|()| writeln!(out)).map_err(io("stdout"))?;
            format!("{name} failed: {error_type} (its error document is on standard output)")
        }
        InvokeOutcome::Timeout => format!("{name} timed out ({} s)", function.timeout.as_secs()),
        InvokeOutcome::Failed { error_type, message } => format!("{name} failed: {error_type}: {message}"),
        InvokeOutcome::Throttled => format!("{name} is throttled (reserved concurrency 0?)"),
        InvokeOutcome::NotFound => format!("no function {name}"),
    };
    Err(StartError::Invocation(failure))
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let endpoint = &args.endpoint;
    let aws = books_local::cloud::sdk_config(&endpoint.endpoint, &endpoint.region).await;
    let topology = books_local::cloud::read(&aws, &args.rest_api_id, &args.stage).await?;

    let mut specs = Vec::new();
    for function in &topology.functions {
        let spec = function.spec(&args.rootfs.join(function.image_kind()));
        if !spec.bootstrap.is_file() {
            return Err(StartError::MissingBinary {
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
    let settings = LambdaSettings {
        aws_endpoint_url: Some(endpoint.endpoint.clone()),
        region: endpoint.region.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        account_id: topology.gateway.account_id.clone(),
        freeze: !args.no_freeze,
        ..LambdaSettings::default()
    };
    // The CloudWatch side: metrics recorded by the gateway, the emulator, the pollers and the
    // EMF extraction, sent to the local endpoint; the alarms evaluated against them. It stops
    // after the environments, so their last logs and metrics are still extracted (the
    // extensions ship at SHUTDOWN), and the publisher last, once nothing records any more.
    let (metrics, recorded) = MetricSink::channel();
    let (cloudwatch_stop, cloudwatch_stopped) = tokio::sync::watch::channel(false);
    let (publisher_stop, publisher_stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Where the stream pollers and the EMF extraction were when the local cloud last stopped (the
    // local endpoint keeps it with the data it describes): they go on from there.
    let positions = match Positions::load(&endpoint.endpoint).await {
        Ok(positions) => positions,
        Err(error) => {
            tracing::warn!(%error, "the readers' positions could not be read: streams and logs are read from their start");
            Positions::default()
        }
    };
    let (transitions, mut transitioned) = tokio::sync::mpsc::unbounded_channel();
    let publisher = tokio::spawn(books_local::cloudwatch::metrics::publish(
        aws_sdk_cloudwatch::Client::new(&aws),
        recorded,
        until_stopped(publisher_stopped),
    ));
    let cloudwatch_tasks = vec![
        tokio::spawn(books_local::cloudwatch::queues::publish_depths(
            aws_sdk_sqs::Client::new(&aws),
            metrics.clone(),
            until_stopped(cloudwatch_stopped.clone()),
        )),
        tokio::spawn(
            Evaluator::new(aws_sdk_cloudwatch::Client::new(&aws), aws_sdk_sns::Client::new(&aws), &endpoint.region)
                .with_transitions(transitions)
                .run(until_stopped(cloudwatch_stopped.clone())),
        ),
        tokio::spawn(async move {
            while let Some(t) = transitioned.recv().await {
                println!("  alarm    : {} {} -> {}: {}", t.alarm, t.from.as_str(), t.to.as_str(), t.reason);
            }
        }),
    ];

    let extraction = tokio::spawn(
        Extraction::new(aws_sdk_cloudwatchlogs::Client::new(&aws), metrics.clone())
            .resuming(positions.logs.clone())
            .run(until_stopped(cloudwatch_stopped.clone())),
    );

    let settings = LambdaSettings { metrics: Some(metrics.clone()), ..settings };
    let reserved = specs.iter().map(|s| (s.name.clone(), s.reserved_concurrency)).collect();
    let lambda = LambdaService::new(specs, settings);
    let invoker: Arc<dyn Invoker> = lambda.clone();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = Vec::new();
    let mut pollers = Vec::new();
    for mapping in topology.mappings.iter().filter(|m| m.enabled) {
        let poller = StreamPoller::new(mapping.clone(), &aws, Arc::clone(&invoker))
            .with_metrics(metrics.clone())
            .with_checkpoints(positions.streams.get(&mapping.uuid).cloned().unwrap_or_default());
        pollers.push((mapping.uuid.clone(), tokio::spawn(poller.run(stopped(stop_rx.clone())))));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.map_err(io("gateway port"))?;
    let port = listener.local_addr().map_err(io("gateway port"))?.port();
    let base_url = format!("http://127.0.0.1:{port}/{}", args.stage);
    let key = topology.gateway.keys.iter().find(|k| k.enabled && k.plan.is_some()).map(|k| k.value.as_str());
    let description = match &args.api_description {
        Some(path) => Some(std::fs::read(path).map_err(io(format!("reading {}", path.display())))?.into()),
        None => None,
    };
    let described = description.is_some().then(|| format!("http://127.0.0.1:{port}{DESCRIPTION_PATH}"));
    let gateway = Gateway::with_metrics(topology.gateway.clone(), Arc::clone(&invoker), metrics.clone(), description);
    gateway.resume_quota_usage(&positions.quotas);
    let counted = Arc::clone(&gateway);
    tasks.push(tokio::spawn(gateway.serve(listener, stopped(stop_rx.clone()))));
    if let Some(rebuild) = args.rebuild.clone().filter(|_| !args.watch.is_empty()) {
        let images = topology.functions.iter().map(|f| (f.name.clone(), args.rootfs.join(f.image_kind()))).collect();
        let watch = Watch { paths: args.watch.clone(), rebuild, images };
        let report = |paths: &[PathBuf], outcome: &Rebuilt| {
            let first = paths.first().map(|p| p.display().to_string()).unwrap_or_default();
            let more = if paths.len() > 1 { format!(" and {} more", paths.len() - 1) } else { String::new() };
            match outcome {
                Rebuilt::Failed { status } => println!(
                    "  watch    : {first}{more} changed; rebuild failed ({status}): the functions keep their code"
                ),
                Rebuilt::Recycled { functions } if functions.is_empty() => {
                    println!("  watch    : {first}{more} changed; rebuilt, no function's code changed");
                }
                Rebuilt::Recycled { functions } => println!(
                    "  watch    : {first}{more} changed; new code for {}: the next invocations start on it",
                    functions.join(", ")
                ),
            }
        };
        let (watched, watch_stop) = (Arc::clone(&lambda), stopped(stop_rx.clone()));
        tasks.push(tokio::spawn(async move {
            if let Err(error) = watch.run(watched, report, watch_stop).await {
                println!("  watch    : {error}: watch mode is off");
            }
        }));
    }
    let (following, follow_stop) = (Arc::clone(&lambda), stopped(stop_rx.clone()));
    let follow_config = aws.clone();
    tasks.push(tokio::spawn(async move {
        let changed = |function: &str, reserved: Option<u32>| {
            following.set_reserved_concurrency(function, reserved);
            match reserved {
                Some(0) => println!("  lambda   : {function}: reserved concurrency 0, every invocation is throttled"),
                Some(n) => println!("  lambda   : {function}: reserved concurrency {n}"),
                None => println!("  lambda   : {function}: reserved concurrency removed (the account's default)"),
            }
        };
        books_local::cloud::follow_reserved_concurrency(
            &follow_config,
            reserved,
            CONCURRENCY_FOLLOWED,
            changed,
            follow_stop,
        )
        .await;
    }));

    if let Some(path) = &args.ready_file {
        let ready = Ready {
            base_url: &base_url,
            api_key: key,
            aws_endpoint_url: &endpoint.endpoint,
            region: &endpoint.region,
            rest_api_id: &topology.gateway.rest_api_id,
            stage: &args.stage,
            functions: topology.functions.iter().map(|f| f.name.as_str()).collect(),
            rootfs: &args.rootfs,
            pid: std::process::id(),
            endpoint_pid: std::env::var("BOOKS_MOTO_PID").ok().and_then(|pid| pid.parse().ok()),
        };
        write_ready_file(path, &ready)?;
    }
    print_banner(&base_url, key, described.as_deref(), args.ready_file.as_deref(), !args.no_freeze)
        .map_err(io("stdout"))?;

    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: stopping the gateway and pollers, spinning environments down");
    let _ = stop_tx.send(true);
    let mut stopped_at = Positions::default();
    for (mapping, poller) in pollers {
        if let Ok(checkpoints) = poller.await {
            stopped_at.streams.insert(mapping, checkpoints);
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    stopped_at.quotas = counted.quota_usage();
    lambda.shutdown().await;
    let _ = cloudwatch_stop.send(true);
    drop(metrics);
    if let Ok(read) = extraction.await {
        stopped_at.logs = read;
    }
    for task in cloudwatch_tasks {
        let _ = task.await;
    }
    if let Err(error) = stopped_at.save(&endpoint.endpoint).await {
        tracing::warn!(%error, "the readers' positions could not be saved: the next start reads streams and logs from their start");
    }
    let _ = publisher_stop.send(true);
    let _ = publisher.await;
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Written whole or not at all: a reader polling for the file never sees half of it.
fn write_ready_file(path: &Path, ready: &Ready<'_>) -> Result<(), StartError> {
    let json = serde_json::to_vec_pretty(ready).map_err(|e| io("ready file")(e.into()))?;
    let staging = path.with_extension("tmp");
    std::fs::write(&staging, json).map_err(io(format!("writing {}", staging.display())))?;
    std::fs::rename(&staging, path).map_err(io(format!("writing {}", path.display())))
}

fn print_banner(
    base_url: &str,
    key: Option<&str>,
    description: Option<&str>,
    ready_file: Option<&Path>,
    freeze: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    writeln!(out, "\nBooks API running locally")?;
    writeln!(out, "  base URL : {base_url}")?;
    match key {
        Some(key) => {
            writeln!(out, "  API key  : {key}")?;
            writeln!(out, "  try      : curl -s -H 'x-api-key: {key}' {base_url}/books")?;
        }
        None => writeln!(out, "  (no API key is attached to a usage plan of this stage)")?,
    }
    if let Some(url) = description {
        writeln!(out, "  OpenAPI  : {url}")?;
    }
    if let Some(path) = ready_file {
        writeln!(out, "  as JSON  : {}", path.display())?;
    }
    let frozen = if freeze { "frozen between invocations" } else { "NOT frozen between invocations (--no-freeze)" };
    writeln!(out, "  Lambda   : environments {frozen}")?;
    writeln!(out, "  memory   : {}", books_local::lambda::MEMORY_ENFORCEMENT)?;
    writeln!(out, "  CloudWatch: EMF becomes metrics, AWS/Lambda and AWS/ApiGateway metrics are published, alarms are evaluated (changes print here)")?;
    writeln!(out, "  Ctrl-C stops it (environments get SHUTDOWN and flush)\n")?;
    out.flush()
}
