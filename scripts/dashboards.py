#!/usr/bin/env python3
"""Our dashboards and alarms against what CloudWatch really holds, and a picture of them.

    dashboards.py check [--namespace N]
        Fails if a dashboard widget or an alarm references a metric (namespace, name and
        dimension set) that CloudWatch never received; lists the metrics of our namespace that
        no dashboard shows.
    dashboards.py render --out-dir DIR [--format png|svg] [--period S] [--minutes M]
        Draws every dashboard as CloudWatch lays it out, each metric widget from GetMetricData of
        its own rows (statistics, percentiles, metric math) and each Logs Insights widget from its
        query's results (StartQuery on the groups of its SOURCE clauses), so one sees what it will
        show before deploying.

Both read CloudWatch through boto3, the endpoint, region and credentials the usual way
(AWS_ENDPOINT_URL for the local cloud's moto server, where books-local turns EMF into metrics and
publishes the AWS/Lambda, AWS/ApiGateway and AWS/SQS metrics). AWS/DynamoDB throttle metrics are
never published by the local endpoint (moto does not throttle): references to that namespace are
listed, not failed.
"""

import argparse
import datetime
import json
import math
import os
import re
import sys
import time

import boto3

# Namespaces whose metrics the local endpoint cannot produce, so a reference to them proves
# nothing either way (said, not failed).
UNKNOWABLE = ("AWS/DynamoDB",)


# --- what dashboards and alarms reference ----------------------------------------------------


def widget_metric_rows(widget):
    """[(namespace, metric, dims, options)] of a metric widget, "." shorthand expanded;
    expression rows (math, SEARCH) are skipped."""
    return [row for row in widget_rows(widget) if row[0] is not None]


def widget_rows(widget):
    """Every row of a metric widget: (namespace, metric, dims, options) for a metric, and
    (None, None, None, options) for an expression (its options hold "expression")."""
    rows = []
    previous = []
    for row in widget.get("properties", {}).get("metrics", []):
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        parts = row[:-1] if options else list(row)
        if not parts:  # an expression row: [{"expression": …}]
            rows.append((None, None, None, options))
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


def compare(published, dashboards, alarms, namespace):
    """(references never published: [(where, key)], references that cannot be known locally:
    [(where, key)], published keys of `namespace` no dashboard shows: [key])."""
    missing, unknowable = [], []
    shown = set()

    def judge(where, key):
        if key[0] in UNKNOWABLE:
            unknowable.append((where, key))
        elif key not in published:
            missing.append((where, key))

    for name, body in dashboards.items():
        for widget in body.get("widgets", []):
            if widget.get("type") != "metric":
                continue
            title = widget.get("properties", {}).get("title", "?")
            for ns, metric, dims, _ in widget_metric_rows(widget):
                shown.add((ns, metric, dims))
                judge(f"dashboard {name} / {title}", (ns, metric, dims))
    for alarm in alarms:
        for key in alarm_metrics(alarm):
            judge(f"alarm {alarm['AlarmName']}", key)
    unshown = sorted(key for key in published if key[0] == namespace and key not in shown)
    return missing, unknowable, unshown


def describe(key):
    namespace, metric, dims = key
    return f"{namespace}/{metric}{{{', '.join(f'{k}={v}' for k, v in dims)}}}"


def deployed_dashboards(cloudwatch):
    names = [d["DashboardName"] for p in cloudwatch.get_paginator("list_dashboards").paginate() for d in p["DashboardEntries"]]
    return {name: json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"]) for name in names}


def deployed_alarms(cloudwatch):
    return [a for p in cloudwatch.get_paginator("describe_alarms").paginate() for a in p["MetricAlarms"]]


def published_metrics(cloudwatch):
    """Every metric CloudWatch holds, as (namespace, name, dims)."""
    found = set()
    for page in cloudwatch.get_paginator("list_metrics").paginate():
        for metric in page["Metrics"]:
            dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
            found.add((metric["Namespace"], metric["MetricName"], dims))
    return found


def check(args, cloudwatch):
    published = published_metrics(cloudwatch)
    dashboards = deployed_dashboards(cloudwatch)
    alarms = deployed_alarms(cloudwatch)
    print(f"==> {len(published)} metrics in CloudWatch; {len(dashboards)} dashboards, {len(alarms)} alarms")
    if not dashboards:
        print("error: no dashboard deployed", file=sys.stderr)
        return 1
    missing, unknowable, unshown = compare(published, dashboards, alarms, args.namespace)
    for key in unshown:
        print(f"    published but on no dashboard: {describe(key)}")
    for where, key in unknowable:
        print(f"    not known locally ({key[0]}): {where}: {describe(key)}")
    if missing:
        print("dashboards or alarms reference metrics that are never published:", file=sys.stderr)
        for where, key in missing:
            print(f"  {where}: {describe(key)}", file=sys.stderr)
        return 1
    print("==> every metric a dashboard or alarm references is really published")
    return 0


# --- the picture -----------------------------------------------------------------------------


def widget_queries(properties, period):
    """GetMetricData queries of a metric widget's rows, with the label each line gets."""
    queries = []
    stat = properties.get("stat", "Average")
    for index, (namespace, metric, dims, options) in enumerate(widget_rows({"properties": properties})):
        query = {"Id": options.get("id") or f"m{index}", "ReturnData": options.get("visible", True)}
        if namespace is None:
            query["Expression"] = options["expression"]
            query["Label"] = options.get("label") or query["Id"]
        else:
            query["MetricStat"] = {
                "Metric": {"Namespace": namespace, "MetricName": metric,
                           "Dimensions": [{"Name": k, "Value": v} for k, v in dims]},
                "Period": int(options.get("period", period)),
                "Stat": options.get("stat", stat),
            }
            query["Label"] = options.get("label") or f"{metric} {' '.join(v for _, v in dims)} {query['MetricStat']['Stat']}"
        query["yAxis"] = options.get("yAxis", "left")
        queries.append(query)
    return queries


def fetch(cloudwatch, queries, start, end):
    """{id: (label, [(seconds since epoch, value)])} of the queries that return data."""
    sent = [{k: v for k, v in q.items() if k != "yAxis"} for q in queries]
    answer = cloudwatch.get_metric_data(MetricDataQueries=sent, StartTime=start, EndTime=end,
                                        ScanBy="TimestampAscending")
    labels = {q["Id"]: q["Label"] for q in queries}
    return {r["Id"]: (labels[r["Id"]], [(t.timestamp(), v) for t, v in zip(r["Timestamps"], r["Values"])])
            for r in answer["MetricDataResults"]}


def render(args, cloudwatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = boto3.client("logs", region_name=cloudwatch.meta.region_name)
    dashboards = deployed_dashboards(cloudwatch)
    if not dashboards:
        print("error: no dashboard deployed", file=sys.stderr)
        return 1
    end = datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(minutes=args.minutes)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, body in dashboards.items():
        widgets = body.get("widgets", [])
        fetched = {}
        for index, widget in enumerate(widgets):
            if widget.get("type") == "metric":
                queries = widget_queries(widget.get("properties", {}), args.period)
                fetched[index] = (queries, fetch(cloudwatch, queries, start, end))
        times = [t for _, results in fetched.values() for _, points in results.values() for t, _ in points]
        first, last = (min(times), max(times)) if times else (0, 0)
        rows = max((w.get("y", 0) + w.get("height", 6) for w in widgets), default=6)
        figure = plt.figure(figsize=(24, rows * 0.62), dpi=80)
        grid = figure.add_gridspec(rows, 24, hspace=3.0, wspace=1.2, left=0.03, right=0.97, top=0.97, bottom=0.03)
        for index, widget in enumerate(widgets):
            x, y = widget.get("x", 0), widget.get("y", 0)
            w, h = widget.get("width", 6), widget.get("height", 6)
            axes = figure.add_subplot(grid[y:y + h, x:x + w])
            properties = widget.get("properties", {})
            kind = widget.get("type")
            if kind == "metric":
                queries, results = fetched[index]
                draw_metric(axes, properties, queries, results, first, last, args.period)
            elif kind == "log":
                draw_log(axes, properties, insights(logs, properties["query"], start, end))
            else:
                text = properties.get("markdown") or ""
                axes.set_axis_off()
                axes.set_title(properties.get("title", "" if kind == "text" else kind), loc="left", fontsize=11)
                axes.text(0.0, 1.0, text[:600], va="top", ha="left", fontsize=8, family="monospace", wrap=True,
                          transform=axes.transAxes)
        span = f"{int(last - first)} s" if times else "no data"
        figure.suptitle(f"{name} — local preview from GetMetricData ({args.period} s periods, {span})", fontsize=13)
        path = os.path.join(args.out_dir, f"{name}.{args.format}")
        figure.savefig(path)
        plt.close(figure)
        print(f"==> {path}")
    return 0


def insights(logs, widget_query, start, end):
    """The rows of a Logs Insights widget's query, as the console runs it: the widget's SOURCE
    clauses are the log groups, the rest the query."""
    groups = re.findall(r"SOURCE\s+'([^']+)'\s*\|", widget_query)
    query = re.sub(r"SOURCE\s+'[^']+'\s*\|\s*", "", widget_query)
    query_id = logs.start_query(logGroupNames=groups, startTime=int(start.timestamp()), endTime=int(end.timestamp()),
                                queryString=query)["queryId"]
    deadline = time.monotonic() + 120
    while True:
        answer = logs.get_query_results(queryId=query_id)
        if answer["status"] == "Complete":
            return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in answer["results"]]
        if answer["status"] in ("Failed", "Cancelled", "Timeout") or time.monotonic() > deadline:
            raise RuntimeError(f"Logs Insights query {answer['status']}: {query}")
        time.sleep(0.5)


def draw_log(axes, properties, rows):
    """A Logs Insights widget: its rows as a table (the first ten, cells cut at 40 characters)."""
    axes.set_axis_off()
    axes.set_title(properties.get("title", ""), loc="left", fontsize=11)
    if not rows:
        axes.text(0.0, 0.9, "no rows in this period", va="top", ha="left", fontsize=9, transform=axes.transAxes)
        return
    columns = list(dict.fromkeys(name for row in rows for name in row))
    cells = [[str(row.get(name, ""))[:40] for name in columns] for row in rows[:10]]
    table = axes.table(cellText=cells, colLabels=columns, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7)


def gapped(points, period):
    """The points with a break (a NaN) after each that the next period has no value for: a line
    leaves a gap where CloudWatch has no data, rather than joining across it."""
    out = []
    for at, value in points:
        if out and at - out[-1][0] > period:
            out.append((out[-1][0] + period, math.nan))
        out.append((at, value))
    return out


def draw_metric(axes, properties, queries, results, first, last, period):
    from matplotlib import dates

    axes.set_title(properties.get("title", ""), loc="left", fontsize=11)
    if last - first < 3 * period:
        return draw_metric_bars(axes, queries, results, properties.get("stat", "Average"))
    right = None
    drawn = 0
    for query in queries:
        if query["Id"] not in results:
            continue
        label, points = results[query["Id"]]
        target = axes
        if query["yAxis"] == "right":
            right = right or axes.twinx()
            target = right
        points = gapped(points, query.get("MetricStat", {}).get("Period", period))
        target.plot([datetime.datetime.fromtimestamp(t, datetime.timezone.utc) for t, _ in points],
                    [v for _, v in points], marker=".", linewidth=1.2, label=label)
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
    axes.xaxis.set_major_formatter(dates.DateFormatter("%H:%M", tz=datetime.timezone.utc))
    axes.set_xlabel("UTC", fontsize=7)
    if drawn:
        handles, labels = axes.get_legend_handles_labels()
        if right is not None:
            more_handles, more_labels = right.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        axes.legend(handles, labels, fontsize=6, loc="upper left", ncol=2 if drawn > 5 else 1)


def summary(values, stat):
    """One figure for a whole short run: sums add up, everything else takes the largest period."""
    if not values:
        return 0.0
    return sum(values) if stat in ("Sum", "SampleCount") else max(values)


def draw_metric_bars(axes, queries, results, default_stat):
    """A run too short for a time series: one bar per line, as CloudWatch's bar view shows it."""
    labels, values = [], []
    for query in queries:
        if query["Id"] not in results:
            continue
        label, points = results[query["Id"]]
        stat = query.get("MetricStat", {}).get("Stat", default_stat)
        labels.append(label)
        values.append(summary([v for _, v in points], stat))
    positions = list(range(len(values)))
    bars = axes.barh(positions, values, color=[f"C{i % 10}" for i in positions], alpha=0.45)
    axes.set_yticks([])
    axes.invert_yaxis()
    axes.tick_params(axis="x", labelsize=7)
    for bar, label, value in zip(bars, labels, values):
        middle = bar.get_y() + bar.get_height() / 2
        axes.text(0, middle, f" {label}", va="center", ha="left", fontsize=7)
        axes.text(bar.get_width(), middle, f" {value:.4g}", va="center", fontsize=7, fontweight="bold")
    finite = [v for v in values if not math.isnan(v)]
    axes.set_xlim(left=0, right=(max(finite) if any(finite) else 1.0) * 1.3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "render"):
        command = sub.add_parser(name)
        command.add_argument("--namespace", default="Books")
        if name == "render":
            command.add_argument("--out-dir", required=True)
            command.add_argument("--format", choices=("png", "svg"), default="png")
            command.add_argument("--period", type=int, default=60, help="seconds per data point")
            command.add_argument("--minutes", type=int, default=60, help="how far back to draw")
    args = parser.parse_args(argv)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    return check(args, cloudwatch) if args.command == "check" else render(args, cloudwatch)


if __name__ == "__main__":
    sys.exit(main())
