#!/usr/bin/env python3
"""`make bench`'s own-stack run: the path this project wrote, without DynamoDB.

    scripts/bench_own_stack.py --books-local BIN --rootfs DIR --out FILE [--connections "1 8 64"]

Inside `books-local endpoint` (AWS_ENDPOINT_URL), on an endpoint of its own (books-local serves every
function an endpoint holds): deploys, one function of
its own (books-bench-ping, bench/ping: the Books functions' runtime, JSON logs and EMF metrics
around a handler that calls nothing; its image folder `ping` under DIR holds it and
books-telemetry) behind a REST API of its own (GET /ping, API key required, a usage plan
without limits), as API Gateway and Lambda hold a deployment, so the product's routes stay
as they are. Then runs books-local on it and, per connection count, wrk against the gateway
after a warm-up at the same count, with the CPU time of books-local, of the function processes
and of the extension processes (from /proc) over the measured run, per request. The same at 8
connections with environments left running between invocations (--no-freeze), to price the
freeze. And one profile (perf) of a run at 8 connections: the share of CPU samples per process
and per shared object, and the hottest symbols (books-local and the function keep their symbols
in this build; the extension is the stripped binary that ships).
Writes the results as JSON for scripts/bench_report.py.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import boto3

from local_cloud import cpu_ms, processes, until

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGION = os.environ.get("AWS_REGION", "us-east-1")
FUNCTION = "books-bench-ping"
ROLES = {"books-bench-ping": "function", "books-telemetry": "extension"}


def aws(service):
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=REGION)


def deploy():
    """The bench's function and REST API on the local endpoint; returns the API's id."""
    account = aws("sts").get_caller_identity()["Account"]
    group = "/books/bench/ping"
    aws("logs").create_log_group(logGroupName=group)
    role = aws("iam").create_role(RoleName=FUNCTION, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    function = aws("lambda").create_function(
        FunctionName=FUNCTION, PackageType="Image", Role=role, MemorySize=256, Timeout=10,
        # The repository's last dash-separated word names the image folder: `ping`.
        Code={"ImageUri": f"{account}.dkr.ecr.{REGION}.amazonaws.com/{FUNCTION}@sha256:{'b' * 64}"},
        ImageConfig={"Command": [f"/var/task/{FUNCTION}"]},
        Environment={"Variables": {"BOOKS_SERVICE": "ping", "BOOKS_LOG": "info", "BOOKS_TELEMETRY_LOG_GROUP": group,
                                   "BOOKS_TELEMETRY_NAMESPACE": "BooksBench", "BOOKS_TELEMETRY_SERVICE": "ping"}},
    )["FunctionArn"]
    aws("lambda").put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=100)
    apigw = aws("apigateway")
    api = apigw.create_rest_api(name="books-bench")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    resource = apigw.create_resource(restApiId=api, parentId=root, pathPart="ping")["id"]
    apigw.put_method(restApiId=api, resourceId=resource, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True)
    apigw.put_integration(restApiId=api, resourceId=resource, httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST",
                          uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function}/invocations")
    aws("lambda").add_permission(FunctionName=FUNCTION, StatementId="bench-api", Action="lambda:InvokeFunction",
                                 Principal="apigateway.amazonaws.com",
                                 SourceArn=f"arn:aws:execute-api:{REGION}:{account}:{api}/*/GET/ping")
    apigw.create_deployment(restApiId=api, stageName="v1")
    key = apigw.create_api_key(name="books-bench", enabled=True)["id"]
    plan = apigw.create_usage_plan(name="books-bench", apiStages=[{"apiId": api, "stage": "v1"}])["id"]
    apigw.create_usage_plan_key(usagePlanId=plan, keyId=key, keyType="API_KEY")
    return api


def cpu_by_role(local_pid, rootfs):
    """{pid: (role, CPU ms so far)} of books-local, its function and extension processes, and
    the local endpoint (moto: the extension ships the function's logs and metrics to it)."""
    found = {}
    endpoint = int(os.environ.get("BOOKS_MOTO_PID") or 0)
    used = cpu_ms(endpoint) if endpoint else None
    if used is not None:
        found[endpoint] = ("endpoint", used)
    for name, pid, _rss, _fds in processes(local_pid, None, rootfs):
        role = "books-local" if pid == local_pid else ROLES.get(name)
        used = cpu_ms(pid)
        if role and used is not None:
            found[pid] = (role, used)
    return found


def wrk(url, key, connections, seconds):
    threads = 1 if connections < 2 else 2
    result = subprocess.run(
        ["wrk", "--timeout", "10s", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-H", f"x-api-key: {key}",
         "-s", str(ROOT / "bench/wrk/books.lua"), url, "--", "get"],
        capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measured_run(ready, rootfs, connections, seconds, warmup_s):
    """A warm-up, then a measured wrk run with the CPU each role used over it, per request."""
    url = ready["base_url"] + "/ping"
    wrk(url, ready["api_key"], connections, warmup_s)
    time.sleep(1)  # the warm-up's last requests finish in their environments
    before = cpu_by_role(ready["pid"], rootfs)
    summary = wrk(url, ready["api_key"], connections, seconds)
    after = cpu_by_role(ready["pid"], rootfs)
    used = {"books-local": 0.0, "function": 0.0, "extension": 0.0, "endpoint": 0.0}
    for pid, (role, total) in after.items():
        used[role] += total - before.get(pid, (role, 0.0))[1]
    requests = max(1, summary["requests"])
    environments = sum(1 for role, _ in after.values() if role == "function")
    return {"connections": connections, "summary": summary, "environments": environments,
            "new_environments": max(0, environments - sum(1 for role, _ in before.values() if role == "function")),
            "cpu_ms_per_request": {role: ms / requests for role, ms in used.items()}}


class Serving:
    """books-local serving the bench's API; stopped on exit."""

    def __init__(self, books_local, api, rootfs, work, freeze):
        self.ready_file = work / f"ready-{'freeze' if freeze else 'no-freeze'}.json"
        self.ready_file.unlink(missing_ok=True)
        self.log = (work / f"books-local-{'freeze' if freeze else 'no-freeze'}.log").open("w")
        command = [books_local, "serve", "--endpoint", os.environ["AWS_ENDPOINT_URL"], "--rest-api-id", api,
                   "--rootfs", str(rootfs), "--port", "0", "--ready-file", str(self.ready_file)]
        self.process = subprocess.Popen(command + ([] if freeze else ["--no-freeze"]), stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def __enter__(self):
        until(f"books-local serves the bench API (see {self.log.name})",
              lambda: self.ready_file.exists() or self.process.poll() is not None, 120, 0.2)
        if self.process.poll() is not None:
            sys.exit(f"FAILED: books-local ended with {self.process.returncode} (see {self.log.name})")
        return json.loads(self.ready_file.read_text())

    def __exit__(self, *_):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def perf_report(data, sort, roles):
    """perf's table sorted by `sort` (the thread first), summed per role (books-local, function,
    extension) and the rest of the key; the largest first."""
    result = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort,
                             "--percent-limit", "0", "-q"], capture_output=True, text=True, check=True)
    summed = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith("%"):
            continue
        tid = parts[1].split(":", 1)[0]
        key = (roles.get(int(tid), "other") if tid.isdigit() else "other", " ".join(parts[2:]))
        summed[key] = summed.get(key, 0.0) + float(parts[0].rstrip("%"))
    return [{"share": share, "role": role, "what": what}
            for (role, what), share in sorted(summed.items(), key=lambda item: -item[1])]


def threads_by_role(ready, rootfs):
    """{thread id: role} of every thread of the path's processes (perf samples name threads)."""
    found = {}
    for pid, (role, _) in cpu_by_role(ready["pid"], rootfs).items():
        for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
            found[int(tid)] = role
    return found


def profile(ready, rootfs, seconds, work):
    """perf samples of every process of the path during a run at 8 connections: the shares of
    books-local, the function and the extension, their objects (their own code, libc, the
    kernel) and the hottest symbols."""
    url = ready["base_url"] + "/ping"
    wrk(url, ready["api_key"], 8, 2)
    roles = threads_by_role(ready, rootfs)
    pids = sorted(cpu_by_role(ready["pid"], rootfs))
    data = work / "perf.data"
    recorder = subprocess.Popen(["perf", "record", "-F", "999", "-o", str(data), "-p", ",".join(map(str, pids)),
                                 "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    summary = wrk(url, ready["api_key"], 8, seconds)
    _, errors = recorder.communicate(timeout=120)
    if recorder.returncode != 0:
        sys.exit(f"FAILED: perf record: {errors.strip()[-2000:]}")
    by_process = {}
    for row in perf_report(data, "pid", roles):
        by_process[row["role"]] = by_process.get(row["role"], 0.0) + row["share"]
    return {"summary": summary, "by_process": by_process, "by_object": perf_report(data, "pid,dso", roles)[:15],
            "symbols": perf_report(data, "pid,dso,sym", roles)[:25]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--books-local", required=True)
    parser.add_argument("--rootfs", required=True, type=pathlib.Path, help="holds the image folder `ping`")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--connections", default="1 8 64")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile-seconds", type=int, default=8, help="0: no profile")
    args = parser.parse_args()
    if args.profile_seconds and not shutil.which("perf"):
        sys.exit("FAILED: perf is missing. Fix: apt-get install linux-perf (or --profile-seconds 0)")
    rootfs = args.rootfs.resolve()
    for binary in (FUNCTION, "books-telemetry"):
        folder = "var/task" if binary == FUNCTION else "opt/extensions"
        if not (rootfs / "ping" / folder / binary).is_file():
            sys.exit(f"FAILED: {rootfs}/ping/{folder}/{binary} is missing (scripts/bench stages it)")

    api = deploy()
    work = pathlib.Path(tempfile.mkdtemp(prefix="own-stack.", dir=args.out.parent))
    results = {"runs": [], "no_freeze": None, "profile": None, "cpus": os.cpu_count()}
    with Serving(args.books_local, api, rootfs, work, freeze=True) as ready:
        for connections in map(int, args.connections.split()):
            run = measured_run(ready, rootfs, connections, args.seconds, args.warmup)
            results["runs"].append(run)
            print(f"  own stack, {connections} connections: {run['summary']['rps']:.0f} requests/s, "
                  f"CPU per request {run['cpu_ms_per_request']}", flush=True)
        if args.profile_seconds:
            results["profile"] = profile(ready, rootfs, args.profile_seconds, work)
    with Serving(args.books_local, api, rootfs, work, freeze=False) as ready:
        results["no_freeze"] = measured_run(ready, rootfs, 8, args.seconds, args.warmup)
        print(f"  own stack, 8 connections, no freeze: {results['no_freeze']['summary']['rps']:.0f} requests/s", flush=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"==> wrote {args.out}")


if __name__ == "__main__":
    main()
