#!/usr/bin/env python3
"""Checks what books-telemetry shipped from the local cloud, after it stopped.

Every line a function wrote (books-local echoes them as `[<function>] <line>` in its log) must
be in the function's telemetry log group in CloudWatch Logs (moto), exactly once, with its own
fields intact and enriched (cold_start, function name and version); the values of every EMF
metric the functions wrote must all be there, aggregated; and every invoked function must have
the platform metrics the extension derives (names read from extension/src/emf.rs).

    scripts/check_telemetry.py LOCAL_CLOUD_LOG     (inside scripts/with-moto)
"""

import collections
import json
import math
import pathlib
import re
import sys

import boto3

import dashboards

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENRICHMENT = ("cold_start", "function_name", "function_version")


def platform_metric_names():
    source = (ROOT / "extension/src/emf.rs").read_text()
    block = source[source.index("pub const PLATFORM_METRICS"):]
    block = block[: block.index("];")]
    constants = dict(re.findall(r'pub const ([A-Z_]+): &str = "(\w+)";', source))
    names = [constants[c] for c in re.findall(r"name: ([A-Z_]+)", block)]
    if len(names) != 10:
        raise SystemExit(f"could not read PLATFORM_METRICS from extension/src/emf.rs (got {names})")
    return names


def function_lines(log_path, functions, extension=None):
    """Lines books-local echoed as `[<function>] line`, or `[<function>/<extension>] line`."""
    lines = collections.defaultdict(list)
    for raw in pathlib.Path(log_path).read_text(errors="replace").splitlines():
        match = re.match(r"^\[([^\]/]+)(?:/([^\]]+))?\] (.*)$", raw)
        if match and match.group(1) in functions and match.group(2) == extension:
            lines[match.group(1)].append(match.group(3))
    return lines


def shipped_events(logs, group):
    return list(dashboards.log_messages(logs, group))


def as_structured(line):
    """A written line as the extension structures it: JSON objects stay, text becomes {message}."""
    try:
        original = json.loads(line)
    except ValueError:
        original = None
    return original if isinstance(original, dict) else {"message": line.rstrip()}


def take_match(shipped_by_message, original):
    """Removes and returns the shipped event that holds every field of `original`, if any."""
    candidates = shipped_by_message.get(original.get("message"), [])
    match = next((e for e in candidates if all(e.get(k) == v for k, v in original.items())), None)
    if match is not None:
        candidates.remove(match)
    return match


def emf_values(document):
    """(namespace, dimensions, metric) -> [values] of one EMF document."""
    values = collections.defaultdict(list)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"] or [[]]:
            dims = tuple((d, document[d]) for d in dimension_set)
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                items = value if isinstance(value, list) else [value]
                values[(directive["Namespace"], dims, metric["Name"])].extend(float(v) for v in items)
    return values


def check_function(name, written, shipped, platform_names, extension_written=()):
    failures = []
    logs_shipped = collections.defaultdict(list)
    extension_shipped = collections.defaultdict(list)
    metrics_shipped = collections.defaultdict(list)
    for message in shipped:
        try:
            event = json.loads(message)
        except ValueError:
            failures.append(f"{name}: a shipped event is not JSON: {message[:200]}")
            continue
        if "_aws" in event:
            for key, values in emf_values(event).items():
                metrics_shipped[key].extend(values)
        elif event.get("source") == "extension":
            extension_shipped[event.get("message")].append(event)
        elif "type" not in event:  # platform records are checked through their metrics
            logs_shipped[event.get("message")].append(event)

    metrics_written = collections.defaultdict(list)
    request_ids = set()
    checked = 0
    for line in written:
        original = as_structured(line)
        if "_aws" in original:
            for key, values in emf_values(original).items():
                metrics_written[key].extend(values)
            continue
        if original.get("request_id"):
            request_ids.add(original["request_id"])
        match = take_match(logs_shipped, original)
        if match is None:
            failures.append(f"{name}: not shipped (or altered): {line[:300]}")
            continue
        missing = [k for k in ENRICHMENT if k not in match]
        if missing:
            failures.append(f"{name}: shipped without {missing}: {json.dumps(match)[:300]}")
        checked += 1
    # The extension's own diagnostics (stderr) travel the same way, marked source=extension.
    for line in extension_written:
        if take_match(extension_shipped, as_structured(line)) is None:
            failures.append(f"{name}: extension line not shipped: {line[:300]}")
    extra = [event for events in logs_shipped.values() for event in events]
    if extra:
        failures.append(f"{name}: {len(extra)} shipped log events that the function never wrote (duplicates?)")
        failures += [f"{name}:   unmatched: {json.dumps(event)[:400]}" for event in extra[:5]]

    for key, values in metrics_written.items():
        got = metrics_shipped.get(key, [])
        if len(got) != len(values) or not math.isclose(sum(got), sum(values), rel_tol=1e-9, abs_tol=1e-6):
            failures.append(f"{name}: metric {key}: wrote {len(values)} values (sum {sum(values)}), "
                            f"shipped {len(got)} (sum {sum(got)})")

    platform = {metric: [] for metric in platform_names}
    for (namespace, dims, metric), values in metrics_shipped.items():
        if metric in platform and namespace == "Books" and dict(dims).keys() == {"Service"}:
            platform[metric].extend(values)
    if written:
        absent = [m for m, v in platform.items() if not v]
        if absent:
            failures.append(f"{name}: platform metrics never shipped: {absent}")
        invocations = len(platform["Duration"])
        for per_invocation in ("ColdStart", "BilledDuration", "MaxMemoryUsed", "Errors", "Timeouts"):
            if len(platform[per_invocation]) != invocations:
                failures.append(f"{name}: {len(platform[per_invocation])} {per_invocation} values "
                                f"for {invocations} invocations")
        if invocations < len(request_ids):
            failures.append(f"{name}: {invocations} Duration values for {len(request_ids)} logged requests")
        if sum(platform["ColdStart"]) != len(platform["InitDuration"]) or not platform["InitDuration"]:
            failures.append(f"{name}: ColdStart {sum(platform['ColdStart'])} vs InitDuration "
                            f"{len(platform['InitDuration'])}")
        if sum(platform["LogsDropped"]) != 0:
            failures.append(f"{name}: {sum(platform['LogsDropped'])} log records dropped under normal load")
        print(f"  {name}: {checked} log lines and {sum(len(v) for v in metrics_written.values())} "
              f"metric values shipped; {invocations} invocations, "
              f"{int(sum(platform['ColdStart']))} cold starts")
    return failures


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    log_path = sys.argv[1]
    platform_names = platform_metric_names()
    lambda_client = boto3.client("lambda")
    logs = boto3.client("logs")
    functions = {
        f["FunctionName"]: f["Environment"]["Variables"]["BOOKS_TELEMETRY_LOG_GROUP"]
        for f in lambda_client.list_functions()["Functions"]
    }
    log_text = pathlib.Path(log_path).read_text(errors="replace")
    failures = []
    if "could not be shipped" in log_text:
        failures.append("the extension reported telemetry it could not ship at shutdown")
    written = function_lines(log_path, functions)
    extension_written = function_lines(log_path, functions, extension="books-telemetry")
    if not any(written.values()):
        failures.append(f"no function output found in {log_path}")
    print("==> telemetry shipped by books-telemetry (moto CloudWatch Logs)")
    for name, group in sorted(functions.items()):
        failures += check_function(name, written.get(name, []), shipped_events(logs, group), platform_names,
                                   extension_written.get(name, []))
    if failures:
        print("\n".join(["telemetry check failed:"] + failures[:40]), file=sys.stderr)
        raise SystemExit(1)
    print("==> every function line and metric reached CloudWatch Logs")


if __name__ == "__main__":
    main()
