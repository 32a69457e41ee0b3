#!/usr/bin/env python3
"""The local AWS endpoint as it ages: weeks of the local cloud's steady traffic put directly,
then the calls the local tools, the dashboard, the alarms and a user's AWS CLI make, timed side
by side with the same calls on a fresh endpoint; its idle CPU; a restart from its saved state.

    scripts/ageing.py [--days 14] [--every-s 600] [--repeat 7] [--bound 2.0]

Two endpoints (`scripts/moto_server.py`, every behaviour, `--state FILE`) get the same last three
hours of traffic; the aged one also gets the `--days` before them, one request per route every
`--every-s` seconds: each metric the service dashboard and the alarms read (their rows, with the
local cloud's names), the API Gateway metrics of every route and the AWS/Lambda metrics of every
function, and four log lines per request in the functions' groups (30-day retention, as
Terraform sets it locally). Then, alternating fresh and aged, `--repeat` times each: an
unfiltered ListMetrics (`aws cloudwatch list-metrics`), every dashboard widget's GetMetricData
(over its last 3 hours), an alarm's evaluation (GetMetricData of its period), a
GetMetricStatistics, FilterLogEvents of the last 10 minutes (`make aws-lambda-logs`),
DescribeLogStreams and GetLogEvents from an `i/<n>` position (books-local's readers).

Fails when a call's median on the aged endpoint is more than `--bound` times the fresh one's
and slower by more than FLOOR_MS (a few milliseconds are this machine's noise, not the
history's cost); when the aged endpoint idles above IDLE_CPU_SHARE of a core; or when its
restart takes more than `--bound` times the fresh one's (plus FLOOR_MS). Writes
.build/ageing/summary.json: every median, the state files' sizes and what a day of this traffic
costs in saved state. make test runs the short form (a request per route every 10 minutes),
make soak the long one (every minute).
"""

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

import boto3
import botocore.exceptions

import dashboards
from local_cloud import BUILD, ROOT, cpu_ms

OUT = BUILD / "ageing"
FLOOR_MS = 25.0
IDLE_CPU_SHARE = 0.05
IDLE_S = 10
RESTARTS = 3
# Both endpoints hold the same last three hours, the widest window the calls read (a dashboard
# widget's): a call then answers the same on both, and only the history before differs.
RECENT_S = 3 * 3600
NAMES = {"${namespace}": "Books", "${api_name}": "books-local-api", "${stage}": "v1", "${region}": "us-east-1",
         "${failure_queue}": "books-local-projector-failures", "${name_prefix}": "books-local"}
FUNCTIONS = ("command", "query", "projector")
ROUTES = (("/books", "POST"), ("/books", "GET"), ("/books/{id}", "GET"), ("/books/{id}", "PUT"),
          ("/books/{id}", "DELETE"))
GROUPS = {f"/books/local/{name}": name for name in FUNCTIONS}
DAY = 86400


class Endpoint:
    """`scripts/moto_server.py` on a free port, its state in a file."""

    def __init__(self, name):
        self.name = name
        self.state = OUT / f"{name}.state"
        self.log = OUT / f"{name}.log"
        self.process = None

    def start(self):
        """Starts it; the seconds until it answered."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        began = time.monotonic()
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/moto_server.py"), "-H", "127.0.0.1", "-p", str(port),
             "--state", str(self.state)], stdout=self.log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            if self.process.poll() is not None:
                sys.exit(f"FAILED: the {self.name} endpoint ended ({self.process.returncode}): see {self.log}")
            try:
                self.client("sts").get_caller_identity()
                return time.monotonic() - began
            except (OSError, botocore.exceptions.EndpointConnectionError):
                if time.monotonic() - began > 600:
                    sys.exit(f"FAILED: the {self.name} endpoint did not answer in 600 s: see {self.log}")
                time.sleep(0.1)

    def stop(self):
        """Stops it (it saves its state); the seconds that took."""
        began = time.monotonic()
        os.killpg(self.process.pid, signal.SIGTERM)
        if self.process.wait(timeout=600) != 0:
            sys.exit(f"FAILED: the {self.name} endpoint did not stop cleanly: see {self.log}")
        return time.monotonic() - began

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


# --- the traffic --------------------------------------------------------------------------------

def substitute(text):
    for placeholder, value in NAMES.items():
        text = text.replace(placeholder, value)
    return text


def dashboard():
    """The service dashboard's widgets, with the local cloud's names."""
    return json.loads(substitute((ROOT / "dashboards/service.json").read_text()))["widgets"]


def metrics():
    """(namespace, name, dimensions) of everything one request publishes here."""
    found = set()
    for widget in dashboard():
        for namespace, name, dims, _ in dashboards.widget_metric_rows(widget):
            found.add((namespace, name, dims))
    for path, method in ROUTES:
        for name in ("Count", "Latency", "IntegrationLatency", "4XXError", "5XXError"):
            found.add(("AWS/ApiGateway", name, (("ApiName", NAMES["${api_name}"]), ("Method", method),
                                                ("Resource", path), ("Stage", "v1"))))
    for function in FUNCTIONS:
        for name in ("Invocations", "Errors", "Throttles", "Duration"):
            found.add(("AWS/Lambda", name, (("FunctionName", f"books-local-{function}"),)))
    return sorted(found)


def log_line(function, at_ms, n):
    return json.dumps({"level": "INFO", "message": "request handled", "request_id": f"{n:08d}-0000-4000-8000-000000000000",
                       "function_name": f"books-local-{function}", "function_version": "$LATEST", "status": 200,
                       "duration_ms": 7.5, "timestamp": datetime.datetime.fromtimestamp(at_ms / 1000).isoformat()})


def put(endpoint, since_s, until_s, every_s):
    """One request per route every `every_s` seconds between the two ages: its metrics and logs."""
    cloudwatch, logs = endpoint.client("cloudwatch"), endpoint.client("logs")
    now = time.time()
    steps = [now - age for age in range(int(since_s), int(until_s), -int(every_s))]
    members = {}
    for namespace, name, dims in metrics():
        for at in steps:
            members.setdefault(namespace, []).append({
                "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims], "Value": 1.0,
                "Timestamp": datetime.datetime.fromtimestamp(at, datetime.timezone.utc)})
    datums = 0
    for namespace, batch in members.items():
        for first in range(0, len(batch), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch[first:first + 1000])
        datums += len(batch)
    existing = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    events = 0
    # CloudWatch Logs takes no event older than 14 days.
    log_steps = [at for at in steps if at > now - 14 * DAY + 3600]
    for group, function in GROUPS.items():
        if group not in existing:
            logs.create_log_group(logGroupName=group)
            logs.put_retention_policy(logGroupName=group, retentionInDays=30)
        by_day = {}
        for n, at in enumerate(log_steps):
            by_day.setdefault(int(at // DAY), []).extend(
                {"timestamp": int(at * 1000) + i, "message": log_line(function, int(at * 1000), n)} for i in range(4))
        for day, batch in sorted(by_day.items()):
            stream = f"{datetime.datetime.fromtimestamp(day * DAY):%Y/%m/%d}/[$LATEST]{since_s:.0f}"
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            for first in range(0, len(batch), 5000):
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch[first:first + 5000])
            events += len(batch)
    return datums, events


# --- the calls ----------------------------------------------------------------------------------

def calls(endpoint):
    """{name: a call of the local tools, on this endpoint}."""
    cloudwatch, logs = endpoint.client("cloudwatch"), endpoint.client("logs")
    end = datetime.datetime.now(datetime.timezone.utc)
    made = {"ListMetrics (aws cloudwatch list-metrics)":
            lambda: [m for page in cloudwatch.get_paginator("list_metrics").paginate() for m in page["Metrics"]]}
    for n, widget in enumerate(dashboard()):
        properties = widget.get("properties", {})
        if widget.get("type") != "metric":
            continue
        queries = dashboards.widget_queries(properties, int(properties.get("period", 60)))
        made[f"dashboard widget {n}: {properties.get('title', '')[:40]}"] = (
            lambda queries=queries: dashboards.fetch(cloudwatch, queries, end - datetime.timedelta(hours=3), end))
    alarm = [{"Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/ApiGateway", "MetricName": "5XXError",
                                                   "Dimensions": [{"Name": "ApiName", "Value": NAMES["${api_name}"]},
                                                                  {"Name": "Stage", "Value": "v1"}]},
                                        "Period": 60, "Stat": "Sum"}}]
    made["alarm evaluation (GetMetricData, 5 periods)"] = lambda: cloudwatch.get_metric_data(
        MetricDataQueries=alarm, StartTime=end - datetime.timedelta(minutes=5), EndTime=end)
    made["GetMetricStatistics (last hour)"] = lambda: cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=[{"Name": "FunctionName", "Value": "books-local-query"}],
        StartTime=end - datetime.timedelta(hours=1), EndTime=end, Period=60, Statistics=["Sum"])
    start_ms = int((end - datetime.timedelta(minutes=10)).timestamp() * 1000)
    made["FilterLogEvents, last 10 minutes (make aws-lambda-logs)"] = lambda: [
        e for page in logs.get_paginator("filter_log_events").paginate(logGroupName="/books/local/query", startTime=start_ms)
        for e in page["events"]]
    made["DescribeLogStreams"] = lambda: [
        s for page in logs.get_paginator("describe_log_streams").paginate(logGroupName="/books/local/query")
        for s in page["logStreams"]]
    newest = max(logs.describe_log_streams(logGroupName="/books/local/query")["logStreams"],
                 key=lambda s: s["logStreamName"])["logStreamName"]
    made["GetLogEvents from an i/<n> position (books-local's reader)"] = lambda: logs.get_log_events(
        logGroupName="/books/local/query", logStreamName=newest, startFromHead=True, nextToken="i/0", limit=100)
    return made


def timed(call):
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--every-s", type=float, default=600)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bound", type=float, default=2.0)
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    fresh, aged = Endpoint("fresh"), Endpoint("aged")
    failures, summary = [], {"days": args.days, "every_s": args.every_s}
    for endpoint in (fresh, aged):
        endpoint.state.unlink(missing_ok=True)
        endpoint.log.unlink(missing_ok=True)
        endpoint.start()
    try:
        began = time.monotonic()
        history = put(aged, args.days * DAY, RECENT_S, args.every_s)
        summary["history"] = {"datums": history[0], "log_events": history[1], "put_s": round(time.monotonic() - began, 1)}
        print(f"ageing: {history[0]:,} metric datums and {history[1]:,} log events of {args.days:g} days put in "
              f"{summary['history']['put_s']} s", flush=True)
        for endpoint in (fresh, aged):
            put(endpoint, RECENT_S, 0, args.every_s)
        made = {endpoint.name: calls(endpoint) for endpoint in (fresh, aged)}
        times = {name: {"fresh": [], "aged": []} for name in made["fresh"]}
        for _ in range(args.repeat):
            for name in times:
                for endpoint in ("fresh", "aged"):
                    times[name][endpoint].append(timed(made[endpoint][name]))
        summary["calls"] = {}
        print(f"{'call':<62} {'fresh ms':>9} {'aged ms':>9} {'ratio':>6}")
        for name, measured in times.items():
            f, a = statistics.median(measured["fresh"]), statistics.median(measured["aged"])
            summary["calls"][name] = {"fresh_ms": round(f, 2), "aged_ms": round(a, 2)}
            print(f"{name:<62} {f:>9.1f} {a:>9.1f} {a / f:>5.2f}x")
            if a > args.bound * f and a - f > FLOOR_MS:
                failures.append(f"{name}: {a:.1f} ms aged against {f:.1f} ms fresh")
        before = cpu_ms(aged.process.pid)
        time.sleep(IDLE_S)
        idle = (cpu_ms(aged.process.pid) - before) / (IDLE_S * 1000)
        summary["aged_idle_cpu_share"] = round(idle, 4)
        print(f"aged endpoint idle: {idle:.1%} of a core")
        if idle > IDLE_CPU_SHARE:
            failures.append(f"the aged endpoint idles at {idle:.1%} of a core")
        # Three restarts each, taking turns: the median, as for the calls.
        measured = {"fresh": [], "aged": []}
        for _ in range(RESTARTS):
            for endpoint in (fresh, aged):
                measured[endpoint.name].append((endpoint.stop(), endpoint.start()))
        restarts = {endpoint.name: {"save_s": round(statistics.median(s for s, _ in measured[endpoint.name]), 2),
                                    "ready_s": round(statistics.median(r for _, r in measured[endpoint.name]), 2),
                                    "state_bytes": endpoint.state.stat().st_size} for endpoint in (fresh, aged)}
        summary["restarts"] = restarts
        per_day = (restarts["aged"]["state_bytes"] - restarts["fresh"]["state_bytes"]) / args.days
        summary["state_bytes_per_day"] = round(per_day)
        print(f"restart: fresh ready in {restarts['fresh']['ready_s']} s ({restarts['fresh']['state_bytes']:,} bytes), "
              f"aged in {restarts['aged']['ready_s']} s ({restarts['aged']['state_bytes']:,} bytes, "
              f"{per_day / 1e6:.2f} MB per day of this traffic)")
        fresh_s, aged_s = restarts["fresh"]["ready_s"], restarts["aged"]["ready_s"]
        if aged_s > args.bound * fresh_s and (aged_s - fresh_s) * 1000 > FLOOR_MS:
            failures.append(f"the aged endpoint restarted in {aged_s} s against {fresh_s} s fresh")
        answered = calls(aged)["ListMetrics (aws cloudwatch list-metrics)"]()
        if len(answered) != len(metrics()):
            failures.append(f"after its restart the aged endpoint lists {len(answered)} metrics, not {len(metrics())}")
    finally:
        for endpoint in (fresh, aged):
            if endpoint.process and endpoint.process.poll() is None:
                endpoint.stop()
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2))
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
