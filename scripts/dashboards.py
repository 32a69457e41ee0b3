#!/usr/bin/env python3
"""Our dashboards and alarms against what the system really emits, and a picture of them.

    dashboards.py check [--log-group-prefix P] [--namespace N]
        Fails if a dashboard widget or an alarm references a metric (name + dimension set) of
        our namespace that never reached CloudWatch Logs as EMF; lists the emitted metrics that
        no dashboard shows.
    dashboards.py render --out-dir DIR [--format png|svg] [--bucket-seconds S]
        Draws every dashboard from the EMF values found in CloudWatch Logs, laid out as
        CloudWatch lays it out, so one sees what it will show before deploying.

The EMF values come from `books-local metrics` (the project's one EMF reader, in Rust; its path
in BOOKS_LOCAL, default target/debug/books-local); dashboards and alarms from CloudWatch through
boto3. Both read the endpoint, region and credentials the usual way (AWS_ENDPOINT_URL for the
local cloud's moto server).
"""

import argparse
import collections
import json
import math
import os
import pathlib
import subprocess
import sys

import boto3

STATS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")


# --- what was emitted ------------------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent


def books_local():
    path = pathlib.Path(os.environ.get("BOOKS_LOCAL") or ROOT / "target/debug/books-local")
    if not path.is_file():
        raise SystemExit(f"error: {path} is missing. Fix: make build-debug (or set BOOKS_LOCAL)")
    return path


def as_point(metric):
    """(namespace, metric, dims, timestamp_ms, value) of one line of `books-local metrics`;
    dims is a sorted tuple of (name, value)."""
    dims = tuple(sorted((name, value) for name, value in metric["dimensions"]))
    return metric["namespace"], metric["name"], dims, metric["timestamp_ms"], float(metric["value"])


def collect_points(prefix=""):
    """Every EMF value in the log groups whose name starts with `prefix`."""
    command = [str(books_local()), "metrics", "--log-group-prefix", prefix or "/"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [as_point(json.loads(line)) for line in output.splitlines() if line.strip()]


# --- what dashboards and alarms reference ----------------------------------------------------


def widget_metric_rows(widget):
    """[(namespace, metric, dims, options)] of a metric widget, "." shorthand expanded;
    expression rows (math, SEARCH) are skipped."""
    rows = []
    previous = []
    for row in widget.get("properties", {}).get("metrics", []):
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        parts = row[:-1] if options else list(row)
        if not parts:  # an expression row: [{"expression": …}]
            continue
        expanded = [previous[i] if part == "." and i < len(previous) else part for i, part in enumerate(parts)]
        previous = expanded
        if len(expanded) < 2 or len(expanded) % 2:
            raise ValueError(f"malformed metric row {row}")
        namespace, metric = expanded[0], expanded[1]
        dims = tuple(sorted(zip(expanded[2::2], expanded[3::2])))
        rows.append((namespace, metric, dims, options))
    return rows


def alarm_metrics(alarm):
    """[(namespace, metric, dims)] an alarm watches (single metric or metric math)."""
    def dims(items):
        return tuple(sorted((d["Name"], d["Value"]) for d in items or []))

    if alarm.get("MetricName"):
        return [(alarm.get("Namespace"), alarm["MetricName"], dims(alarm.get("Dimensions")))]
    found = []
    for query in alarm.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            found.append((metric.get("Namespace"), metric["MetricName"], dims(metric.get("Dimensions"))))
    return found


def compare(emitted, dashboards, alarms, namespace):
    """(references never emitted: [(where, key)], emitted keys no dashboard shows: [key])."""
    missing = []
    shown = set()
    for name, body in dashboards.items():
        for widget in body.get("widgets", []):
            if widget.get("type") != "metric":
                continue
            title = widget.get("properties", {}).get("title", "?")
            for ns, metric, dims, _ in widget_metric_rows(widget):
                if ns != namespace:
                    continue
                key = (ns, metric, dims)
                shown.add(key)
                if key not in emitted:
                    missing.append((f"dashboard {name} / {title}", key))
    for alarm in alarms:
        for key in alarm_metrics(alarm):
            if key[0] == namespace and key not in emitted:
                missing.append((f"alarm {alarm['AlarmName']}", key))
    unshown = sorted(key for key in emitted if key[0] == namespace and key not in shown)
    return missing, unshown


def describe(key):
    namespace, metric, dims = key
    return f"{namespace}/{metric}{{{', '.join(f'{k}={v}' for k, v in dims)}}}"


def deployed_dashboards(cloudwatch):
    names = [d["DashboardName"] for p in cloudwatch.get_paginator("list_dashboards").paginate() for d in p["DashboardEntries"]]
    return {name: json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"]) for name in names}


def deployed_alarms(cloudwatch):
    return [a for p in cloudwatch.get_paginator("describe_alarms").paginate() for a in p["MetricAlarms"]]


def check(args, cloudwatch):
    points = collect_points(args.log_group_prefix)
    emitted = {(ns, metric, dims) for ns, metric, dims, _, _ in points}
    dashboards = deployed_dashboards(cloudwatch)
    alarms = deployed_alarms(cloudwatch)
    print(f"==> {len(points)} EMF values of {len(emitted)} metrics emitted; "
          f"{len(dashboards)} dashboards, {len(alarms)} alarms")
    if not dashboards:
        print("error: no dashboard deployed", file=sys.stderr)
        return 1
    missing, unshown = compare(emitted, dashboards, alarms, args.namespace)
    for key in unshown:
        print(f"    emitted but on no dashboard: {describe(key)}")
    if missing:
        print("dashboards or alarms reference metrics that are never emitted:", file=sys.stderr)
        for where, key in missing:
            print(f"  {where}: {describe(key)}", file=sys.stderr)
        return 1
    print("==> every metric a dashboard or alarm references is really emitted")
    return 0


# --- the picture -----------------------------------------------------------------------------


def statistic(values, stat):
    if not values:
        return math.nan
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):
        ordered = sorted(values)
        rank = math.ceil(float(stat[1:]) / 100.0 * len(ordered))
        return ordered[max(0, min(len(ordered), rank) - 1)]
    raise ValueError(f"unsupported statistic {stat}")


def series(points, key, stat, bucket_ms, start_ms, end_ms):
    """(bucket starts in seconds from start, statistic per bucket) of one metric."""
    buckets = collections.defaultdict(list)
    for ns, metric, dims, timestamp, value in points:
        if (ns, metric, dims) == key:
            buckets[(timestamp - start_ms) // bucket_ms].append(value)
    count = int((end_ms - start_ms) // bucket_ms) + 1
    xs = [i * bucket_ms / 1000.0 for i in range(count)]
    ys = [statistic(buckets.get(i, []), stat) if buckets.get(i) else (0.0 if stat in ("Sum", "SampleCount") else math.nan)
          for i in range(count)]
    return xs, ys


def render(args, cloudwatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = collect_points(args.log_group_prefix)
    dashboards = deployed_dashboards(cloudwatch)
    if not dashboards:
        print("error: no dashboard deployed", file=sys.stderr)
        return 1
    if points:
        start_ms = min(p[3] for p in points)
        end_ms = max(p[3] for p in points)
    else:
        start_ms = end_ms = 0
    bucket_ms = args.bucket_seconds * 1000
    os.makedirs(args.out_dir, exist_ok=True)
    for name, body in dashboards.items():
        widgets = body.get("widgets", [])
        rows = max((w.get("y", 0) + w.get("height", 6) for w in widgets), default=6)
        figure = plt.figure(figsize=(24, rows * 0.62), dpi=80)
        grid = figure.add_gridspec(rows, 24, hspace=3.0, wspace=1.2, left=0.03, right=0.97, top=0.97, bottom=0.03)
        for widget in widgets:
            x, y = widget.get("x", 0), widget.get("y", 0)
            w, h = widget.get("width", 6), widget.get("height", 6)
            axes = figure.add_subplot(grid[y:y + h, x:x + w])
            properties = widget.get("properties", {})
            kind = widget.get("type")
            if kind == "metric":
                draw_metric(axes, properties, points, bucket_ms, start_ms, end_ms)
            else:
                text = properties.get("markdown") or properties.get("query") or ""
                axes.set_axis_off()
                axes.set_title(properties.get("title", "" if kind == "text" else kind), loc="left", fontsize=11)
                axes.text(0.0, 1.0, text[:600], va="top", ha="left", fontsize=8, family="monospace", wrap=True,
                          transform=axes.transAxes)
        figure.suptitle(f"{name} — local preview from {len(points)} EMF values ({args.bucket_seconds} s buckets)",
                        fontsize=13)
        path = os.path.join(args.out_dir, f"{name}.{args.format}")
        figure.savefig(path)
        plt.close(figure)
        print(f"==> {path}")
    return 0


def draw_metric(axes, properties, points, bucket_ms, start_ms, end_ms):
    axes.set_title(properties.get("title", ""), loc="left", fontsize=11)
    if end_ms - start_ms < 3 * bucket_ms:
        return draw_metric_bars(axes, properties, points)
    right = None
    drawn = 0
    for ns, metric, dims, options in widget_metric_rows({"properties": properties}):
        stat = options.get("stat", properties.get("stat", "Average"))
        label = options.get("label") or f"{metric} {' '.join(v for _, v in dims)} {stat}"
        xs, ys = series(points, (ns, metric, dims), stat, bucket_ms, start_ms, end_ms)
        target = axes
        if options.get("yAxis") == "right":
            right = right or axes.twinx()
            target = right
        target.plot(xs, ys, marker=".", linewidth=1.2, label=label)
        drawn += 1
    y_axis = properties.get("yAxis", {})
    for axis, side in ((axes, "left"), (right, "right")):
        if axis is None:
            continue
        settings = y_axis.get(side, {})
        if settings.get("label"):
            axis.set_ylabel(settings["label"], fontsize=8)
        low, high = settings.get("min"), settings.get("max")
        if low is not None or high is not None:
            axis.set_ylim(bottom=low, top=high)
        axis.tick_params(labelsize=7)
    axes.set_xlabel("seconds", fontsize=7)
    if drawn:
        handles, labels = axes.get_legend_handles_labels()
        if right is not None:
            more_handles, more_labels = right.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        axes.legend(handles, labels, fontsize=6, loc="upper left", ncol=2 if drawn > 5 else 1)


def draw_metric_bars(axes, properties, points):
    """A run too short for a time series (the extension aggregates per minute): one bar per
    series with the statistic over the whole run, as CloudWatch's bar view shows it."""
    labels, values = [], []
    for ns, metric, dims, options in widget_metric_rows({"properties": properties}):
        stat = options.get("stat", properties.get("stat", "Average"))
        samples = [p[4] for p in points if (p[0], p[1], p[2]) == (ns, metric, dims)]
        labels.append(options.get("label") or f"{metric} {' '.join(v for _, v in dims)} {stat}")
        values.append(statistic(samples, stat) if samples else 0.0)
    positions = list(range(len(values)))
    bars = axes.barh(positions, values, color=[f"C{i % 10}" for i in positions], alpha=0.45)
    axes.set_yticks([])
    axes.invert_yaxis()
    axes.tick_params(axis="x", labelsize=7)
    for bar, label, value in zip(bars, labels, values):
        middle = bar.get_y() + bar.get_height() / 2
        axes.text(0, middle, f" {label}", va="center", ha="left", fontsize=7)
        axes.text(bar.get_width(), middle, f" {value:.4g}", va="center", fontsize=7, fontweight="bold")
    axes.set_xlim(left=0, right=(max(values) if any(values) else 1.0) * 1.3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "render"):
        command = sub.add_parser(name)
        command.add_argument("--log-group-prefix", default="", help="only scan these log groups")
        command.add_argument("--namespace", default="Books")
        if name == "render":
            command.add_argument("--out-dir", required=True)
            command.add_argument("--format", choices=("png", "svg"), default="png")
            command.add_argument("--bucket-seconds", type=int, default=10)
    args = parser.parse_args(argv)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    return check(args, cloudwatch) if args.command == "check" else render(args, cloudwatch)


if __name__ == "__main__":
    sys.exit(main())
