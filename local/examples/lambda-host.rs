//! `lambda-host`: hosts one function in the emulated Lambda service, invokes it once with the
//! event given, prints the response and then waits to be killed. The conformance tests kill it
//! with SIGKILL (no destructor runs) to show that nothing its environments started outlives it.
//!
//! Usage: `lambda-host <bootstrap> <runtime script> <task root> <extensions folder|-> <event>`;
//! `FIXTURE_STATE` and `FIXTURE_EXTENSION_LOG` are handed to the function.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use books_local::invoke::{FunctionSpec, InvokeOutcome, InvokeRequest, Invoker};
use books_local::lambda::{LambdaService, LambdaSettings};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, script, task_root, extensions, event] = args.as_slice() else {
        eprintln!("usage: lambda-host <bootstrap> <runtime script> <task root> <extensions folder|-> <event>");
        std::process::exit(2);
    };
    let environment: BTreeMap<String, String> =
        std::env::vars().filter(|(name, _)| name.starts_with("FIXTURE_")).collect();
    let spec = FunctionSpec {
        name: "hosted".into(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:hosted".into(),
        bootstrap: PathBuf::from(bootstrap),
        bootstrap_args: vec![script.clone()],
        handler: "runtime.py".into(),
        task_root: PathBuf::from(task_root),
        extensions_dir: (extensions != "-").then(|| PathBuf::from(extensions)),
        memory_mb: 256,
        timeout: Duration::from_secs(30),
        environment,
        reserved_concurrency: Some(1),
        version: "$LATEST".into(),
        log_group: "/aws/lambda/hosted".into(),
    };
    // Not frozen: an orphaned process group with a stopped member gets SIGHUP from the kernel
    // (and would end without help); a running environment is the case to prove.
    let settings = LambdaSettings {
        aws_endpoint_url: Some("http://127.0.0.1:9".into()),
        freeze: false,
        ..LambdaSettings::default()
    };
    let service = LambdaService::new(vec![spec], settings);
    let request =
        InvokeRequest { function_name: "hosted".into(), payload: event.clone().into_bytes(), ..Default::default() };
    match service.invoke(request).await {
        InvokeOutcome::Response(body) => println!("{}", String::from_utf8_lossy(&body)),
        other => println!("{other:?}"),
    }
    std::future::pending::<()>().await;
}
