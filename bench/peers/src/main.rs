//! `books-bench-peers`: the function `make bench` also measures in this project's emulator
//! (`books-bench-ping`, which calls nothing) under two other local Lambda emulators, measured
//! the same way: cold starts (the invocation queued, the process spawned, until its answer; a
//! fresh emulator each time) and warm invocations one after another on one process.
//!
//! - `lambda-simulator` (crates.io): Runtime, Extensions and Telemetry APIs in-process, invoked
//!   through its Rust API as the tests that embed it do;
//! - `cargo lambda watch --only-lambda-apis` (cargo-lambda, PyPI): its Runtime API and its
//!   Invoke API over HTTP; with that flag it builds and starts nothing itself.
//!
//! ```text
//! books-bench-peers --function BIN --cargo-lambda BIN --manifest FILE --out FILE [--cold-starts N] [--invocations N]
//! ```
//!
//! Writes raw samples as JSON for `scripts/bench_report.py`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lambda_simulator::process::{ProcessConfig, ProcessRole};
use lambda_simulator::{InvocationStatus, Simulator};
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

const MEMORY_MB: u32 = 256;
const PATIENCE: Duration = Duration::from_secs(60);

struct Args {
    function: PathBuf,
    cargo_lambda: PathBuf,
    manifest: PathBuf,
    out: PathBuf,
    cold_starts: usize,
    invocations: usize,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = std::env::args().skip(1);
    let (mut function, mut cargo_lambda, mut manifest, mut out) = (None, None, None, None);
    let (mut cold_starts, mut invocations) = (30, 2_000);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--function" => function = Some(PathBuf::from(value)),
            "--cargo-lambda" => cargo_lambda = Some(PathBuf::from(value)),
            "--manifest" => manifest = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--cold-starts" => cold_starts = value.parse()?,
            "--invocations" => invocations = value.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let required = |value: Option<PathBuf>, flag: &str| value.ok_or_else(|| format!("{flag} is required"));
    Ok(Args {
        function: required(function, "--function")?,
        cargo_lambda: required(cargo_lambda, "--cargo-lambda")?,
        manifest: required(manifest, "--manifest")?,
        out: required(out, "--out")?,
        cold_starts,
        invocations,
    })
}

/// The API Gateway (REST, proxy) event of `GET /ping` with the bench's API key, as the local
/// gateway builds it for the function in the own-stack run.
fn event() -> Value {
    json!({
        "resource": "/ping", "path": "/ping", "httpMethod": "GET",
        "headers": {"Host": "127.0.0.1", "x-api-key": "bench"},
        "multiValueHeaders": {"Host": ["127.0.0.1"], "x-api-key": ["bench"]},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": null, "stageVariables": null, "body": null, "isBase64Encoded": false,
        "requestContext": {"resourcePath": "/ping", "httpMethod": "GET", "path": "/v1/ping", "stage": "v1",
            "requestId": "bench", "accountId": "123456789012", "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1", "apiKey": "bench"}},
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn answered_pong(response: &Value) -> Result<(), Error> {
    if response["statusCode"] == 200 && response["body"].as_str().is_some_and(|b| b.contains("pong")) {
        Ok(())
    } else {
        Err(format!("the function answered {response}").into())
    }
}

async fn simulator() -> Result<Simulator, Error> {
    Ok(Simulator::builder().function_name("books-bench-ping").memory_size_mb(MEMORY_MB).build().await?)
}

async fn simulator_invoke(simulator: &Simulator) -> Result<(), Error> {
    let id = simulator.enqueue_payload(event()).await;
    let state = simulator.wait_for_invocation_complete(&id, PATIENCE).await?;
    if state.status != InvocationStatus::Success {
        return Err(format!("lambda-simulator: the invocation ended {:?}", state.status).into());
    }
    answered_pong(&state.response.map(|r| r.payload).unwrap_or_default())
}

fn spawn_on_simulator(
    simulator: &Simulator,
    function: &PathBuf,
) -> Result<lambda_simulator::process::ManagedProcess, Error> {
    Ok(simulator.spawn_process_with_config(ProcessConfig::new(function, ProcessRole::Runtime).inherit_stdio(false))?)
}

/// lambda-simulator: cold starts on a fresh simulator each, then warm invocations on one.
async fn lambda_simulator(function: &PathBuf, cold_starts: usize, invocations: usize) -> Result<Value, Error> {
    let mut cold = Vec::new();
    for _ in 0..cold_starts {
        let simulator = simulator().await?;
        let id = simulator.enqueue_payload(event()).await;
        let started = Instant::now();
        let mut process = spawn_on_simulator(&simulator, function)?;
        let state = simulator.wait_for_invocation_complete(&id, PATIENCE).await?;
        cold.push(ms(started.elapsed()));
        answered_pong(&state.response.map(|r| r.payload).unwrap_or_default())?;
        process.kill()?;
        let _ = process.wait();
        simulator.shutdown().await;
    }
    let simulator = simulator().await?;
    let mut process = spawn_on_simulator(&simulator, function)?;
    simulator_invoke(&simulator).await?; // its cold start, not measured
    let mut warm = Vec::with_capacity(invocations);
    for _ in 0..invocations {
        let started = Instant::now();
        simulator_invoke(&simulator).await?;
        warm.push(ms(started.elapsed()));
    }
    process.kill()?;
    let _ = process.wait();
    simulator.shutdown().await;
    Ok(json!({"cold_ms": cold, "warm_ms": warm}))
}

/// `cargo lambda watch --only-lambda-apis` on a free port of 127.0.0.1, ready once it accepts.
struct CargoLambda {
    server: tokio::process::Child,
    port: u16,
}

impl CargoLambda {
    async fn start(binary: &PathBuf, manifest: &PathBuf) -> Result<Self, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = tokio::process::Command::new(binary)
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
            .arg("--manifest-path")
            .arg(manifest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                return Err("cargo lambda watch did not listen within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { server, port })
    }

    fn spawn(&self, function: &PathBuf) -> Result<tokio::process::Child, Error> {
        Ok(tokio::process::Command::new(function)
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{}/.rt", self.port))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?)
    }

    async fn stop(mut self) {
        let _ = self.server.kill().await;
    }
}

/// One invocation through cargo lambda's Invoke API (its default function, `_`).
async fn cargo_lambda_invoke(client: &reqwest::Client, port: u16) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/_/invocations");
    let response = client.post(url).body(event().to_string()).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("cargo lambda answered {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    answered_pong(&serde_json::from_slice(&body).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// cargo lambda watch: cold starts on a fresh server each (the invocation sent first, waiting in
/// its queue), then warm invocations on one process over one kept-alive connection.
async fn cargo_lambda(
    binary: &PathBuf,
    manifest: &PathBuf,
    function: &PathBuf,
    cold_starts: usize,
    invocations: usize,
) -> Result<Value, Error> {
    let client = reqwest::Client::builder().timeout(PATIENCE).build()?;
    let mut cold = Vec::new();
    for _ in 0..cold_starts {
        let server = CargoLambda::start(binary, manifest).await?;
        let waiting = tokio::spawn({
            let (client, port) = (client.clone(), server.port);
            async move { cargo_lambda_invoke(&client, port).await }
        });
        // The invocation reaches the server's queue before the function starts.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let mut process = server.spawn(function)?;
        waiting.await??;
        cold.push(ms(started.elapsed()));
        let _ = process.kill().await;
        server.stop().await;
    }
    let server = CargoLambda::start(binary, manifest).await?;
    let mut process = server.spawn(function)?;
    cargo_lambda_invoke(&client, server.port).await?; // its cold start, not measured
    let mut warm = Vec::with_capacity(invocations);
    for _ in 0..invocations {
        let started = Instant::now();
        cargo_lambda_invoke(&client, server.port).await?;
        warm.push(ms(started.elapsed()));
    }
    let _ = process.kill().await;
    server.stop().await;
    Ok(json!({"cold_ms": cold, "warm_ms": warm}))
}

fn version(binary: &PathBuf) -> String {
    std::process::Command::new(binary)
        .args(["lambda", "--version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = parse_args()?;
    eprintln!("==> lambda-simulator: {} cold starts, {} warm invocations", args.cold_starts, args.invocations);
    let simulator = lambda_simulator(&args.function, args.cold_starts, args.invocations).await?;
    eprintln!("==> cargo lambda watch: {} cold starts, {} warm invocations", args.cold_starts, args.invocations);
    let watch =
        cargo_lambda(&args.cargo_lambda, &args.manifest, &args.function, args.cold_starts, args.invocations).await?;
    let report = json!({
        "lambda-simulator": {"version": "0.2.0", "samples": simulator},
        "cargo-lambda": {"version": version(&args.cargo_lambda), "samples": watch},
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("==> wrote {}", args.out.display());
    Ok(())
}
