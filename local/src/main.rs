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
use std::path::PathBuf;
use std::time::Duration;

use books_local::cloud::CloudError;
use books_local::invoke::{InvokeOutcome, Invoker};
use books_local::lambda::{LambdaService, LambdaSettings};
use books_local::serve::{ServeError, ServeOptions, Serving};
use books_local::up::{LocalCloud, UpError, UpOptions};
use clap::{Args, Parser, Subcommand};

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
    /// A whole local cloud until Ctrl-C: the local AWS endpoint started, both Terraform roots
    /// applied to it, the stage served (what `make run` runs).
    Up(UpArgs),
    /// Serve the stage Terraform created in a running endpoint, until Ctrl-C.
    Serve(ServeArgs),
    /// Run a command against a local AWS endpoint of its own (moto with our behaviours), stopped
    /// when the command ends, however it ends; its exit status is the command's.
    Endpoint(EndpointArgs),
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

/// How the stage is served (`serve` and `up`).
#[derive(Args)]
struct StageArgs {
    /// The stage.
    #[arg(long, default_value = "v1")]
    stage: String,
    /// The gateway's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Seconds an environment may stay idle before it is spun down.
    #[arg(long = "idle-timeout-secs", default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Do not freeze environments between invocations (Lambda does; this is for comparison).
    #[arg(long)]
    no_freeze: bool,
}

impl StageArgs {
    fn options(&self, endpoint: &Endpoint, rootfs: PathBuf, api_description: Option<PathBuf>) -> ServeOptions {
        ServeOptions {
            endpoint: endpoint.endpoint.clone(),
            region: endpoint.region.clone(),
            rest_api_id: String::new(),
            stage: self.stage.clone(),
            rootfs,
            port: self.port,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            freeze: !self.no_freeze,
            api_description,
            watch: Vec::new(),
            rebuild: None,
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// The REST API to serve (its id or its name).
    #[arg(long)]
    rest_api_id: String,
    /// The folder of the images' root file systems (`<rootfs>/<command|query>/var/task/…`).
    #[arg(long)]
    rootfs: PathBuf,
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
    #[command(flatten)]
    stage: StageArgs,
}

#[derive(Args)]
struct UpArgs {
    /// The project's root (its venv, scripts/moto_server.py, terraform/, api/openapi.yaml).
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Names this cloud's Terraform states and ready file (`<build>/<name>.ready.json`), so
    /// that clouds of different runs share nothing.
    #[arg(long, default_value = "local")]
    name: String,
    /// The build folder (Terraform's states and data, the ready file).
    #[arg(long, default_value = ".build")]
    build: PathBuf,
    /// A local AWS endpoint already running (AWS_ENDPOINT_URL is not read: a cloud starts its own
    /// endpoint unless told).
    #[arg(long)]
    endpoint: Option<String>,
    /// Its region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// The started endpoint's data: resumed from this file when it exists, saved there at the stop.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The started endpoint's log (default `<build>/<name>-endpoint.log`).
    #[arg(long)]
    endpoint_log: Option<PathBuf>,
    /// The environment's Terraform state (default `<build>/terraform/<name>.tfstate`).
    #[arg(long)]
    tfstate: Option<PathBuf>,
    /// The Terraform binary.
    #[arg(long, env = "TERRAFORM", default_value = "terraform")]
    terraform: PathBuf,
    /// The images' root file systems (default `<build>/rootfs`, what `make local-build` stages).
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// At the first Ctrl-C (or SIGINT) stop serving but keep the endpoint answering with the
    /// cloud's data, until SIGTERM or a second Ctrl-C: for checks of what it left behind.
    #[arg(long)]
    linger: bool,
    /// Watch mode: a change under the project's functions/, extension/ or telemetry-schema/ runs
    /// `make local-build` (the debug build, staged into `<build>/rootfs`), and the functions whose
    /// image changed start new environments on the new code.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    stage: StageArgs,
}

/// `books-local endpoint [--state FILE] [--log FILE] -- COMMAND [ARGS...]`
#[derive(Args)]
struct EndpointArgs {
    /// The project's root (its venv and scripts/moto_server.py).
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// The endpoint's data: resumed from this file when it exists, saved there at the stop.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The endpoint's log (default: a file of this process's own in the temporary folder).
    #[arg(long)]
    log: Option<PathBuf>,
    /// The command, after `--`. It sees AWS_ENDPOINT_URL, AWS_REGION and fake credentials as an
    /// AWS SDK or Terraform expects them, BOOKS_TEST_AWS_ENDPOINT for the Rust test support and
    /// BOOKS_MOTO_PID (the endpoint's process).
    #[arg(last = true, required = true)]
    command: Vec<String>,
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

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Topology(#[from] CloudError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Up(#[from] UpError),
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
        Command::Up(args) => up(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Endpoint(args) => {
            return with_endpoint(args).await.unwrap_or_else(|error| {
                eprintln!("books-local: {error}");
                std::process::ExitCode::FAILURE
            })
        }
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
        let ready = books_local::serve::Ready::read(&path).map_err(io(format!(
            "reading {} (start the local cloud with `make run`, or give --endpoint and --rootfs)",
            path.display()
        )))?;
        return Ok(InvokeTarget { endpoint: ready.aws_endpoint_url, region: ready.region, rootfs: ready.rootfs });
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
    let spec = function.spec(&function.image_root(&target.rootfs));
    if !spec.bootstrap.is_file() {
        return Err(ServeError::MissingBinary { function: name, handler: spec.handler, path: spec.bootstrap }.into());
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

/// Resolves at Ctrl-C or SIGTERM.
async fn interrupted() -> Result<(), StartError> {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let options = ServeOptions {
        rest_api_id: args.rest_api_id.clone(),
        watch: args.watch.clone(),
        rebuild: args.rebuild.clone(),
        ..args.stage.options(&args.endpoint, args.rootfs.clone(), args.api_description.clone())
    };
    let endpoint_pid = std::env::var("BOOKS_MOTO_PID").ok().and_then(|pid| pid.parse().ok());
    let serving = Serving::start(&options, endpoint_pid).await?;
    if let Some(path) = &args.ready_file {
        if let Err(error) = serving.ready().write(path) {
            serving.stop().await;
            return Err(io(format!("writing {}", path.display()))(error));
        }
    }
    books_local::serve::print_banner(serving.ready(), args.ready_file.as_deref(), options.freeze)
        .map_err(io("stdout"))?;
    let waited = interrupted().await;
    serving.stop().await;
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    waited
}

async fn up(args: UpArgs) -> Result<(), StartError> {
    // Absolute: the functions, Terraform and the ready file's readers run in other folders.
    let absolute = |path: &PathBuf| std::path::absolute(path).map_err(io(format!("{}", path.display())));
    let optional = |path: &Option<PathBuf>| path.as_ref().map(absolute).transpose();
    let (project, build) = (absolute(&args.project)?, absolute(&args.build)?);
    let endpoint = Endpoint { endpoint: String::new(), region: args.region.clone() };
    let rootfs = optional(&args.rootfs)?.unwrap_or_else(|| build.join("rootfs"));
    let description = Some(project.join("api/openapi.yaml"));
    let mut serve = args.stage.options(&endpoint, rootfs, description);
    if args.watch {
        serve.watch = ["functions", "extension", "telemetry-schema"].iter().map(|f| project.join(f)).collect();
        // A make of its own, not a part of the make that started this one.
        serve.rebuild = Some(format!(
            "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C '{}' --no-print-directory local-build BUILD='{}'",
            project.display(),
            build.display()
        ));
        println!("==> watch mode: a change under functions/, extension/ or telemetry-schema/ rebuilds and reloads");
    }
    let options = UpOptions {
        project,
        name: args.name.clone(),
        build,
        endpoint: args.endpoint.clone(),
        state: optional(&args.state)?,
        endpoint_log: optional(&args.endpoint_log)?,
        tfstate: optional(&args.tfstate)?,
        terraform: args.terraform.clone(),
        serve,
    };
    let cloud = LocalCloud::start(&options).await?;
    println!(
        "    dashboard preview from what it emits: AWS_ENDPOINT_URL={} make dashboard-preview",
        cloud.ready().aws_endpoint_url
    );
    books_local::serve::print_banner(cloud.ready(), Some(cloud.ready_file()), options.serve.freeze)
        .map_err(io("stdout"))?;
    let waited = interrupted().await;
    if !args.linger {
        cloud.stop().await?;
        return waited;
    }
    let endpoint = cloud.stop_serving().await;
    println!(
        "  stopped  : serving stopped; the local AWS endpoint {} keeps answering until Ctrl-C or SIGTERM",
        endpoint.url()
    );
    let lingered = interrupted().await;
    endpoint.stop().await?;
    waited.and(lingered)
}

/// The exit status of a command, as a shell reports it (128 + the signal that ended it).
fn exit_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(1);
    u8::try_from(code).unwrap_or(1)
}

async fn with_endpoint(args: EndpointArgs) -> Result<std::process::ExitCode, StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let log = args
        .log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("books-endpoint.{}.log", std::process::id())));
    let endpoint = books_local::up::Endpoint::start(&args.project, args.state.as_deref(), &log).await?;
    eprintln!("local AWS endpoint on {} (log: {})", endpoint.url(), log.display());
    let variable = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let region = variable("AWS_REGION", "us-east-1");
    let Some((program, arguments)) = args.command.split_first() else {
        endpoint.stop().await?;
        return Err(StartError::Invocation("no command after --".to_owned()));
    };
    let spawned = tokio::process::Command::new(program)
        .args(arguments)
        .env("AWS_ENDPOINT_URL", endpoint.url())
        .env("BOOKS_TEST_AWS_ENDPOINT", endpoint.url())
        .env("BOOKS_MOTO_PID", endpoint.pid().map(|pid| pid.to_string()).unwrap_or_default())
        .env("AWS_REGION", &region)
        .env("AWS_DEFAULT_REGION", &region)
        .env("AWS_ACCESS_KEY_ID", variable("AWS_ACCESS_KEY_ID", "testing"))
        .env("AWS_SECRET_ACCESS_KEY", variable("AWS_SECRET_ACCESS_KEY", "testing"))
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            endpoint.stop().await?;
            return Err(io(format!("running {program}"))(error));
        }
    };
    // A Ctrl-C reaches the command from the terminal: the endpoint stays up while it winds down
    // (the local cloud flushes telemetry to it). SIGTERM and SIGHUP sent to us alone are passed on.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
    let pass_on = |child: &tokio::process::Child, signal: i32| {
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with the pid of our child, not yet reaped.
            unsafe { libc::kill(pid, signal) };
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(io(format!("waiting for {program}")))?,
            _ = interrupt.recv() => {}
            _ = terminate.recv() => pass_on(&child, libc::SIGTERM),
            _ = hangup.recv() => pass_on(&child, libc::SIGHUP),
        }
    };
    let code = exit_status(status);
    match endpoint.stop().await {
        Ok(()) => Ok(std::process::ExitCode::from(code)),
        Err(error) => {
            eprintln!("books-local: {error}");
            Ok(std::process::ExitCode::from(if code == 0 { 1 } else { code }))
        }
    }
}
