//! `books-bench`: what books-telemetry costs a function, measured in the local cloud's Lambda
//! emulator with the release binaries as the images hold them, side by side in one run:
//!
//! - cold starts of the query function without an extension, with books-telemetry and with a
//!   peer extension on the `lambda-extension` crate (`bench/peer`), interleaved round by round;
//! - warm invocations of the same function without an extension, with books-telemetry in each
//!   flush mode and with the peer, interleaved in blocks, with the extensions' memory and CPU.
//!   Each variant has one caller and one environment: a call goes out once the previous one's
//!   post-runtime phase is over, so the caller's latency (response as soon as the runtime posts
//!   it, as in Lambda) and the extension's post-runtime time are measured apart.
//!
//! - with `--ping`, the same cold starts and warm invocations of `books-bench-ping` (a function
//!   that calls nothing, `bench/ping`) without an extension and with books-telemetry: the rows
//!   of this emulator in the comparison with the other local Lambda emulators (`bench/peers`
//!   measures the same binary under them).
//!
//! It reads the deployment Terraform made in the local AWS endpoint (like `books-local`) and
//! writes raw samples as JSON; `scripts/bench_report.py` turns them into `bench/report.md`.
//!
//! `books-bench floor` measures against the floor instead (see `floor.rs`).
//!
//! ```text
//! books-bench --rest-api-id ID --rootfs DIR --peer PATH --out FILE [--cold-starts 30] [--invocations 2000] [--ping PATH]
//! ```

mod floor;
mod proc;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use books_local::cloud::FunctionConfig;
use books_local::invoke::{FunctionSpec, InvokeOutcome, InvokeRequest, Invoker};
use books_local::lambda::observe::{InitTimeline, InvokeTimeline, Observation};
use books_local::lambda::{LambdaService, LambdaSettings};
use books_local::stream_poller::StreamPoller;
use books_testkit::ApiRequest;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

type Error = Box<dyn std::error::Error>;

/// Invocations per variant before its turn passes to the next one.
const BLOCK: usize = 100;
/// Warm-up invocations per variant, not measured.
const WARM_UP: usize = 50;

struct Args {
    endpoint: String,
    rest_api_id: String,
    rootfs: PathBuf,
    peer: PathBuf,
    out: PathBuf,
    cold_starts: usize,
    invocations: usize,
    ping: Option<PathBuf>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = std::env::args().skip(1);
    let mut endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let (mut rest_api_id, mut rootfs, mut peer, mut out, mut ping) = (None, None, None, None, None);
    let (mut cold_starts, mut invocations) = (30, 2_000);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--endpoint" => endpoint = Some(value),
            "--rest-api-id" => rest_api_id = Some(value),
            "--rootfs" => rootfs = Some(value),
            "--peer" => peer = Some(value),
            "--out" => out = Some(value),
            "--cold-starts" => cold_starts = value.parse()?,
            "--invocations" => invocations = value.parse()?,
            "--ping" => ping = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let required = |value: Option<_>, flag: &str| value.ok_or_else(|| format!("{flag} is required"));
    Ok(Args {
        endpoint: required(endpoint, "--endpoint (or AWS_ENDPOINT_URL)")?,
        rest_api_id: required(rest_api_id, "--rest-api-id")?,
        rootfs: required(rootfs, "--rootfs")?.into(),
        peer: required(peer, "--peer")?.into(),
        out: required(out, "--out")?.into(),
        cold_starts,
        invocations,
        ping,
    })
}

/// One way of running the query function: which extension, configured how, and whether its
/// environment is frozen between invocations (as Lambda does) or left running (to compare).
#[derive(Clone)]
struct Variant {
    name: &'static str,
    spec: FunctionSpec,
    freeze: bool,
    /// The log stream books-telemetry ships to, read back to count what arrived.
    log_stream: Option<String>,
}

impl Variant {
    /// The same with one more environment variable (a setting of the extension).
    fn with(mut self, name: &str, value: &str) -> Self {
        self.spec.environment.insert(name.to_owned(), value.to_owned());
        self
    }

    /// `spec` as it is, frozen between invocations.
    fn named(name: &'static str, spec: FunctionSpec) -> Self {
        Self { name, spec, freeze: true, log_stream: None }
    }

    fn without_extension(base: &FunctionSpec) -> Self {
        Self {
            name: "none",
            spec: FunctionSpec { extensions_dir: None, ..base.clone() },
            freeze: true,
            log_stream: None,
        }
    }

    fn books_telemetry(name: &'static str, base: &FunctionSpec, flush: &str, freeze: bool) -> Self {
        let mut spec = base.clone();
        spec.environment.insert("BOOKS_TELEMETRY_FLUSH".into(), flush.into());
        let stream = format!("bench/{}/{}", std::process::id(), name.replace([' ', ','], "-"));
        spec.environment.insert("BOOKS_TELEMETRY_LOG_STREAM".into(), stream.clone());
        Self { name, spec, freeze, log_stream: Some(stream) }
    }

    fn peer(base: &FunctionSpec, dir: &Path) -> Result<Self, Error> {
        let mut spec = FunctionSpec { extensions_dir: Some(dir.to_owned()), ..base.clone() };
        // The crate binds a fixed port on every interface: one per variant, as environments share
        // this machine's network (in Lambda each has its own).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        spec.environment.insert("PEER_TELEMETRY_PORT".into(), port.to_string());
        Ok(Self { name: "peer", spec, freeze: true, log_stream: None })
    }

    /// `books-bench-ping` in the query function's place: its environment, no DynamoDB call.
    fn ping(name: &'static str, base: &FunctionSpec, ping: &Path, with_extension: bool) -> Self {
        let spec = FunctionSpec {
            bootstrap: ping.to_owned(),
            extensions_dir: if with_extension { base.extensions_dir.clone() } else { None },
            ..base.clone()
        };
        Self { name, spec, freeze: true, log_stream: None }
    }

    fn start(&self, settings: &LambdaSettings) -> (Arc<LambdaService>, UnboundedReceiver<Observation>) {
        let (observer, observations) = tokio::sync::mpsc::unbounded_channel();
        let settings = LambdaSettings { observer: Some(observer), freeze: self.freeze, ..settings.clone() };
        (LambdaService::new(vec![self.spec.clone()], settings), observations)
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Invokes the function with an API Gateway event and insists on `expected`.
async fn call(service: &LambdaService, function: &str, event: &Value, expected: u16) -> Result<Value, Error> {
    let request = InvokeRequest {
        function_name: function.to_owned(),
        payload: event.to_string().into_bytes(),
        ..Default::default()
    };
    match service.invoke(request).await {
        InvokeOutcome::Response(body) => {
            let response: Value = serde_json::from_slice(&body)?;
            if response["statusCode"] != expected {
                return Err(format!("{function} answered {response} where {expected} was expected").into());
            }
            Ok(serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null))
        }
        other => Err(format!("{function} failed: {other:?}").into()),
    }
}

/// Creates one book through the command function and waits until the projector made it
/// readable through the query function; returns its id.
async fn seed(
    functions: &[FunctionSpec],
    aliases: &[books_local::cloud::AliasConfig],
    mappings: &[books_local::cloud::EventSourceMapping],
    settings: &LambdaSettings,
    aws: &aws_config::SdkConfig,
) -> Result<String, Error> {
    let find = |role: &str| {
        functions.iter().find(|f| f.name.ends_with(role)).map(|f| f.name.clone()).ok_or(format!("no *{role} function"))
    };
    let (command, query) = (find("-command")?, find("-query")?);
    let service = LambdaService::new(functions.to_vec(), settings.clone());
    // The projector's mapping invokes its alias, as Terraform made it.
    for alias in aliases {
        service.set_alias(&alias.function_name, &alias.name, alias.route.clone());
    }
    let invoker: Arc<dyn Invoker> = service.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pollers: Vec<_> = mappings
        .iter()
        .filter(|m| m.enabled)
        .map(|mapping| {
            let mut stopped = stopped.clone();
            let poller = StreamPoller::new(mapping.clone(), aws, Arc::clone(&invoker));
            tokio::spawn(poller.run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        })
        .collect();
    let isbn = format!("978{:09}", std::process::id() % 1_000_000_000);
    let check: u32 = isbn.chars().enumerate().map(|(i, c)| c.to_digit(10).unwrap_or(0) * [1, 3][i % 2]).sum();
    let book = json!({"title": "The benchmark", "authors": ["Ada Lovelace"], "isbn": format!("{isbn}{}", (10 - check % 10) % 10),
        "published_year": 1843, "tags": ["bench"]});
    let created = call(&service, &command, &ApiRequest::post("/books").json(&book).event(), 201).await?;
    let id = created["id"].as_str().ok_or("the created book has no id")?.to_owned();
    let get = ApiRequest::get(&format!("/books/{id}")).event();
    // The projector starts at the stream's oldest record: after the API runs, thousands of them.
    let deadline = Instant::now() + Duration::from_secs(600);
    while call(&service, &query, &get, 200).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("book {id} did not become readable within 600 s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    for poller in pollers {
        let _ = poller.await;
    }
    service.shutdown().await;
    Ok(id)
}

fn drain(observations: &mut UnboundedReceiver<Observation>) -> (Vec<InitTimeline>, Vec<InvokeTimeline>) {
    let (mut inits, mut invokes) = (Vec::new(), Vec::new());
    while let Ok(observation) = observations.try_recv() {
        match observation {
            Observation::Init(init) => inits.push(init),
            Observation::Invoke(invoke) => invokes.push(invoke),
            Observation::Frozen { .. } | Observation::Thawed { .. } | Observation::Report { .. } => {}
        }
    }
    (inits, invokes)
}

/// Cold starts, round-robin over the variants so that each sees the same machine.
async fn cold_starts(
    variants: &[Variant],
    settings: &LambdaSettings,
    get: &Value,
    rounds: usize,
) -> Result<Value, Error> {
    let mut samples = Vec::new();
    for round in 0..rounds {
        for offset in 0..variants.len() {
            // Rotate who goes first: no variant always follows the same one.
            let variant = &variants[(round + offset) % variants.len()];
            let (service, mut observations) = variant.start(settings);
            let started = Instant::now();
            call(&service, &variant.spec.name, get, 200).await?;
            let first_response = started.elapsed();
            service.shutdown().await;
            let (inits, invokes) = drain(&mut observations);
            let (Some(init), Some(invoke)) = (inits.first(), invokes.first()) else {
                return Err(format!("{}: the emulator reported no init or invocation", variant.name).into());
            };
            let extension = init.extensions.first().map(|e| {
                json!({"name": e.name, "spawned_ms": ms(e.spawned), "registered_ms": ms(e.registered),
                       "subscribed_ms": e.subscribed.map(ms), "ready_ms": e.ready.map(ms),
                       "ready_after_spawn_ms": e.ready_after_spawn().map(ms),
                       "on_cpu_ms": e.main_thread.map(|t| ms(t.on_cpu)),
                       "runqueue_ms": e.main_thread.map(|t| ms(t.runqueue))})
            });
            samples.push(json!({"variant": variant.name, "first_response_ms": ms(first_response),
                "init_ms": ms(init.init), "runtime_ms": ms(invoke.runtime), "post_runtime_ms": ms(invoke.post_runtime),
                "extension": extension}));
        }
        eprintln!("  cold starts: round {}/{rounds}", round + 1);
    }
    Ok(Value::Array(samples))
}

/// What books-telemetry shipped to a variant's stream, against the invocations made: one
/// `platform.report` line per invocation is the rule, so fewer is loss and more is duplication.
async fn shipped(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str, invocations: usize) -> Value {
    // A stream not there yet (nothing shipped) reads as no reports.
    let events = books_testkit::logs::stream_events_ingested(logs, group, stream).await.unwrap_or_default();
    let mut reports = Vec::new();
    let mut delays = Vec::new();
    for (timestamp, ingested, message) in &events {
        let Ok(line) = serde_json::from_str::<Value>(message) else { continue };
        if line["type"] == "platform.report" {
            reports.push(line["record"]["requestId"].as_str().unwrap_or_default().to_owned());
            delays.push(ingested - timestamp);
        }
    }
    let total = reports.len();
    reports.sort();
    reports.dedup();
    json!({"invocations": invocations, "reports": total, "lost": invocations.saturating_sub(reports.len()),
           "duplicated": total - reports.len(), "delay_ms": delays})
}

/// One variant's environment during the warm invocations: its processes and what its caller saw.
struct Running<'a> {
    variant: &'a Variant,
    service: Arc<LambdaService>,
    observations: UnboundedReceiver<Observation>,
    /// The runtime's process (the function) and the first extension's, if any.
    function: Option<u32>,
    extension: Option<u32>,
    client: Vec<f64>,
}

/// A process's figures over the measured invocations: memory (idle, the most seen between
/// blocks, the kernel's high-water mark) and CPU time per invocation.
fn usage_figures(
    idle: Option<proc::Usage>,
    most_rss_kb: u64,
    loaded: Option<proc::Usage>,
    invocations: usize,
) -> Value {
    match (idle, loaded) {
        (Some(idle), Some(loaded)) => json!({
            "rss_idle_kb": idle.rss_kb, "rss_load_kb": most_rss_kb, "rss_peak_kb": loaded.peak_rss_kb,
            "rss_file_kb": loaded.rss_file_kb, "rss_anon_kb": loaded.rss_anon_kb,
            "cpu_ms_per_invocation": (loaded.cpu_ms - idle.cpu_ms) / invocations as f64,
        }),
        _ => Value::Null,
    }
}

/// Warm invocations in blocks, variant after variant, with the memory and CPU of the function's
/// and the extension's processes, and what books-telemetry shipped of them.
async fn invocations(
    variants: &[Variant],
    settings: &LambdaSettings,
    get: &Value,
    total: usize,
    logs: &aws_sdk_cloudwatchlogs::Client,
) -> Result<Value, Error> {
    let mut running = Vec::new();
    for variant in variants {
        let (service, mut observations) = variant.start(settings);
        for _ in 0..WARM_UP {
            call(&service, &variant.spec.name, get, 200).await?;
            service.idle(&variant.spec.name).await;
        }
        let (inits, _) = drain(&mut observations);
        let init = inits.first().ok_or(format!("{}: the emulator reported no init", variant.name))?;
        let extension = init.extensions.first().map(|e| e.pid);
        let function = Some(init.runtime_pid);
        running.push(Running { variant, service, observations, function, extension, client: Vec::new() });
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // let background work settle: idle now
    let now = |pid: Option<u32>| pid.and_then(proc::usage);
    let idle: Vec<_> = running.iter().map(|r| (now(r.function), now(r.extension))).collect();
    let mut most_rss = vec![(0u64, 0u64); running.len()];
    for block in 0..total.div_ceil(BLOCK) {
        for (index, run) in running.iter_mut().enumerate() {
            for _ in 0..BLOCK {
                let started = Instant::now();
                call(&run.service, &run.variant.spec.name, get, 200).await?;
                run.client.push(ms(started.elapsed()));
                // One caller after another on one warm environment: the next call waits for
                // the extension's post-runtime work, as Lambda would not reuse a busy one.
                run.service.idle(&run.variant.spec.name).await;
            }
            let rss = |pid| now(pid).map_or(0, |u| u.rss_kb);
            most_rss[index] = (most_rss[index].0.max(rss(run.function)), most_rss[index].1.max(rss(run.extension)));
        }
        eprintln!("  invocations: {} of {total} per variant", (block + 1) * BLOCK);
    }
    let mut results = serde_json::Map::new();
    for (index, mut run) in running.into_iter().enumerate() {
        let measured_calls = run.client.len();
        let function = usage_figures(idle[index].0, most_rss[index].0, now(run.function), measured_calls);
        let extension = usage_figures(idle[index].1, most_rss[index].1, now(run.extension), measured_calls);
        let (_, invokes) = drain(&mut run.observations);
        let measured = &invokes[invokes.len().saturating_sub(measured_calls)..];
        run.service.shutdown().await;
        let variant = run.variant;
        let shipped = match &variant.log_stream {
            Some(stream) => {
                let group =
                    variant.spec.environment.get("BOOKS_TELEMETRY_LOG_GROUP").ok_or("no telemetry log group")?;
                shipped(logs, group, stream, WARM_UP + measured_calls).await
            }
            None => Value::Null,
        };
        results.insert(
            variant.name.to_owned(),
            json!({
                "freeze": variant.freeze,
                "client_ms": run.client,
                "runtime_ms": measured.iter().map(|i| ms(i.runtime)).collect::<Vec<_>>(),
                "post_runtime_ms": measured.iter().map(|i| ms(i.post_runtime)).collect::<Vec<_>>(),
                "function": function,
                "extension": extension,
                "shipped": shipped,
            }),
        );
    }
    Ok(Value::Object(results))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::args().nth(1).as_deref() == Some("floor") {
        return floor::run(std::env::args().skip(2)).await;
    }
    let args = parse_args()?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let aws = books_local::cloud::sdk_config(&args.endpoint, &region).await;
    let topology = books_local::cloud::read(&aws, &args.rest_api_id, "v1").await?;
    let spec = |function: &FunctionConfig| function.spec(&args.rootfs.join(function.image_kind()));
    let functions: Vec<FunctionSpec> = topology.functions.iter().map(spec).collect();
    // The variants are the query function's $LATEST with other extensions (the functions' other
    // versions, which the API's alias names, are for the seeding below).
    let query = functions
        .iter()
        .find(|f| f.name.ends_with("-query") && f.version == "$LATEST")
        .ok_or("no query function")?
        .clone();
    if !query.extensions_dir.as_ref().is_some_and(|d| d.join("books-telemetry").is_file()) {
        return Err(format!("{} has no books-telemetry in {:?}", query.name, query.extensions_dir).into());
    }
    // The peer alone in a folder next to the results: the emulator starts every executable of a
    // function's extensions folder.
    let peer_dir = args.out.with_extension("peer");
    std::fs::create_dir_all(&peer_dir)?;
    std::fs::copy(&args.peer, peer_dir.join("peer-telemetry"))?;
    let settings = LambdaSettings {
        aws_endpoint_url: Some(args.endpoint.clone()),
        account_id: topology.gateway.account_id.clone(),
        ..LambdaSettings::default()
    };

    eprintln!("==> seeding one book through the command function and the projector");
    let id = seed(&functions, &topology.aliases, &topology.mappings, &settings, &aws).await?;
    let get = ApiRequest::get(&format!("/books/{id}")).event();

    let cold = [
        Variant::without_extension(&query),
        Variant::books_telemetry("books-telemetry", &query, "adaptive", true),
        Variant::peer(&query, &peer_dir)?,
    ];
    eprintln!("==> {} cold starts per variant", args.cold_starts);
    let cold_samples = cold_starts(&cold, &settings, &get, args.cold_starts).await?;

    let warm = [
        Variant::without_extension(&query),
        Variant::books_telemetry("books-telemetry end", &query, "end", true),
        Variant::books_telemetry("books-telemetry background", &query, "background", true),
        Variant::books_telemetry("books-telemetry adaptive", &query, "adaptive", true),
        // The same strategies with the environment left running between invocations: what
        // freezing changes (a background flush suspended mid-request until the next thaw).
        Variant::books_telemetry("books-telemetry end, no freeze", &query, "end", false),
        Variant::books_telemetry("books-telemetry background, no freeze", &query, "background", false),
        Variant::books_telemetry("books-telemetry adaptive, no freeze", &query, "adaptive", false),
        Variant::peer(&query, &peer_dir)?,
    ];
    eprintln!("==> {} warm invocations per variant, in blocks of {BLOCK}", args.invocations);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let warm_samples = invocations(&warm, &settings, &get, args.invocations, &logs).await?;

    let mut report = json!({"function": query.name, "memory_mb": query.memory_mb, "cold_starts": cold_samples, "invocations": warm_samples});
    if let Some(ping) = &args.ping {
        let ping = ping.canonicalize()?;
        let variants =
            [Variant::ping("ping", &query, &ping, false), Variant::ping("ping books-telemetry", &query, &ping, true)];
        eprintln!("==> books-bench-ping, for the comparison with other emulators: {} cold starts and {} warm invocations per variant", args.cold_starts, args.invocations);
        let get = ApiRequest::get("/ping").event();
        report["ping"] = json!({
            "cold_starts": cold_starts(&variants, &settings, &get, args.cold_starts).await?,
            "invocations": invocations(&variants, &settings, &get, args.invocations, &logs).await?,
        });
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("==> wrote {}", args.out.display());
    Ok(())
}
