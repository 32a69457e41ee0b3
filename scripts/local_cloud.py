"""A local cloud of a script's own (`books-local up`), for the checks that drive one from
Python: the consistency checker, the soak run and the developer loop.

    with LocalCloud("soak") as cloud:
        status, document, headers = cloud.call("GET", "/books")

The debug binaries staged by `make local-build` run in it; its Terraform state, ready file and
logs are named after it under BUILD, so such runs never share anything with `make run`.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("BUILD", ROOT / ".build")).resolve()
START_WAIT_S = 600


def until(what, check, timeout_s, pause_s=0.5):
    """Waits for `check` to return something true; exits with `what` when it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            sys.exit(f"FAILED: {what} (waited {timeout_s} s)")
        time.sleep(pause_s)


def proc_status(pid):
    try:
        fields = dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines())
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return int(fields["PPid"]), int(fields["VmRSS"].split()[0]) / 1024, fds
    except (OSError, KeyError, ValueError):
        return None  # gone, or a kernel thread


def processes(local_pid, endpoint_pid, rootfs, endpoint_role="endpoint (moto)"):
    """(role, pid, rss MB, fds) of books-local, the endpoint and books-local's descendants that
    run from `rootfs` (a function or extension: the role is its executable's name)."""
    found, parents = [], {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            status = proc_status(int(entry.name))
            if status:
                parents[int(entry.name)] = status
    for pid, (ppid, rss, fds) in parents.items():
        if pid == local_pid:
            found.append(("books-local", pid, rss, fds))
        elif pid == endpoint_pid:
            found.append((endpoint_role, pid, rss, fds))
        else:
            ancestor = ppid
            while ancestor in parents and ancestor != local_pid:
                ancestor = parents[ancestor][0]
            if ancestor != local_pid:
                continue
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if not exe.startswith(str(rootfs)):
                continue
            found.append((pathlib.Path(exe).name, pid, rss, fds))
    return found


def cpu_ms(pid):
    """User and system CPU time of a process so far, in milliseconds (None once it is gone)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Stage:
    """A running local cloud's stage and endpoint, from its ready file (what `books-local up`
    writes): requests with the API key, boto3 clients, the endpoint's fault switch."""

    def __init__(self, ready):
        self.ready = ready

    def call(self, method, path, body=None, headers=None, timeout=60):
        """A request through the gateway with the API key: (status, JSON document, headers);
        (None, None, {}) when no answer came."""
        request = urllib.request.Request(
            self.ready["base_url"] + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"x-api-key": self.ready["api_key"], "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null"), dict(response.headers)
        except urllib.error.HTTPError as error:
            try:
                document = json.loads(error.read() or b"null")
            except ValueError:
                document = None
            return error.code, document, dict(error.headers)
        except OSError:
            return None, None, {}

    def aws(self, service):
        return boto3.client(service, endpoint_url=self.ready["aws_endpoint_url"], region_name=self.ready["region"],
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def fault(self, method, document=None):
        """The local endpoint's fault switch (docs/local-endpoint-protocol.md, scripts/local_endpoint/faults.py)."""
        request = urllib.request.Request(self.ready["aws_endpoint_url"] + "/_books/faults", method=method,
                                         data=None if document is None else json.dumps(document).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


class LocalCloud(Stage):
    """`books-local up` in a process group of its own, serving once its ready file exists.

    keep_data: the endpoint's data and the Terraform state live in the cloud's folder, saved at
    the stop and resumed by the next LocalCloud of the same name (as `make run` does);
    watch: watch mode (`make watch`); run: numbers the logs of successive starts."""

    def __init__(self, name, args=(), *, keep_data=False, watch=False, run=None, env=None):
        self.name = name
        self.folder = BUILD / name
        self.folder.mkdir(parents=True, exist_ok=True)
        ready_file = BUILD / f"{name}.ready.json"
        ready_file.unlink(missing_ok=True)
        suffix = "" if run is None else f"-{run}"
        self.log = self.folder / f"cloud{suffix}.log"
        command = [os.environ.get("BOOKS_LOCAL", str(BUILD / "bin/books-local")), "up", "--project", str(ROOT),
                   "--build", str(BUILD), "--name", name, "--port", "0",
                   "--endpoint-log", str(self.folder / f"endpoint{suffix}.log"), *args]
        if keep_data:
            command += ["--state", str(self.folder / "endpoint.state"),
                        "--tfstate", str(self.folder / "terraform.tfstate")]
        if watch:
            command.append("--watch")
        # Scripted clients send far more than one client of the default plan would.
        env = dict(os.environ, TF_VAR_throttle='{ rate_limit = 1000, burst_limit = 2000 }', **(env or {}))
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        try:
            until(f"the local cloud is serving (see {self.log})", lambda: ready_file.exists() or self._died(),
                  START_WAIT_S)
        except SystemExit:
            self.stop()
            raise
        super().__init__(json.loads(ready_file.read_text()))
        self.tfstate = self.folder / "terraform.tfstate" if keep_data else BUILD / "terraform" / f"{name}.tfstate"

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()

    def _died(self):
        if self.process.poll() is not None:
            sys.exit(f"FAILED: the local cloud ended ({self.process.returncode}); its log:\n{self.log.read_text()}")
        return False

    def stop(self):
        """Ctrl-C to the cloud's process group, as a terminal sends it (books-local stops the
        endpoint it started on its way out); SIGKILL when it does not end."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=300)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def stop_cleanly(self):
        """Stops it, and fails unless it stopped cleanly (and saved its data, when it keeps it)."""
        self.stop()
        text = self.log.read_text()
        saved = "--state" not in self.process.args or "local data saved in" in text
        if self.process.returncode != 0 or not saved:
            sys.exit(f"FAILED: the local cloud did not stop cleanly ({self.process.returncode}); its log:\n{text}")

    def output(self, name):
        """A Terraform output of the state that created this cloud."""
        terraform = BUILD / "terraform"
        return json.loads(subprocess.run(
            [os.environ.get("TERRAFORM", "terraform"), f"-chdir={ROOT / 'terraform'}", "output",
             f"-state={self.tfstate}", "-json", name],
            check=True, capture_output=True, text=True,
            env=dict(os.environ, TF_DATA_DIR=str(terraform / f"{self.name}-data"))).stdout)
