//! A whole local cloud in one call, as `books-local up` (and so `make run`) starts it: the local
//! AWS endpoint (`scripts/moto_server.py` from the project's venv, resuming its saved data), the
//! two Terraform root modules applied to it as to AWS (the environment's, then the API keys' in
//! its usage plans), then the stage served ([`crate::serve`]) and its ready file written.
//! [`LocalCloud::stop`] undoes it in order: serving stops (every environment flushes), then the
//! endpoint saves its data and stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::serve::{Ready, ServeError, ServeOptions, Serving};

/// How long the endpoint may take to answer after it was started (a loaded machine imports
/// moto and reads a saved state of tens of megabytes first).
const ENDPOINT_START: Duration = Duration::from_secs(180);
/// How long it may take to save its data and stop.
const ENDPOINT_STOP: Duration = Duration::from_secs(300);
/// What `scripts/local_endpoint/persistence.py` prints once the data is saved.
const SAVED: &str = "local state saved in";

/// Why a local cloud could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The project's venv (with moto) is missing.
    #[error("the project's venv has no {}.\n       fix: make venv   (the pinned moto[server] from requirements.txt)", .0.display())]
    NoVenv(PathBuf),
    /// The endpoint did not answer in time.
    #[error("the local endpoint did not answer on {url} within {} s; its log ({}) ends:\n{tail}", ENDPOINT_START.as_secs(), log.display())]
    EndpointDidNotStart {
        /// Where it was to answer.
        url: String,
        /// Its log.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// The endpoint was to save its data and did not.
    #[error("the local endpoint did not save its data in {}; its log ({}) ends:\n{tail}", state.display(), log.display())]
    NotSaved {
        /// Where it was to save it.
        state: PathBuf,
        /// Its log.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// Saved data without the Terraform state that created it.
    #[error("the local data was saved without the Terraform state that created it ({}).\n       fix: make run FRESH=1   (starts with an empty local cloud)", .0.display())]
    NoTerraformState(PathBuf),
    /// A Terraform command failed.
    #[error("terraform {step} failed:\n{output}")]
    Terraform {
        /// Which command, in which root.
        step: String,
        /// All it printed.
        output: String,
    },
    /// The stage could not be served.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The functions' aliases could not be moved to the versions Terraform published.
    #[error("releasing the published versions: {0}")]
    Release(#[from] crate::cloud::CloudError),
    /// A file, a port or a process.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpError {
    let what = what.into();
    move |source| UpError::Io { what, source }
}

/// The last lines of a log, for an error.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The local AWS endpoint a local cloud talks to: one it started, or one already running.
pub struct Endpoint {
    url: String,
    started: Option<Started>,
}

/// An endpoint process of ours.
struct Started {
    child: std::process::Child,
    log: PathBuf,
    state: Option<PathBuf>,
}

impl Endpoint {
    /// One already running (`books-local endpoint`'s, or a test's): never stopped by us.
    pub fn running(url: &str) -> Self {
        Self { url: url.trim_end_matches('/').to_owned(), started: None }
    }

    /// Starts `scripts/moto_server.py` of `project` on a free port, from the data saved in
    /// `state` when there is some (and saving there when it stops), its output in `log`.
    ///
    /// In a process group of its own, so that the Ctrl-C meant for us does not stop the endpoint
    /// we still flush telemetry to; and ended by the kernel (SIGTERM, so it saves) if we die.
    pub async fn start(project: &Path, state: Option<&Path>, log: &Path) -> Result<Self, UpError> {
        let python = project.join(".venv/bin/python");
        if !python.is_file() {
            return Err(UpError::NoVenv(python));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("a free port for the local endpoint"))?
            .port();
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        }
        if let Some(parent) = state.and_then(Path::parent) {
            std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        }
        let output = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
        let errors = output.try_clone().map_err(io(format!("opening {}", log.display())))?;
        let mut command = std::process::Command::new(&python);
        command
            .arg(project.join("scripts/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(state.map(|s| vec!["--state".as_ref(), s.as_os_str()]).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors);
        let child = spawn_bound_to_us(command).map_err(io(format!("starting {}", python.display())))?;
        let endpoint = Self {
            url: format!("http://127.0.0.1:{port}"),
            started: Some(Started { child, log: log.to_owned(), state: state.map(Path::to_owned) }),
        };
        endpoint.wait_until_answering().await?;
        Ok(endpoint)
    }

    async fn wait_until_answering(&self) -> Result<(), UpError> {
        let deadline = Instant::now() + ENDPOINT_START;
        let probe = || async {
            let request = http::Request::get(format!("{}/moto-api/", self.url))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .ok()?;
            crate::http_util::client().request(request).await.ok()
        };
        loop {
            if probe().await.is_some() {
                return Ok(());
            }
            let log = self.started.as_ref().map(|s| s.log.clone()).unwrap_or_default();
            if Instant::now() > deadline {
                return Err(UpError::EndpointDidNotStart { url: self.url.clone(), tail: tail(&log), log });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its process, when we started it.
    pub fn pid(&self) -> Option<u32> {
        self.started.as_ref().map(|s| s.child.id())
    }

    /// Stops an endpoint we started (SIGTERM: it saves its data first); one already running is
    /// left as it is. Fails when the data was to be saved and was not.
    pub async fn stop(self) -> Result<(), UpError> {
        let Some(Started { mut child, log, state }) = self.started else { return Ok(()) };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + ENDPOINT_STOP;
        let exited = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
            }
        };
        let Some(state) = state else { return Ok(()) };
        if exited && std::fs::read_to_string(&log).is_ok_and(|text| text.contains(SAVED)) {
            eprintln!("local data saved in {} (the next start resumes from it)", state.display());
            Ok(())
        } else {
            Err(UpError::NotSaved { state, tail: tail(&log), log })
        }
    }
}

/// Spawns `command` from a thread that lives as long as the process: PR_SET_PDEATHSIG fires
/// when the spawning *thread* ends, and the child must end with the process, not before.
fn spawn_bound_to_us(mut command: std::process::Command) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    receiver.recv().unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread ended")))
}

/// What `books-local up` starts.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The project's root: its venv, `scripts/moto_server.py`, `terraform/`.
    pub project: PathBuf,
    /// Names the Terraform states and data folders under `<build>/terraform` and the ready file
    /// `<build>/<name>.ready.json`, so that local clouds of different runs share nothing.
    pub name: String,
    /// The build folder: Terraform's states and data folders, the ready file.
    pub build: PathBuf,
    /// A local AWS endpoint already running; otherwise one is started.
    pub endpoint: Option<String>,
    /// The started endpoint's saved data (resumed, and saved again at the stop).
    pub state: Option<PathBuf>,
    /// The started endpoint's log (default `<build>/<name>-endpoint.log`).
    pub endpoint_log: Option<PathBuf>,
    /// The environment's Terraform state (default `<build>/terraform/<name>.tfstate`); the keys
    /// root's is beside it (`.keys`).
    pub tfstate: Option<PathBuf>,
    /// The Terraform binary.
    pub terraform: PathBuf,
    /// How to serve; its endpoint and REST API are filled in.
    pub serve: ServeOptions,
}

impl UpOptions {
    fn tfstate(&self) -> PathBuf {
        self.tfstate.clone().unwrap_or_else(|| self.build.join("terraform").join(format!("{}.tfstate", self.name)))
    }

    /// Where a running cloud says what clients need.
    pub fn ready_file(&self) -> PathBuf {
        self.build.join(format!("{}.ready.json", self.name))
    }
}

/// A local cloud serving, until [`LocalCloud::stop`].
pub struct LocalCloud {
    endpoint: Endpoint,
    serving: Serving,
    ready_file: PathBuf,
}

impl LocalCloud {
    /// Starts the endpoint (unless one runs), applies both Terraform roots to it, serves the
    /// stage and writes the ready file. Whatever it started is stopped again when a later step
    /// fails.
    pub async fn start(options: &UpOptions) -> Result<Self, UpError> {
        let restored = options.endpoint.is_none() && options.state.as_ref().is_some_and(|s| s.is_file());
        let endpoint = match &options.endpoint {
            Some(url) => Endpoint::running(url),
            None => {
                println!("==> starting the local AWS endpoint (moto)");
                let log = options
                    .endpoint_log
                    .clone()
                    .unwrap_or_else(|| options.build.join(format!("{}-endpoint.log", options.name)));
                Endpoint::start(&options.project, options.state.as_deref(), &log).await?
            }
        };
        match Self::provision_and_serve(options, &endpoint, restored).await {
            Ok((serving, ready_file)) => Ok(Self { endpoint, serving, ready_file }),
            Err(error) => {
                let _ = endpoint.stop().await;
                Err(error)
            }
        }
    }

    async fn provision_and_serve(
        options: &UpOptions,
        endpoint: &Endpoint,
        restored: bool,
    ) -> Result<(Serving, PathBuf), UpError> {
        let rest_api_id = Terraform::new(options, endpoint.url()).apply(restored).await?;
        println!("==> starting books-local (AWS endpoint {})", endpoint.url());
        let serve = ServeOptions { endpoint: endpoint.url().to_owned(), rest_api_id, ..options.serve.clone() };
        let ready_file = options.ready_file();
        let _ = std::fs::remove_file(&ready_file);
        let endpoint_pid = endpoint.pid().or_else(|| std::env::var("BOOKS_MOTO_PID").ok()?.parse().ok());
        let serving = Serving::start(&serve, endpoint_pid).await?;
        if let Err(error) = serving.ready().write(&ready_file) {
            serving.stop().await;
            return Err(io(format!("writing {}", ready_file.display()))(error));
        }
        Ok((serving, ready_file))
    }

    /// What clients need to talk to it (what the ready file holds).
    pub fn ready(&self) -> &Ready {
        self.serving.ready()
    }

    /// The ready file.
    pub fn ready_file(&self) -> &Path {
        &self.ready_file
    }

    /// Stops serving (every environment flushes); the endpoint keeps its data and runs on until
    /// [`Endpoint::stop`], for checks of what the cloud left behind.
    pub async fn stop_serving(self) -> Endpoint {
        self.serving.stop().await;
        let _ = std::fs::remove_file(&self.ready_file);
        self.endpoint
    }

    /// Stops serving, then the endpoint we started (saving its data when asked to).
    pub async fn stop(self) -> Result<(), UpError> {
        self.stop_serving().await.stop().await
    }
}

/// The two Terraform root modules against the local endpoint, as `make run` applies them.
struct Terraform<'a> {
    options: &'a UpOptions,
    endpoint: &'a str,
    state: PathBuf,
}

impl<'a> Terraform<'a> {
    fn new(options: &'a UpOptions, endpoint: &'a str) -> Self {
        Self { options, endpoint, state: options.tfstate() }
    }

    /// Applies the environment's root, then the keys' root in its usage plans; answers the REST
    /// API's id. After a `restored` endpoint the states that created its data are kept and
    /// Terraform only reconciles; otherwise both start empty.
    async fn apply(&self, restored: bool) -> Result<String, UpError> {
        let keys_state = self.keys_state();
        if restored {
            if !self.state.is_file() {
                return Err(UpError::NoTerraformState(self.state.clone()));
            }
            println!(
                "==> resuming the local data saved when the local cloud last stopped (make run FRESH=1 starts empty)"
            );
        } else {
            if let Some(parent) = self.state.parent() {
                std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
            }
            for path in [&self.state, &keys_state] {
                let _ = std::fs::remove_file(path);
                let _ = std::fs::remove_file(path.with_extension(backup_extension(path)));
            }
        }
        let endpoint_var = format!("aws_endpoint_url={}", self.endpoint);
        println!("==> terraform init");
        self.run("init", "terraform", &["init", "-backend=false", "-input=false", "-no-color"]).await?;
        self.run("init", "terraform/keys", &["init", "-backend=false", "-input=false", "-no-color"]).await?;
        println!("==> terraform apply against the local AWS endpoint {}", self.endpoint);
        let state = format!("-state={}", self.state.display());
        let applied = self
            .run(
                "apply",
                "terraform",
                &[
                    "apply",
                    "-auto-approve",
                    "-input=false",
                    "-no-color",
                    &state,
                    "-var-file=tests/local.tfvars",
                    "-var",
                    "environment=local",
                    "-var",
                    &endpoint_var,
                ],
            )
            .await?;
        print_outcome(&applied);
        let rest_api_id = self.run("output", "terraform", &["output", &state, "-raw", "rest_api_id"]).await?;
        // Terraform published a version of each function whose code or configuration changed;
        // the alias callers invoke moves to it at once, as `make aws-lambda-provision` does in
        // an environment released all at once.
        let versions = self.run("output", "terraform", &["output", &state, "-json", "function_versions"]).await?;
        let aws = crate::cloud::sdk_config(self.endpoint, &self.options.serve.region).await;
        for moved in crate::cloud::release_at_once(&aws, &versions).await? {
            println!("==> {moved}");
        }
        let usage_plans = self.run("output", "terraform", &["output", &state, "-json", "usage_plan_ids"]).await?;
        println!("==> terraform apply of the API keys (terraform/keys), in the usage plans just applied");
        let keys = self
            .run(
                "apply of the keys",
                "terraform/keys",
                &[
                    "apply",
                    "-auto-approve",
                    "-input=false",
                    "-no-color",
                    &format!("-state={}", keys_state.display()),
                    "-var",
                    "environment=local",
                    "-var",
                    &endpoint_var,
                    "-var",
                    &format!("usage_plans={}", usage_plans.trim()),
                ],
            )
            .await?;
        print_outcome(&keys);
        Ok(rest_api_id.trim().to_owned())
    }

    fn keys_state(&self) -> PathBuf {
        let mut name = self.state.clone().into_os_string();
        name.push(".keys");
        name.into()
    }

    /// One Terraform command in `root` (relative to the project), each root with a data folder
    /// of its own; its standard output, or the whole of what it said when it fails.
    async fn run(&self, step: &str, root: &str, args: &[&str]) -> Result<String, UpError> {
        let folder = if root == "terraform" { "data" } else { "keys-data" };
        let data = self.options.build.join("terraform").join(format!("{}-{folder}", self.options.name));
        let output = tokio::process::Command::new(&self.options.terraform)
            .arg(format!("-chdir={}", self.options.project.join(root).display()))
            .args(args)
            .env("TF_DATA_DIR", data)
            // Every service at the local endpoint (the provider's `endpoints` name some), with
            // its fake credentials, never a user's real ones.
            .env("AWS_ENDPOINT_URL", self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_REGION", &self.options.serve.region)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io(format!("running {}", self.options.terraform.display())))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(UpError::Terraform { step: format!("{step} in {root}"), output: format!("{stdout}{stderr}") })
        }
    }
}

/// `x.tfstate` → `x.tfstate.backup`, as Terraform names its backups.
fn backup_extension(path: &Path) -> String {
    let extension = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    if extension.is_empty() {
        "backup".to_owned()
    } else {
        format!("{extension}.backup")
    }
}

/// Terraform's one line of outcome ("Apply complete! Resources: …").
fn print_outcome(output: &str) {
    if let Some(line) = output.lines().find(|l| l.starts_with("Apply complete")) {
        println!("    {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn scratch() -> PathBuf {
        let folder = std::env::temp_dir().join(format!("books-local-up-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&folder).expect("a scratch folder");
        folder
    }

    #[tokio::test]
    async fn a_project_without_its_venv_is_refused_with_the_fix() {
        let folder = scratch();
        let refused = Endpoint::start(&folder, None, &folder.join("endpoint.log")).await.err().expect("refused");
        assert!(matches!(refused, UpError::NoVenv(_)), "{refused}");
        assert!(refused.to_string().contains("fix: make venv"), "{refused}");
    }

    #[tokio::test]
    async fn a_started_endpoint_saves_its_data_when_stopped_and_resumes_from_it() {
        let folder = scratch();
        let state = folder.join("endpoint.state");
        let endpoint = Endpoint::start(&project(), Some(&state), &folder.join("first.log")).await.expect("started");
        let positions = crate::positions::Positions {
            quotas: [(
                "key".to_owned(),
                crate::gateway::QuotaUsage { period: "2026-12-07".to_owned(), used: 7, first_period: true },
            )]
            .into(),
            ..Default::default()
        };
        positions.save(endpoint.url()).await.expect("the endpoint takes the positions");
        endpoint.stop().await.expect("stopped, its data saved");
        assert!(state.is_file(), "no state in {}", state.display());

        let again = Endpoint::start(&project(), Some(&state), &folder.join("second.log")).await.expect("restarted");
        let resumed = crate::positions::Positions::load(again.url()).await.expect("the positions read back");
        again.stop().await.expect("stopped again");
        assert_eq!(resumed, positions);
    }

    #[tokio::test]
    async fn an_endpoint_that_could_not_save_its_data_is_an_error() {
        let folder = scratch();
        let state = folder.join("gone/endpoint.state");
        let endpoint = Endpoint::start(&project(), Some(&state), &folder.join("endpoint.log")).await.expect("started");
        std::fs::remove_dir_all(folder.join("gone")).expect("the state's folder removed");
        let error = endpoint.stop().await.expect_err("the unsaved data is an error");
        assert!(matches!(error, UpError::NotSaved { .. }), "{error}");
    }

    #[test]
    fn a_terraform_backup_is_named_after_its_state() {
        let state = Path::new("/x/local.tfstate");
        assert_eq!(state.with_extension(backup_extension(state)), Path::new("/x/local.tfstate.backup"));
        let keys = Path::new("/x/local.tfstate.keys");
        assert_eq!(keys.with_extension(backup_extension(keys)), Path::new("/x/local.tfstate.keys.backup"));
    }
}
