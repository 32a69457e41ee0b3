#!/usr/bin/env python3
"""What an environment costs a month, itemised, and what 10,000 requests/s would take: computed
from what `make bench` measured in the local cloud (`make cost`).

    cost.py report  [--figures bench/cost-figures.json] [--prices bench/prices.json]
                    [--env dev] [--rate 100] [--reads 90]
    cost.py traffic --ready FILE --cloud-log FILE --state FILE [--requests 100]
    cost.py figures --state FILE --out FILE [--binaries release]

`traffic` (scripts/bench_cost, the first step of `make bench`, on a fresh local cloud) sends a
known traffic through the gateway — POSTs of one representative book, GETs of them by id, author
lists — each kind in its own window of calls the endpoint records (`PUT /_books/calls`,
behaviour 17). The cloud is then stopped, so that every extension ships what it holds, and
`figures` reads the windows. From the recordings and the local cloud's own output it keeps, per
function and per kind of request, what a bill is made of: invocations, billed durations (post-runtime included, from the
`platform.report` records books-telemetry shipped), DynamoDB request units (each call's items
sized by DynamoDB's documented rules, transactions doubled, index entries added), CloudWatch Logs
bytes ingested (each `PutLogEvents` event's UTF-8 message plus its 26 bytes) and how well they
compress, the bytes Lambda's default logging would have ingested instead (the function's own
lines as it wrote them — books-local echoes each one to its log — plus START, END and REPORT),
Secrets Manager calls, and the resources billed by the month (custom metrics, alarms,
dashboards, secrets, KMS keys).

`report` turns those figures into money with the committed price table (bench/prices.json: date,
region, sources) for an environment's settings (terraform/environments/ENV.tfvars: memory sizes,
log retention, reserved concurrency, throttle), at a request rate and a share of reads.

Written here: no cost tool reads measured figures (AWS's pricing calculator and infracost take
usage as typed-in guesses).
"""

import argparse
import base64
import datetime
import gzip
import json
import math
import pathlib
import platform
import re
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request

from release_traffic import isbn13  # a valid ISBN-13 of its own per number

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECONDS_A_MONTH = 730 * 3600  # AWS's pricing examples use 730 hours a month
EVENT_OVERHEAD = 26  # bytes PutLogEvents adds to each event's message (its documented batch size)
ROLES = ("command", "query", "projector")
KINDS = ("post", "get", "list")
# The operations that move data, by how they are billed; the stream's reads by Lambda's event
# source mapping are free (DynamoDB Streams pricing), and control-plane calls are not billed.
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


# --- DynamoDB's capacity arithmetic ---------------------------------------------------------------
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html (index entry: +100 bytes)

def number_size(text):
    """A Number's size: 1 byte per two significant digits, plus 1."""
    digits = text.lstrip("-").replace(".", "")
    digits = digits.split("e")[0].split("E")[0].strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value):
    """The size of one attribute value in DynamoDB's JSON ({"S": ...}, {"M": {...}}, ...)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def item_size(item):
    """An item's size: its attribute names' UTF-8 bytes plus their values'."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size, transactional=False):
    """Write request units of writing an item of `size` bytes: 1 per KB started, twice in a
    transaction."""
    return max(1, math.ceil(size / 1024)) * (2 if transactional else 1)


def read_units(size, consistent=False, transactional=False):
    """Read request units of reading `size` bytes: 1 per 4 KB started when strongly consistent,
    half when eventually consistent, twice in a transaction."""
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return 2 * units
    return units if consistent else units / 2


# --- Lambda's arithmetic, as its pricing page's examples do it ------------------------------------

def lambda_charges(invocations, billed_ms, memory_mb, prices, architecture="x86_64", free_requests=0,
                   free_gb_seconds=0):
    """(request charge, compute charge, GB-seconds) for `invocations` of `billed_ms` each at
    `memory_mb`; the free tier, when given, comes off first (the pricing page's examples)."""
    gb_seconds = invocations * billed_ms / 1000 * memory_mb / 1024
    compute = max(0.0, gb_seconds - free_gb_seconds) * prices["lambda"][f"gb_second_{architecture}"]
    requests = max(0.0, invocations - free_requests) / 1e6 * prices["lambda"]["requests_per_million"]
    return requests, compute, gb_seconds


# --- an environment's settings, from its tfvars ---------------------------------------------------

def environment_settings(env):
    """Memory sizes, reserved concurrency, log retention, whether Lambda's default log groups
    keep a copy, and the usage plan's throttle, from terraform/environments/ENV.tfvars (with
    variables.tf's defaults for what it does not set)."""
    path = ROOT / "terraform" / "environments" / f"{env}.tfvars"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.tfvars"))
        raise SystemExit(f"error: no environment {env!r} (terraform/environments/ has {', '.join(known)})")
    text = path.read_text()
    defaults = (ROOT / "terraform" / "variables.tf").read_text()
    functions = {}
    for role in ROLES:
        found = re.search(rf"^\s*{role}\s*=\s*{{([^}}]*)}}", text, re.M)
        if not found:
            raise SystemExit(f"error: {path} does not set functions.{role}")
        fields = dict(re.findall(r"(\w+)\s*=\s*(-?\d+)", found.group(1)))
        functions[role] = {"memory_mb": int(fields["memory_mb"]),
                           "reserved_concurrency": int(fields.get("reserved_concurrency", -1))}

    def setting(name, pattern, default_pattern):
        found = re.search(rf"^{name}\s*=\s*{pattern}", text, re.M)
        if found:
            return found.groups()
        block = defaults.split(f'variable "{name}"', 1)[1].split("\n}", 1)[0]
        return re.search(rf"default\s*=\s*{default_pattern}", block).groups()

    architecture, = setting("architecture", r'"(\w+)"', r'"(\w+)"')
    retention, = setting("log_retention_days", r"(\d+)", r"(\d+)")
    keep, = setting("keep_platform_logs", r"(true|false)", r"(true|false)")
    rate, burst = setting("throttle", r"{\s*rate_limit\s*=\s*(\d+),\s*burst_limit\s*=\s*(\d+)",
                          r"{\s*rate_limit\s*=\s*(\d+),\s*burst_limit\s*=\s*(\d+)")
    return {"name": env, "functions": functions, "architecture": architecture, "log_retention_days": int(retention),
            "keep_platform_logs": keep == "true", "throttle": {"rate": int(rate), "burst": int(burst)}}


# --- the report -----------------------------------------------------------------------------------

def money(value):
    """Dollars: cents from a dollar up, four decimals at most below (two at least)."""
    if value >= 0.995 or value == 0:
        return f"${value:,.2f}"
    text = f"{value:.4f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.split(".")[1])) if len(text.split(".")[1]) < 2 else text)


def quantity(value, unit=""):
    for scale, suffix in ((1e9, " billion"), (1e6, " million"), (1e3, " thousand")):
        if value >= scale:
            return f"{value / scale:,.2f}{suffix}{unit}"
    return f"{value:,.2f}{unit}" if value != int(value) else f"{int(value):,}{unit}"


def lines_of_cost(figures, prices, settings, rate, reads, default_logging=False):
    """The month's bill as rows (item, quantity, unit price, cost a month), for `rate` requests/s
    of which a share `reads` are reads (GET by id and lists, half each) and the rest POSTs. With
    `default_logging`, the logs are what Lambda's default logging would ingest instead of
    books-telemetry's, and the functions' billed duration loses the extension's post-runtime."""
    month = rate * SECONDS_A_MONTH
    mix = {"post": month * (1 - reads), "get": month * reads / 2, "list": month * reads / 2}
    rows = []
    p = prices
    rows.append(("API Gateway REST requests", quantity(month), f"${p['api_gateway']['rest_requests_per_million']:.2f} per million",
                 month / 1e6 * p["api_gateway"]["rest_requests_per_million"]))
    invocations = {role: sum(mix[k] * figures["requests"][k]["invocations"].get(role, 0) for k in KINDS) for role in ROLES}
    total_invocations = sum(invocations.values())
    rows.append(("Lambda requests", quantity(total_invocations),
                 f"${p['lambda']['requests_per_million']:.2f} per million",
                 total_invocations / 1e6 * p["lambda"]["requests_per_million"]))
    for role in ROLES:
        measured = figures["functions"][role]
        billed = measured["billed_ms_mean"] - (measured["post_runtime_ms_mean"] if default_logging else 0)
        memory = settings["functions"][role]["memory_mb"]
        architecture = settings["architecture"]
        _, compute, gb_seconds = lambda_charges(invocations[role], billed, memory, p, architecture)
        rows.append((f"Lambda duration, {role} ({memory} MB {architecture}, {billed:.1f} ms billed each)",
                     quantity(gb_seconds, " GB-s"), f"${p['lambda'][f'gb_second_{architecture}']:.10f}".rstrip("0")
                     + " per GB-s", compute))
    wru = sum(mix[k] * figures["requests"][k]["dynamodb"]["write_units"] for k in KINDS)
    rru = sum(mix[k] * figures["requests"][k]["dynamodb"]["read_units"] for k in KINDS)
    rows.append(("DynamoDB write request units", quantity(wru),
                 f"${p['dynamodb']['write_request_units_per_million']:.3f} per million",
                 wru / 1e6 * p["dynamodb"]["write_request_units_per_million"]))
    rows.append(("DynamoDB read request units", quantity(rru),
                 f"${p['dynamodb']['read_request_units_per_million']:.3f} per million",
                 rru / 1e6 * p["dynamodb"]["read_request_units_per_million"]))
    stored = mix["post"] * figures["requests"]["post"]["dynamodb"]["stored_bytes"] / 1e9
    rows.append(("DynamoDB storage and point-in-time recovery added this month (tables and indexes)", f"{stored:,.3f} GB",
                 f"${p['dynamodb']['storage_gb_month'] + p['dynamodb']['point_in_time_recovery_gb_month']:.2f} per GB-month",
                 stored * (p["dynamodb"]["storage_gb_month"] + p["dynamodb"]["point_in_time_recovery_gb_month"])))
    logs = figures["logs"]
    telemetry = sum(invocations[role] * logs["telemetry_bytes_per_invocation"][role] for role in ROLES)
    default = sum(invocations[role] * logs["default_bytes_per_invocation"][role] for role in ROLES)
    if default_logging:
        ingested, label = default, "Lambda's default logging"
    else:
        ingested, label = telemetry + (default if settings["keep_platform_logs"] else 0), "books-telemetry"
        if settings["keep_platform_logs"]:
            label += " and Lambda's default log groups (keep_platform_logs)"
    ingested += month * (logs["other_bytes_per_request"] + logs.get("access_log_bytes_per_request", 0))
    ingested_gb = ingested / 1e9
    rows.append((f"CloudWatch Logs ingested ({label}; API access logs)", f"{ingested_gb:,.3f} GB",
                 f"${p['cloudwatch']['logs_ingested_gb']:.2f} per GB", ingested_gb * p["cloudwatch"]["logs_ingested_gb"]))
    kept = ingested_gb * logs["compression_ratio"] * settings["log_retention_days"] / (SECONDS_A_MONTH / 86400)
    rows.append((f"CloudWatch Logs stored ({settings['log_retention_days']} days kept, compressed to "
                 f"{logs['compression_ratio']:.0%}; steady state)", f"{kept:,.3f} GB",
                 f"${p['cloudwatch']['logs_stored_gb_month']:.2f} per GB-month", kept * p["cloudwatch"]["logs_stored_gb_month"]))
    resources = figures["resources"]
    for name, key, price in (("CloudWatch custom metrics", "custom_metrics", p["cloudwatch"]["custom_metric_month"]),
                             ("CloudWatch alarms", "alarms", p["cloudwatch"]["standard_alarm_month"]),
                             ("CloudWatch dashboards", "dashboards", p["cloudwatch"]["dashboard_month"]),
                             ("Secrets Manager secrets", "secrets", p["secrets_manager"]["secret_month"]),
                             ("KMS keys", "kms_keys", p["kms"]["key_month"])):
        rows.append((name, f"{resources[key]:,}", f"{money(price)} a month each", resources[key] * price))
    calls = sum(mix[k] * figures["requests"][k]["secrets_calls"] for k in KINDS)
    rows.append(("Secrets Manager API calls (at cold starts)", quantity(calls),
                 f"${p['secrets_manager']['api_calls_per_10000']:.2f} per 10,000",
                 calls / 1e4 * p["secrets_manager"]["api_calls_per_10000"]))
    q = p["quotas"]
    traced = min(rate, q["x_ray_sampling_reservoir_per_second"] + q["x_ray_sampling_rate"]
                 * max(0, rate - q["x_ray_sampling_reservoir_per_second"])) * SECONDS_A_MONTH
    rows.append(("X-Ray traces recorded (default sampling: 1/s, then 5%)", quantity(traced),
                 f"${p['x_ray']['traces_recorded_per_million']:.2f} per million",
                 traced / 1e6 * p["x_ray"]["traces_recorded_per_million"]))
    return rows, month


def capacity(figures, prices, settings, rate, reads):
    """What `rate` requests/s takes: concurrency per function (Little's law on the measured mean
    billed durations), DynamoDB request units per second per table, and the quotas and settings
    that would stop it first."""
    q = prices["quotas"]
    per_second = {"post": rate * (1 - reads), "get": rate * reads / 2, "list": rate * reads / 2}
    rows, limits = [], []
    total = 0
    for role in ROLES:
        invocations = sum(per_second[k] * figures["requests"][k]["invocations"].get(role, 0) for k in KINDS)
        needed = math.ceil(invocations * figures["functions"][role]["billed_ms_mean"] / 1000)
        total += needed
        reserved = settings["functions"][role]["reserved_concurrency"]
        rows.append((f"Lambda concurrency, {role}", f"{needed:,}",
                     f"{invocations:,.0f} invocations/s × {figures['functions'][role]['billed_ms_mean']:.1f} ms"))
        if 0 <= reserved < needed:
            limits.append(f"{role}'s reserved concurrency is {reserved}: raise functions.{role}.reserved_concurrency "
                          f"to at least {needed} in terraform/environments/{settings['name']}.tfvars")
    rows.append(("Lambda concurrency, all functions", f"{total:,}", f"account quota {q['lambda_concurrent_executions']:,}"))
    if total > q["lambda_concurrent_executions"]:
        limits.append(f"Lambda's concurrent executions ({q['lambda_concurrent_executions']:,} by default): request "
                      f"at least {math.ceil(total * 1.5 / 100) * 100:,} (Service Quotas, Lambda) for headroom")
    if settings["throttle"]["rate"] < rate:
        limits.append(f"the usage plan's throttle ({settings['throttle']['rate']:,} requests/s, burst "
                      f"{settings['throttle']['burst']:,}) answers 429 above it: raise throttle in "
                      f"terraform/environments/{settings['name']}.tfvars")
    if rate >= q["api_gateway_account_requests_per_second"]:
        limits.append(f"API Gateway's account throttle ({q['api_gateway_account_requests_per_second']:,} requests/s, "
                      f"burst {q['api_gateway_account_burst']:,}, shared by every API of the account and region) is "
                      f"reached: request more (Service Quotas, API Gateway)")
    tables = {}
    for k in KINDS:
        for measured, units in figures["requests"][k]["dynamodb"]["tables"].items():
            # The local cloud's table, by the name it has in this environment (books-<env>-<table>).
            table = f"books-{settings['name']}-{measured.rsplit('-', 1)[-1]}"
            entry = tables.setdefault(table, {"write_units": 0.0, "read_units": 0.0})
            entry["write_units"] += per_second[k] * units["write_units"]
            entry["read_units"] += per_second[k] * units["read_units"]
    for table, units in sorted(tables.items()):
        rows.append((f"DynamoDB {table}", f"{units['write_units']:,.0f} WRU/s, {units['read_units']:,.0f} RRU/s",
                     f"table maximum {q['dynamodb_table_max_request_units_per_second']:,} each"))
        if max(units.values()) > q["dynamodb_table_max_request_units_per_second"]:
            limits.append(f"DynamoDB's per-table maximum ({q['dynamodb_table_max_request_units_per_second']:,} request "
                          f"units/s) on {table}: request more (Service Quotas, DynamoDB)")
        if (units["write_units"] > q["dynamodb_new_on_demand_table_write_units_per_second"]
                or units["read_units"] > q["dynamodb_new_on_demand_table_read_units_per_second"]):
            limits.append(f"a new on-demand table serves {q['dynamodb_new_on_demand_table_write_units_per_second']:,} "
                          f"WRU/s and {q['dynamodb_new_on_demand_table_read_units_per_second']:,} RRU/s at first: "
                          f"pre-warm {table} (warm throughput) to {units['write_units']:,.0f} WRU/s and "
                          f"{units['read_units']:,.0f} RRU/s before the traffic arrives")
    # Each busy environment's extension flushes once per interval, or sooner when a batch is full
    # (1 MiB); the measured rate (one caller, every environment flushing at the end of its rare
    # invocations) is the ceiling.
    shipped = sum(per_second[k] * figures["requests"][k]["invocations"].get(role, 0)
                  * figures["logs"]["telemetry_bytes_per_invocation"][role] for k in KINDS for role in ROLES)
    calls = min(total / figures["logs"]["flush_interval_s"] + shipped / 1_048_576,
                rate * figures["logs"]["put_log_events_per_request_at_most"])
    rows.append(("CloudWatch Logs PutLogEvents", f"{calls:,.0f} calls/s",
                 f"{total:,} environments flushing every {figures['logs']['flush_interval_s']:g} s, "
                 f"{shipped / 1e6:,.1f} MB/s; account quota {q['logs_put_log_events_per_second']:,}/s"))
    if calls > q["logs_put_log_events_per_second"]:
        limits.append(f"CloudWatch Logs' PutLogEvents quota ({q['logs_put_log_events_per_second']:,}/s): request more "
                      f"or raise BOOKS_TELEMETRY_FLUSH_INTERVAL_MS")
    return rows, limits


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def report(figures, prices, env, rate, reads, heading="#"):
    """The whole report as Markdown."""
    settings = environment_settings(env)
    rows, month = lines_of_cost(figures, prices, settings, rate, reads)
    default_rows, _ = lines_of_cost(figures, prices, settings, rate, reads, default_logging=True)
    total = sum(r[3] for r in rows)
    default_total = sum(r[3] for r in default_rows)
    per_million = total / (month / 1e6)
    m = figures["measured"]
    out = [f"{heading} {env} at {rate:,g} requests/s ({reads:.0%} reads)", "",
           f"{quantity(month)} requests a month; {prices['region']} list prices of {prices['date']} "
           f"(bench/prices.json, no free tier); usage measured by `make bench` on {m['date']} "
           f"({m['binaries']} binaries, {m['requests_per_kind']} requests of each kind; bench/report.md, section 9).", "",
           table(("item", "a month", "unit price", "cost a month", "per million requests"),
                 [(r[0], r[1], r[2], money(r[3]), money(r[3] / (month / 1e6))) for r in rows]
                 + [("**total**", "", "", f"**{money(total)}**", f"**{money(per_million)}**")]), ""]
    changed = [(a[0], money(a[3]), b[0], money(b[3])) for a, b in zip(rows, default_rows) if abs(a[3] - b[3]) > 1e-9]
    saving = default_total - total
    out += ["With Lambda's default logging instead of books-telemetry (no extension: the function's lines, START, "
            "END and REPORT into /aws/lambda/<function>, no post-runtime), the lines that change:", "",
            table(("with books-telemetry", "", "with default logging", ""), changed), "",
            f"Total with default logging: {money(default_total)} a month; books-telemetry "
            + (f"saves {money(saving)} ({saving / default_total:.1%})." if saving >= 0
               else f"costs {money(-saving)} more ({-saving / default_total:.1%})."), ""]
    cap_rows, limits = capacity(figures, prices, settings, 10_000, reads)
    out += [f"{heading}# Capacity at 10,000 requests/s ({reads:.0%} reads), {env}'s settings", "",
            table(("what", "needed", "from"), cap_rows), "",
            "What to raise first:" if limits else "Nothing to raise: every quota and setting above holds.", ""]
    out += [f"{i}. {limit}" for i, limit in enumerate(limits, 1)]
    out += ["", f"Durations were measured on the local cloud ({m.get('architecture', 'this machine')}, DynamoDB on "
            "moto, no CPU share by memory size) and are priced as they are: Lambda gives a function CPU in "
            "proportion to its memory, so CPU-bound time grows at small sizes, while real DynamoDB answers faster "
            "than moto; both move the duration lines, nothing else."]
    return "\n".join(out)


def bench_section(figures, prices, rate=100, reads=0.9):
    """Section 9 of bench/report.md: the measured figures `make cost` prices, and each
    environment's month at `rate` requests/s."""
    m, f, logs = figures["measured"], figures["functions"], figures["logs"]
    per_request = figures["requests"]
    lines = ["## 9. Cost and capacity", "",
             f"Measured on a fresh local cloud before any load ({m['binaries']} binaries, {m['date']}): "
             f"{m['requests_per_kind']} POSTs of one representative book ({m['book_json_bytes']} bytes of JSON: every "
             "field set, a catalogue-length description), as many GETs of them by id and as many author lists, one "
             "caller, each kind in its own window of calls the endpoint recorded (`/_books/calls`); then the cloud "
             "stopped, so that every extension shipped what it held. `scripts/cost.py` reads the windows: "
             "invocations and billed durations from the `platform.report` records books-telemetry shipped (post-"
             "runtime included), DynamoDB request units from each call's items sized by DynamoDB's rules "
             "(transactions doubled, an index entry per index the item is in), CloudWatch Logs bytes as "
             "`PutLogEvents` counts them (message + 26 bytes), and what Lambda's default logging would have "
             "ingested instead: every line the function wrote (books-local echoes each) plus START, END and "
             "REPORT. The figures are in `cost-figures.json`; `make cost ENV=… RATE=… READS=…` prices them with "
             f"`bench/prices.json` ({prices['region']}, {prices['date']}).", "",
             table(("function", "invocations per POST / GET / list", "billed ms mean", "p50", "p99",
                    "post-runtime ms mean", "bytes shipped per invocation (books-telemetry)",
                    "bytes ingested per invocation (default logging)"),
                   [(role, " / ".join(f"{per_request[k]['invocations'][role]:g}" for k in KINDS),
                     f"{f[role]['billed_ms_mean']:.1f}", f"{f[role]['billed_ms_p50']:g}", f"{f[role]['billed_ms_p99']:g}",
                     f"{f[role]['post_runtime_ms_mean']:.2f}", f"{logs['telemetry_bytes_per_invocation'][role]:,.0f}",
                     f"{logs['default_bytes_per_invocation'][role]:,.0f}") for role in ROLES]), "",
             table(("request", "DynamoDB write units", "read units", "bytes left stored (items, indexes)", "tables"),
                   [(k, f"{per_request[k]['dynamodb']['write_units']:g}", f"{per_request[k]['dynamodb']['read_units']:g}",
                     f"{per_request[k]['dynamodb']['stored_bytes']:,.0f}",
                     ", ".join(f"{t}: {u['write_units']:g} W, {u['read_units']:g} R"
                               for t, u in sorted(per_request[k]['dynamodb']['tables'].items())))
                    for k in KINDS]), "",
             "Billed by the month, as the local cloud holds them after the traffic: "
             + ", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in figures["resources"].items())
             + f"; logs compress to {logs['compression_ratio']:.0%} (gzip of the shipped events).", "",
             f"Each environment at {rate:g} requests/s ({reads:.0%} reads, the rest POSTs), a month:", ""]
    rows = []
    for env in sorted(p.stem for p in (ROOT / "terraform" / "environments").glob("*.tfvars")):
        settings = environment_settings(env)
        ours, month = lines_of_cost(figures, prices, settings, rate, reads)
        theirs, _ = lines_of_cost(figures, prices, settings, rate, reads, default_logging=True)
        total, default = sum(r[3] for r in ours), sum(r[3] for r in theirs)
        _, limits = capacity(figures, prices, settings, 10_000, reads)
        rows.append((env, money(total), money(total / (month / 1e6)), money(default),
                     f"{(default - total) / default:+.1%}", len(limits)))
    lines += [table(("environment", "a month", "per million requests", "with default logging instead",
                     "books-telemetry saves", "settings or quotas to raise for 10,000 requests/s"), rows), ""]
    return lines


# --- the measurement ------------------------------------------------------------------------------

BOOK = {"title": "The Left Hand of Darkness: an annotated edition",
        "authors": ["Ursula K. Le Guin", "Cost Measurement"],
        "published_year": 1969, "tags": ["science-fiction", "classic", "anthropology"],
        "description": ("A Terran envoy is sent to Gethen, a planet whose people have no fixed sex, to bring it into "
                        "an interplanetary union; the novel follows his long journey across the ice with the exiled "
                        "prime minister who alone trusted him. A representative book for the cost measurement: "
                        "every field of the contract is set, at the length a catalogue entry usually has.")}


def http(method, url, key=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("x-api-key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def traffic(args):
    """The measured traffic, each kind in its own window of recorded calls; the recording goes
    on (for the shipping that follows) until `figures`. Writes the windows to --state."""
    import boto3  # the venv's; `report` needs nothing but the standard library

    ready = json.loads(pathlib.Path(args.ready).read_text())
    endpoint, url, key = ready["aws_endpoint_url"], ready["base_url"], ready["api_key"]
    names = {role: next(n for n in ready["functions"] if n.endswith(f"-{role}")) for role in ROLES}
    own = own_clients(boto3, ready)
    environments = {role: own("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]
                    for role, name in names.items()}
    view_table = environments["projector"]["BOOKS_VIEW_TABLE"]
    dynamodb = own("dynamodb")
    state = pathlib.Path(args.state)
    state.parent.mkdir(parents=True, exist_ok=True)
    cloud_log = pathlib.Path(args.cloud_log)
    serial = int(time.time() * 1000) % 10 ** 8
    n = args.requests

    windows, starts, ends, ids = {}, {}, {}, []
    log_start = cloud_log.stat().st_size
    for kind in KINDS:
        if ends:  # windows a second apart: each invocation's start lies in its own (see reports_in)
            time.sleep(max(0.0, (max(ends.values()) + WINDOW_GAP_MS) / 1000 - time.time()))
        windows[kind] = state.parent / f"cost-calls-{kind}.jsonl"
        windows[kind].unlink(missing_ok=True)
        status, answer = http("PUT", f"{endpoint}/_books/calls", body={"file": str(windows[kind]),
                                                                        "body_limit": 4 * 1024 * 1024})
        if status != 200:
            raise SystemExit(f"error: the endpoint does not record calls on demand ({status} {answer}): "
                             f"is it scripts/moto_server.py (books-local endpoint)?")
        starts[kind] = time.time() * 1000
        for i in range(n):
            if kind == "post":
                status, answer = http("POST", f"{url}/books", key, dict(BOOK, isbn=isbn13(serial + i)))
                ids.append(answer["id"] if status == 201 else None)
            elif kind == "get":
                status, answer = http("GET", f"{url}/books/{ids[i % len(ids)]}", key)
            else:
                status, answer = http("GET", f"{url}/books?author={urllib.parse.quote(BOOK['authors'][1])}&limit=20", key)
                status = status if status != 200 or answer["items"] else "an empty page"
            if status not in (200, 201):
                raise SystemExit(f"error: the {kind} request {i} was answered {status}: {answer}")
        if kind == "post":  # the projector's work belongs to the POSTs: the window ends once it is done
            wait_until(120, f"the projector to project {n} books",
                       lambda: all("Item" in dynamodb.get_item(TableName=view_table, ConsistentRead=True,
                                                               Key={"pk": {"S": f"BOOK#{i}"}, "sk": {"S": "BOOK"}})
                                   for i in ids))
        ends[kind] = time.time() * 1000
    state.write_text(json.dumps({
        "ready": ready, "requests": n, "names": names, "windows": {k: str(v) for k, v in windows.items()},
        "starts": starts, "ends": ends, "cloud_log": str(cloud_log), "log": [log_start, cloud_log.stat().st_size],
        "tables": [environments["command"]["BOOKS_TABLE"], view_table],
        "groups": {environments[role]["BOOKS_TELEMETRY_LOG_GROUP"]: role for role in ROLES},
        "flush_interval_s": int(environments["query"].get("BOOKS_TELEMETRY_FLUSH_INTERVAL_MS", 10_000)) / 1000},
        indent=2))
    print(f"cost measurement: {n} requests of each kind sent; stop the local cloud (its extensions ship what "
          f"they hold at SHUTDOWN), then `cost.py figures --state {state}`")


def own_clients(boto3, ready):
    """Clients of the local endpoint signed with the measurement's own key, whose calls are left
    out of what is measured."""
    return lambda service: boto3.client(service, region_name=ready["region"], endpoint_url=ready["aws_endpoint_url"],
                                        aws_access_key_id=OWN_KEY, aws_secret_access_key="testing")


def measured_figures(args):
    """The figures of a measurement `traffic` made, once the local cloud has stopped: every
    environment has shipped what it held (SHUTDOWN), so every invocation's report is in."""
    import boto3

    state = json.loads(pathlib.Path(args.state).read_text())
    ready, n, names = state["ready"], state["requests"], state["names"]
    starts, ends, groups = state["starts"], state["ends"], state["groups"]
    windows = {k: pathlib.Path(v) for k, v in state["windows"].items()}
    http("DELETE", f"{ready['aws_endpoint_url']}/_books/calls")
    own = own_clients(boto3, ready)
    dynamodb = own("dynamodb")

    events = {role: [] for role in list(ROLES) + [None]}
    for kind in KINDS:
        for call in recorded(windows[kind]):
            if (call.get("target") or "").endswith("PutLogEvents"):
                if not call.get("body"):
                    raise SystemExit(f"error: a PutLogEvents of {call['body_bytes']:,} bytes was recorded without its "
                                     f"body: the recording's body_limit is too small for what is measured")
                body = json.loads(call["body"])
                events[groups.get(body["logGroupName"])] += [(e["timestamp"], e["message"]) for e in body["logEvents"]]

    def reports_in(events, kind):
        """The reports of the invocations that started in the window of `kind`: a report is
        stamped (to the millisecond) when its invocation ends, post-runtime included, which may
        be after the window's last answer; its start is not, and windows are a second apart."""
        return [r for t, r in ((t, platform_report(m)) for t, m in events)
                if r and starts[kind] - WINDOW_GAP_MS / 2 <= t - r["metrics"]["durationMs"] < ends[kind] + WINDOW_GAP_MS / 2]

    counts = {(role, kind): len(reports_in(events[role], kind)) for role, kind in
              (("command", "post"), ("query", "get"), ("query", "list"))}
    if any(count != n for count in counts.values()):
        raise SystemExit(f"error: books-telemetry shipped {counts} reports of the {n} requests of each kind: "
                         f"a report lost or shipped twice, or the local cloud was not stopped before this step")
    calls = {kind: [c for c in recorded(windows[kind]) if (c.get("caller") or {}).get("access_key_id") != OWN_KEY]
             for kind in KINDS}
    described = {t: dict(dynamodb.describe_table(TableName=t)["Table"], TimeToLiveAttribute=dynamodb.describe_time_to_live(
        TableName=t)["TimeToLiveDescription"].get("AttributeName")) for t in state["tables"]}
    figures = {"measured": {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                            "binaries": args.binaries, "requests_per_kind": n, "architecture": platform.machine(),
                            "book_json_bytes": len(json.dumps(dict(BOOK, isbn=isbn13(0))).encode())},
               "requests": {}, "functions": {}}
    for kind in KINDS:
        units = dynamodb_units(calls[kind], described, dynamodb)
        figures["requests"][kind] = {
            "invocations": {role: len(reports_in(events[role], kind)) / n for role in ROLES},
            "dynamodb": {"write_units": units["write_units"] / n, "read_units": units["read_units"] / n,
                         "stored_bytes": units["stored_bytes"] / n,
                         "tables": {t: {u: v / n for u, v in per.items()} for t, per in units["tables"].items()}},
            "secrets_calls": sum(1 for c in calls[kind] if (c.get("target") or "").endswith("GetSecretValue")) / n}
    start, end = state["log"]
    raw = raw_lines(pathlib.Path(state["cloud_log"]).read_bytes()[start:end].decode(errors="replace"), names)
    telemetry, default = {}, {}
    for role in ROLES:
        reports = [r for kind in KINDS for r in reports_in(events[role], kind)]
        if not reports:
            raise SystemExit(f"error: books-telemetry shipped no platform.report of {names[role]}")
        billed = sorted(r["metrics"]["billedDurationMs"] for r in reports)
        window = [m for t, m in events[role] if starts[KINDS[0]] <= t < ends[KINDS[-1]] + 2000]
        figures["functions"][role] = {
            "invocations": len(reports), "memory_mb": reports[0]["metrics"].get("memorySizeMB"),
            "billed_ms_mean": statistics.fmean(billed), "billed_ms_p50": statistics.median(billed),
            "billed_ms_p99": billed[min(len(billed) - 1, int(len(billed) * 0.99))],
            "post_runtime_ms_mean": metric_mean(window, "PostRuntimeDuration"),
            "max_memory_used_mb": max(r["metrics"].get("maxMemoryUsedMB", 0) for r in reports)}
        telemetry[role] = sum(len(m.encode()) + EVENT_OVERHEAD for m in window) / len(reports)
        default[role] = default_logging_bytes(raw[role], reports) / len(reports)
    messages = "\n".join(m for role in ROLES for _, m in events[role]).encode()
    other = [m for t, m in events[None] if starts[KINDS[0]] <= t < ends[KINDS[-1]] + 2000]
    stage = own("apigateway").get_stage(restApiId=ready["rest_api_id"], stageName=ready["stage"])
    access_log = access_log_line(stage.get("accessLogSettings", {}).get("format", ""))
    figures["logs"] = {
        "telemetry_bytes_per_invocation": telemetry, "default_bytes_per_invocation": default,
        "other_bytes_per_request": sum(len(m.encode()) + EVENT_OVERHEAD for m in other) / (n * len(KINDS)),
        # books-local keeps the stage's access log to itself: its line is the stage's format rendered.
        "access_log_bytes_per_request": len(access_log.encode()) + EVENT_OVERHEAD if access_log else 0,
        "compression_ratio": len(gzip.compress(messages)) / len(messages),
        "put_log_events_per_request_at_most": sum(
            1 for kind in KINDS for c in calls[kind] if (c.get("target") or "").endswith("PutLogEvents")) / (n * len(KINDS)),
        "flush_interval_s": state["flush_interval_s"]}
    figures["resources"] = resources(own)
    pathlib.Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"cost figures: {args.out}")


OWN_KEY = "COSTMEASUREMENT"
WINDOW_GAP_MS = 1000


def wait_until(seconds, what, done):
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: waited {seconds:.0f} s for {what}")
        time.sleep(0.5)


def recorded(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


# What each $context variable of an access log format holds, at a typical length (an AWS
# request id, a public IPv4 address, a regional execute-api domain, an X-Ray trace id, ...).
ACCESS_LOG_VALUES = {
    "requestId": "0e8a1a4c-5b0f-4a9e-9c3b-7d2f1e6a4b5c", "extendedRequestId": "Jk3xQFhPIAMFd3A=",
    "identity.sourceIp": "203.0.113.10", "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    "identity.apiKeyId": "a1b2c3d4e5", "requestTimeEpoch": "1796659200000", "httpMethod": "GET",
    "resourcePath": "/books/{id}", "status": "200", "protocol": "HTTP/1.1", "responseLength": "612",
    "responseLatency": "24", "integration.latency": "21", "integration.error": "-", "error.responseType": "-",
    "xrayTraceId": "1-6755a2c0-0123456789abcdef01234567", "tlsVersion": "TLSv1.3",
    "cipherSuite": "TLS_AES_128_GCM_SHA256", "wafResponseCode": "-"}


def access_log_line(format_):
    """The stage's access log format with each $context variable replaced by a typical value
    ("-", as API Gateway writes an empty one, for those not listed)."""
    return re.sub(r"\$context\.([A-Za-z.]+)", lambda m: ACCESS_LOG_VALUES.get(m.group(1), "-"), format_)


def platform_report(message):
    """The record of a shipped `platform.report` event, else None."""
    if '"platform.report"' not in message:
        return None
    try:
        event = json.loads(message)
    except ValueError:
        return None
    return event.get("record") if isinstance(event, dict) and event.get("type") == "platform.report" else None


def metric_mean(messages, name):
    """The mean of a metric's values over the EMF documents among `messages` (a value, a list,
    or {Values, Counts} as aggregated documents hold them); 0 when none has it."""
    total = count = 0.0
    for message in messages:
        if '"_aws"' not in message or f'"{name}"' not in message:
            continue
        try:
            value = json.loads(message).get(name)
        except ValueError:
            continue
        if isinstance(value, dict):
            values, counts = value.get("Values", []), value.get("Counts") or [1] * len(value.get("Values", []))
        elif isinstance(value, list):
            values, counts = value, [1] * len(value)
        elif isinstance(value, (int, float)):
            values, counts = [value], [1]
        else:
            continue
        total += sum(v * c for v, c in zip(values, counts))
        count += sum(counts)
    return total / count if count else 0.0


def raw_lines(text, names):
    """The lines each function wrote, as books-local echoes them (`[<function>] <line>`)."""
    by_name = {f"[{name}] ": role for role, name in names.items()}
    lines = {role: [] for role in ROLES}
    for line in text.splitlines():
        if line.startswith("["):
            prefix = line[:line.find("] ") + 2]
            if prefix in by_name:
                lines[by_name[prefix]].append(line[len(prefix):])
    return lines


def default_logging_bytes(lines, reports):
    """What Lambda's default logging ingests for these invocations: every line the function
    wrote, and START, END and REPORT per invocation in Lambda's text format (each event with
    its 26 bytes)."""
    size = sum(len(line.encode()) + EVENT_OVERHEAD for line in lines)
    for report_ in reports:
        request, metrics = report_.get("requestId", "00000000-0000-0000-0000-000000000000"), report_["metrics"]
        platform = [f"START RequestId: {request} Version: $LATEST", f"END RequestId: {request}",
                    f"REPORT RequestId: {request}\tDuration: {metrics['durationMs']:.2f} ms\tBilled Duration: "
                    f"{metrics['billedDurationMs']} ms\tMemory Size: {metrics.get('memorySizeMB', 0)} MB\t"
                    f"Max Memory Used: {metrics.get('maxMemoryUsedMB', 0)} MB\t"]
        size += sum(len(line.encode()) + EVENT_OVERHEAD for line in platform)
    return size


def dynamodb_units(calls, described, dynamodb):
    """Request units of the DynamoDB calls among `calls` (recorded), in total and per table, and
    the bytes they left stored (items without a TTL attribute, with DynamoDB's 100 bytes per
    item, index entries included). Written items are sized from the request (a put) or from the
    table (an update, a delete, a condition check); reads are answered again to size what they
    returned."""
    totals = {"write_units": 0.0, "read_units": 0.0, "stored_bytes": 0, "tables": {}}

    def table_units(table):
        return totals["tables"].setdefault(table, {"write_units": 0.0, "read_units": 0.0})

    def current(table, key):
        return dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def written(table, item, transactional):
        size = item_size(item) if item else 1
        units = write_units(size, transactional)
        info = described.get(table, {})
        indexes = [ix for ix in info.get("GlobalSecondaryIndexes", [])
                   if item and all(k["AttributeName"] in item for k in ix["KeySchema"])]
        units += sum(write_units(size + 100) for _ in indexes)  # projection ALL: the item again, plus 100
        ttl = info.get("TimeToLiveAttribute")
        if item and not (ttl and ttl in item):
            totals["stored_bytes"] += size + 100 + sum(size + 100 for _ in indexes)
        totals["write_units"] += units
        table_units(table)["write_units"] += units

    def read(table, size, consistent, transactional=False):
        units = read_units(size, consistent, transactional)
        totals["read_units"] += units
        table_units(table)["read_units"] += units

    for call in calls:
        target = call.get("target") or ""
        if not target.startswith("DynamoDB_") or not call.get("body"):
            continue
        operation, body = target.rpartition(".")[2], json.loads(call["body"])
        if operation == "TransactWriteItems":
            for entry in body["TransactItems"]:
                (action, detail), = entry.items()
                table = detail["TableName"]
                written(table, detail["Item"] if action == "Put" else current(table, detail["Key"]), True)
        elif operation == "PutItem":
            written(body["TableName"], body["Item"], False)
        elif operation in ("UpdateItem", "DeleteItem"):
            written(body["TableName"], current(body["TableName"], body["Key"]), False)
        elif operation == "GetItem":
            item = current(body["TableName"], body["Key"])
            read(body["TableName"], item_size(item) if item else 0, body.get("ConsistentRead", False))
        elif operation == "Query":
            replay = {k: v for k, v in body.items() if k not in ("ProjectionExpression", "Select", "ReturnConsumedCapacity")}
            names = replay.get("ExpressionAttributeNames")
            if names:  # names only the projection used would be refused as unused
                used = " ".join(str(replay.get(e, "")) for e in ("KeyConditionExpression", "FilterExpression"))
                replay["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in used}
                if not replay["ExpressionAttributeNames"]:
                    del replay["ExpressionAttributeNames"]
            items = dynamodb.query(**replay).get("Items", [])
            read(body["TableName"], sum(item_size(i) for i in items), body.get("ConsistentRead", False))
        elif operation in WRITES | READS:
            raise SystemExit(f"error: the cost measurement does not size {operation} yet (a function calls it now)")
    return totals


def resources(own):
    """What is billed by the month, as the local cloud holds it after the traffic."""
    cloudwatch = own("cloudwatch")
    metrics = {(m["Namespace"], m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", []))))
               for page in cloudwatch.get_paginator("list_metrics").paginate() for m in page["Metrics"]
               if not m["Namespace"].startswith("AWS/")}
    alarms = cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return {"custom_metrics": len(metrics),
            "alarms": len(alarms["MetricAlarms"]) + len(alarms["CompositeAlarms"]),
            "dashboards": len(cloudwatch.list_dashboards()["DashboardEntries"]),
            "secrets": len(own("secretsmanager").list_secrets()["SecretList"]),
            "kms_keys": len(own("kms").list_keys()["Keys"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report")
    r.add_argument("--figures", default=str(ROOT / "bench" / "cost-figures.json"))
    r.add_argument("--prices", default=str(ROOT / "bench" / "prices.json"))
    r.add_argument("--env", default="dev")
    r.add_argument("--rate", type=float, default=100.0, help="requests per second, on average over the month")
    r.add_argument("--reads", type=float, default=90.0, help="percentage of the requests that are reads")
    t = sub.add_parser("traffic")
    t.add_argument("--ready", required=True)
    t.add_argument("--cloud-log", required=True)
    t.add_argument("--state", required=True)
    t.add_argument("--requests", type=int, default=100)
    f = sub.add_parser("figures")
    f.add_argument("--state", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--binaries", default="release")
    args = parser.parse_args()
    if args.command == "traffic":
        traffic(args)
        return
    if args.command == "figures":
        measured_figures(args)
        return
    if not 0 <= args.reads <= 100 or args.rate <= 0:
        raise SystemExit("error: RATE must be above 0 and READS a percentage (0 to 100)")
    if not pathlib.Path(args.figures).exists():
        raise SystemExit(f"error: no cost figures at {args.figures}: `make bench` measures them (bench/cost-figures.json "
                         f"is committed; COST_FIGURES=… names another)")
    figures = json.loads(pathlib.Path(args.figures).read_text())
    prices = json.loads(pathlib.Path(args.prices).read_text())
    print(report(figures, prices, args.env, args.rate, args.reads / 100))


if __name__ == "__main__":
    main()
