//! `books-bench floor`: what our function runtime and books-telemetry cost per invocation
//! against the floor Lambda's protocol sets, side by side in one run in the emulator:
//!
//! - functions without an extension: `bare-function` (the `lambda_runtime` crate's example: one
//!   `next` and one response per invocation, nothing else) and `books-bench-ping` (the Books
//!   functions' runtime, JSON logs and EMF metrics around a handler that calls nothing);
//! - extensions beside `books-bench-ping`: `bare-extension` (the `lambda-extension` crate's
//!   example: registers and waits for events), books-telemetry in its shipped (adaptive) and
//!   background strategies, the latter also with other buffering (Lambda's default delivery
//!   period, larger flushes), and the peer (`bench/peer`).
//!
//! Each has one caller and one environment, frozen between invocations as Lambda does, with
//! the CPU time and memory of the function's and the extension's processes (`/proc`). Then, with
//! `--profile-invocations`, `perf` samples the function and books-telemetry during that many
//! more invocations, and the hottest symbols of each go in the results.
//!
//! It needs nothing deployed, only a local AWS endpoint for books-telemetry's CloudWatch Logs:
//!
//! ```text
//! books-bench floor --bare-function PATH --bare-extension PATH --ping PATH --extension PATH --peer PATH
//!   --out FILE [--invocations 2000] [--profile-invocations 0] [--profile-extension PATH]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use books_local::invoke::FunctionSpec;
use books_local::lambda::LambdaSettings;
use books_testkit::ApiRequest;
use serde_json::{json, Value};

use crate::{call, drain, Error, Variant, WARM_UP};

struct Args {
    endpoint: String,
    bare_function: PathBuf,
    bare_extension: PathBuf,
    ping: PathBuf,
    extension: PathBuf,
    peer: PathBuf,
    out: PathBuf,
    invocations: usize,
    profile_invocations: usize,
    /// The extension `perf` samples: the shipped one is stripped, this can be the same code
    /// with its symbols.
    profile_extension: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, Error> {
    let mut endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let mut paths: HashMap<String, PathBuf> = HashMap::new();
    let (mut invocations, mut profile_invocations) = (2_000, 0);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--endpoint" => endpoint = Some(value),
            "--invocations" => invocations = value.parse()?,
            "--profile-invocations" => profile_invocations = value.parse()?,
            "--bare-function"
            | "--bare-extension"
            | "--ping"
            | "--extension"
            | "--peer"
            | "--out"
            | "--profile-extension" => {
                paths.insert(flag, PathBuf::from(value));
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut required = |flag: &str| paths.remove(flag).ok_or_else(|| format!("{flag} is required"));
    Ok(Args {
        endpoint: endpoint.ok_or("--endpoint (or AWS_ENDPOINT_URL) is required")?,
        bare_function: required("--bare-function")?,
        bare_extension: required("--bare-extension")?,
        ping: required("--ping")?,
        extension: required("--extension")?,
        peer: required("--peer")?,
        out: required("--out")?,
        invocations,
        profile_invocations,
        profile_extension: paths.remove("--profile-extension"),
    })
}

/// The log group books-telemetry and the peer ship to.
const LOG_GROUP: &str = "/books/bench-floor";
const FUNCTION: &str = "books-bench-floor";

/// A function of the environments' settings (256 MB, as the Books functions) running `bootstrap`
/// with the extensions of `extensions` (a folder, every executable of which starts).
fn function(bootstrap: &Path, extensions: Option<PathBuf>) -> FunctionSpec {
    let environment = BTreeMap::from(
        [("BOOKS_TELEMETRY_LOG_GROUP", LOG_GROUP), ("BOOKS_SERVICE", "ping"), ("BOOKS_LOG", "info")]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    FunctionSpec {
        name: FUNCTION.into(),
        arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"),
        bootstrap: bootstrap.to_owned(),
        bootstrap_args: Vec::new(),
        handler: bootstrap.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        task_root: bootstrap.parent().map(Path::to_owned).unwrap_or_default(),
        extensions_dir: extensions,
        memory_mb: 256,
        timeout: Duration::from_secs(10),
        environment,
        reserved_concurrency: None,
        version: "$LATEST".into(),
        log_group: format!("/aws/lambda/{FUNCTION}"),
    }
}

/// A folder holding only `binary` (as `name`): an extensions folder of one extension.
fn extension_folder(root: &Path, name: &str, binary: &Path) -> Result<PathBuf, Error> {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder)?;
    std::fs::copy(binary, folder.join(name))?;
    Ok(folder)
}

pub(crate) async fn run(args: impl Iterator<Item = String>) -> Result<(), Error> {
    let args = parse_args(args)?;
    let canonical = |path: &Path| path.canonicalize().map_err(|e| format!("{}: {e}", path.display()));
    let (bare_function, ping) = (canonical(&args.bare_function)?, canonical(&args.ping)?);
    let folders = args.out.with_extension("extensions");
    let _ = std::fs::remove_dir_all(&folders);
    let bare_extension = extension_folder(&folders, "bare-extension", &args.bare_extension)?;
    let ours = extension_folder(&folders, "books-telemetry", &args.extension)?;
    let peer = extension_folder(&folders, "peer-telemetry", &args.peer)?;

    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let aws = books_local::cloud::sdk_config(&args.endpoint, &region).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    // An endpoint of a previous run may hold it already.
    let _ = logs.create_log_group().log_group_name(LOG_GROUP).send().await;
    let settings = LambdaSettings { aws_endpoint_url: Some(args.endpoint.clone()), ..LambdaSettings::default() };

    let with_ours = function(&ping, Some(ours));
    let variants = [
        Variant::named("bare function", function(&bare_function, None)),
        Variant::named("ping", function(&ping, None)),
        Variant::named("ping, bare extension", function(&ping, Some(bare_extension))),
        Variant::books_telemetry("ping, books-telemetry adaptive", &with_ours, "adaptive", true),
        Variant::books_telemetry("ping, books-telemetry background", &with_ours, "background", true),
        // Its buffering, traded: Lambda's default delivery period instead of the shortest one
        // ours asks for, and flushes only when half the 4 MiB buffer is held (as before 256 KiB).
        Variant::books_telemetry("ping, books-telemetry background, timeoutMs 1000", &with_ours, "background", true)
            .with("BOOKS_TELEMETRY_DELIVERY_TIMEOUT_MS", "1000"),
        Variant::books_telemetry("ping, books-telemetry background, 2 MiB flushes", &with_ours, "background", true)
            .with("BOOKS_TELEMETRY_FLUSH_BYTES", "2097152"),
        Variant::peer(&function(&ping, None), &peer)?,
    ];
    eprintln!("==> the floor: {} warm invocations per variant, in blocks of {}", args.invocations, crate::BLOCK);
    let get = ApiRequest::get("/ping").event();
    let mut report = json!({
        "memory_mb": 256,
        "invocations": crate::invocations(&variants, &settings, &get, args.invocations, &logs).await?,
    });
    if args.profile_invocations > 0 {
        let sampled = args.profile_extension.as_deref().unwrap_or(&args.extension);
        let ours = extension_folder(&folders.join("profile"), "books-telemetry", sampled)?;
        eprintln!(
            "==> the floor: perf samples of ping and books-telemetry over {} invocations",
            args.profile_invocations
        );
        let variant = Variant::named("profile", function(&ping, Some(ours)));
        report["profile"] = profile(&variant, &settings, &get, args.profile_invocations, &args.out).await?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("==> wrote {}", args.out.display());
    Ok(())
}

/// `perf record` of the function's and the extension's processes over `invocations` warm
/// invocations; the samples per process, per object and per symbol.
async fn profile(
    variant: &Variant,
    settings: &LambdaSettings,
    get: &Value,
    invocations: usize,
    out: &Path,
) -> Result<Value, Error> {
    let (service, mut observations) = variant.start(settings);
    for _ in 0..WARM_UP {
        call(&service, &variant.spec.name, get, 200).await?;
        service.idle(&variant.spec.name).await;
    }
    let (inits, _) = drain(&mut observations);
    let init = inits.first().ok_or("the emulator reported no init")?;
    let mut roles = HashMap::new();
    let pids = [("function", init.runtime_pid), ("extension", init.extensions.first().ok_or("no extension")?.pid)];
    for (role, pid) in pids {
        for thread in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            if let Ok(tid) = thread?.file_name().to_string_lossy().parse::<u32>() {
                roles.insert(tid, role);
            }
        }
    }
    let data = out.with_extension("perf.data");
    let recorder = tokio::process::Command::new("perf")
        .args(["record", "-F", "999", "-o"])
        .arg(&data)
        .args(["-p", &format!("{},{}", pids[0].1, pids[1].1)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("perf could not start ({e}). Fix: apt-get install linux-perf"))?;
    // perf says nothing when it is ready: give it the warm-up's time to attach.
    for _ in 0..WARM_UP {
        call(&service, &variant.spec.name, get, 200).await?;
        service.idle(&variant.spec.name).await;
    }
    for _ in 0..invocations {
        call(&service, &variant.spec.name, get, 200).await?;
        service.idle(&variant.spec.name).await;
    }
    let pid = recorder.id().ok_or("perf ended early")?;
    // SAFETY: kill only sends SIGINT (perf's own way to stop and write its file) to perf's pid.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let recorded = recorder.wait_with_output().await?;
    service.shutdown().await;
    if !data.is_file() {
        return Err(format!("perf record wrote nothing: {}", String::from_utf8_lossy(&recorded.stderr)).into());
    }
    let report = |sort: &str| -> Result<Vec<Value>, Error> {
        let output = std::process::Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--percent-limit", "0", "-q", "--sort", sort, "-i"])
            .arg(&data)
            .output()?;
        if !output.status.success() {
            return Err(format!("perf report: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        Ok(by_role(&String::from_utf8_lossy(&output.stdout), &roles))
    };
    Ok(json!({"invocations": invocations, "by_object": report("pid,dso")?, "symbols": report("pid,dso,sym")?}))
}

/// perf's table (`share  tid:command  rest…`) summed per process role and the rest of the key,
/// the largest first.
fn by_role(table: &str, roles: &HashMap<u32, &str>) -> Vec<Value> {
    let mut summed: HashMap<(&str, String), f64> = HashMap::new();
    for line in table.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [share, thread, rest @ ..] = parts.as_slice() else { continue };
        let Some(Ok(share)) = share.strip_suffix('%').map(str::parse::<f64>) else { continue };
        let tid = thread.split(':').next().and_then(|t| t.parse().ok());
        let role = tid.and_then(|t| roles.get(&t).copied()).unwrap_or("other");
        *summed.entry((role, rest.join(" "))).or_default() += share;
    }
    let mut rows: Vec<_> = summed.into_iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows.into_iter().map(|((role, what), share)| json!({"share": share, "role": role, "what": what})).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_rows_are_summed_per_process_role() {
        let table = "    40.00%  101:books-bench-pin  [kernel.kallsyms]  [k] finish_task_switch\n\
                     \x20   25.00%  102:tokio-runtime-w  [kernel.kallsyms]  [k] finish_task_switch\n\
                     \x20   20.00%  201:books-telemetr  books-telemetry  [.] parse\n\
                     \x20   15.00%  999:perf  perf  [.] main\n";
        let roles = HashMap::from([(101, "function"), (102, "function"), (201, "extension")]);
        let rows = by_role(table, &roles);
        assert_eq!(
            rows[0],
            json!({"share": 65.0, "role": "function", "what": "[kernel.kallsyms] [k] finish_task_switch"})
        );
        assert_eq!(rows[1]["role"], "extension");
        assert_eq!(rows[2]["role"], "other");
        assert_eq!(rows.len(), 3);
    }
}
