//! Shared set-up of the emulator's tests: functions whose runtime and extension are the Python
//! fixtures in `tests/fixtures`, and raw HTTP against the emulated APIs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use books_local::invoke::FunctionSpec;
use serde_json::Value;

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    let python = workspace().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing. Fix: make venv", python.display());
    python
}

/// A function run by the Python runtime fixture, optionally with the extension fixture.
pub(crate) struct Fixture {
    pub(crate) dir: tempdir::Dir,
    pub(crate) spec: FunctionSpec,
}

pub(crate) mod tempdir {
    /// A temporary directory removed on drop.
    pub(crate) struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub(crate) fn new() -> Self {
            let path = std::env::temp_dir().join(format!("books-local-test-{}", ulid::Ulid::new()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Fixture {
    pub(crate) fn new(timeout: Duration, with_extension: bool, env: &[(&str, &str)]) -> Self {
        Self::with_extension_binary(timeout, with_extension.then(python_extension), env)
    }

    /// A function whose one extension is `extension` (a script or binary), if any.
    pub(crate) fn with_extension_binary(timeout: Duration, extension: Option<PathBuf>, env: &[(&str, &str)]) -> Self {
        let dir = tempdir::Dir::new();
        let task = dir.0.join("var/task");
        std::fs::create_dir_all(&task).unwrap();
        let mut environment: BTreeMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        environment.insert("FIXTURE_STATE".into(), dir.0.join("runtime.jsonl").display().to_string());
        environment.insert("FIXTURE_EXTENSION_LOG".into(), dir.0.join("extension.jsonl").display().to_string());
        let extensions_dir = extension.map(|program| {
            let extensions = dir.0.join("opt/extensions");
            std::fs::create_dir_all(&extensions).unwrap();
            let target = extensions.join("fixture-extension");
            std::fs::copy(&program, &target).unwrap();
            make_executable(&target);
            extensions
        });
        let spec = FunctionSpec {
            name: "fixture".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:fixture".into(),
            bootstrap: python(),
            bootstrap_args: vec![workspace().join("local/tests/fixtures/runtime.py").display().to_string()],
            handler: "runtime.py".into(),
            task_root: task,
            extensions_dir,
            memory_mb: 256,
            timeout,
            environment,
            reserved_concurrency: Some(2),
            version: "$LATEST".into(),
            log_group: "/aws/lambda/fixture".into(),
        };
        Self { dir, spec }
    }

    /// JSON lines a fixture wrote (`runtime.jsonl`, `extension.jsonl`).
    pub(crate) fn lines(&self, file: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.0.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Extension log entries of one kind.
    pub(crate) fn extension(&self, kind: &str) -> Vec<Value> {
        self.lines("extension.jsonl").into_iter().filter(|l| l["kind"] == kind).map(|l| l["value"].clone()).collect()
    }

    /// Every telemetry record the extension received, in order.
    pub(crate) fn telemetry(&self) -> Vec<Value> {
        self.extension("telemetry")
            .into_iter()
            .flat_map(|batch| batch.as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// A launcher script for the Python extension fixture.
fn python_extension() -> PathBuf {
    python_script_extension("extension.py")
}

/// A launcher script that runs the Python script `tests/fixtures/<script>` as an extension. The
/// script gets the path it was installed at as its first argument: Lambda knows an extension by
/// that file name (`Lambda-Extension-Name`).
pub(crate) fn python_script_extension(script: &str) -> PathBuf {
    let launcher =
        std::env::temp_dir().join(format!("books-fixture-{}-{}", script.replace('.', "-"), std::process::id()));
    if !launcher.exists() {
        let script = workspace().join("local/tests/fixtures").join(script);
        let staging = launcher.with_extension(format!("tmp{}", ulid::Ulid::new()));
        let exec = format!("#!/bin/sh\nexec {} {} \"$0\" \"$@\"\n", python().display(), script.display());
        std::fs::write(&staging, exec).unwrap();
        make_executable(&staging);
        std::fs::rename(&staging, &launcher).unwrap();
    }
    launcher
}

/// The `fixture-extension` binary (examples/, on the lambda-extension crate), which `cargo test`
/// builds with the tests. A test binary lives in <target>/debug/deps; examples in
/// <target>/debug/examples.
pub(crate) fn crate_extension() -> PathBuf {
    example("fixture-extension")
}

/// An example binary of this crate (examples/), which `cargo test` builds with the tests.
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing. Fix: cargo test -p books-local (builds the examples with the tests)",
        binary.display()
    );
    binary
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Waits (bounded, 30 s: generous on a loaded machine) until `check` holds; panics with `what`
/// otherwise.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let held = books_testkit::eventually(Duration::from_secs(30), || std::future::ready(check())).await;
    assert!(held, "timed out waiting for {what}");
}

/// A process's scheduling state from /proc (`R`, `S`, `T` for stopped, i.e. frozen, `Z`…), `?`
/// when it is gone.
pub(crate) fn process_state(pid: u64) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()).unwrap_or('?')
}

/// Whether a process exists and is not a zombie.
pub(crate) fn alive(pid: u64) -> bool {
    !matches!(process_state(pid), 'Z' | '?')
}
