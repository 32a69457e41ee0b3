//! `books-local`: the local cloud. Reads what Terraform created in the local AWS endpoint,
//! starts the Lambda emulator with the binaries laid out as in the images, serves the REST
//! stage and polls the streams, until Ctrl-C; then shuts every environment down cleanly.
//!
//! ```text
//! books-local --endpoint http://127.0.0.1:4566 --rest-api-id abc123 --rootfs .build/rootfs [--stage v1] [--port 3000]
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use books_local::gateway::Gateway;
use books_local::invoke::Invoker;
use books_local::lambda::{LambdaService, LambdaSettings};
use books_local::stream_poller::StreamPoller;

struct Args {
    endpoint: String,
    rest_api_id: String,
    stage: String,
    rootfs: PathBuf,
    port: u16,
    region: String,
    idle_timeout: Duration,
}

fn usage(problem: &str) -> ! {
    eprintln!("books-local: {problem}");
    eprintln!("usage: books-local --endpoint URL --rest-api-id ID --rootfs DIR [--stage v1] [--port 3000] [--idle-timeout-secs 300]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let (mut rest_api_id, mut rootfs) = (None, None);
    let (mut stage, mut port, mut idle) = ("v1".to_owned(), 3000u16, 300u64);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--endpoint" => endpoint = Some(value()),
            "--rest-api-id" => rest_api_id = Some(value()),
            "--stage" => stage = value(),
            "--rootfs" => rootfs = Some(PathBuf::from(value())),
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port must be a number")),
            "--idle-timeout-secs" => {
                idle = value().parse().unwrap_or_else(|_| usage("--idle-timeout-secs must be a number"))
            }
            "-h" | "--help" => usage("runs the Books API locally"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    Args {
        endpoint: endpoint.unwrap_or_else(|| usage("--endpoint (or AWS_ENDPOINT_URL) is required")),
        rest_api_id: rest_api_id.unwrap_or_else(|| usage("--rest-api-id is required")),
        stage,
        rootfs: rootfs.unwrap_or_else(|| usage("--rootfs is required")),
        port,
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        idle_timeout: Duration::from_secs(idle),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOOKS_LOCAL_LOG")
                .unwrap_or_else(|_| "books_local=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args();
    let aws = books_local::cloud::sdk_config(&args.endpoint, &args.region).await;
    let topology = books_local::cloud::read(&aws, &args.rest_api_id, &args.stage).await?;

    let mut specs = Vec::new();
    for function in &topology.functions {
        let root = args.rootfs.join(function.image_kind());
        let spec = function.spec(&root);
        if !spec.bootstrap.is_file() {
            return Err(format!(
                "{} runs {} but {} does not exist; build and stage the binaries with `make run`",
                function.name,
                spec.handler,
                spec.bootstrap.display()
            )
            .into());
        }
        tracing::info!(function = %spec.name, bootstrap = %spec.bootstrap.display(),
            extensions = ?spec.extensions_dir, memory_mb = spec.memory_mb, timeout = ?spec.timeout,
            reserved_concurrency = ?spec.reserved_concurrency, "function");
        specs.push(spec);
    }
    let settings = LambdaSettings {
        aws_endpoint_url: Some(args.endpoint.clone()),
        region: args.region.clone(),
        idle_timeout: args.idle_timeout,
        account_id: topology.gateway.account_id.clone(),
        ..LambdaSettings::default()
    };
    let lambda = LambdaService::new(specs, settings);
    let invoker: Arc<dyn Invoker> = lambda.clone();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = Vec::new();
    for mapping in topology.mappings.iter().filter(|m| m.enabled) {
        let poller = StreamPoller::new(mapping.clone(), &aws, Arc::clone(&invoker));
        tasks.push(tokio::spawn(poller.run(stopped(stop_rx.clone()))));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let base_url = format!("http://127.0.0.1:{}/{}", listener.local_addr()?.port(), args.stage);
    let key = topology.gateway.keys.iter().find(|k| k.enabled && k.plan.is_some()).map(|k| k.value.clone());
    let gateway = Gateway::new(topology.gateway.clone(), Arc::clone(&invoker));
    tasks.push(tokio::spawn(gateway.serve(listener, stopped(stop_rx.clone()))));

    let mut out = std::io::stdout();
    writeln!(out, "\nBooks API running locally")?;
    writeln!(out, "  base URL : {base_url}")?;
    match &key {
        Some(key) => {
            writeln!(out, "  API key  : {key}")?;
            writeln!(out, "  try      : curl -s -H 'x-api-key: {key}' {base_url}/books")?;
        }
        None => writeln!(out, "  (no API key is attached to a usage plan of this stage)")?,
    }
    writeln!(out, "  Ctrl-C stops it (environments get SHUTDOWN and flush)\n")?;
    out.flush()?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: stopping the gateway and pollers, spinning environments down");
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    lambda.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
