"""Behaviour 5: moto's GetMetricData brought close enough to CloudWatch for alarms and dashboards
to be evaluated against it.

moto 5.2 answers GetMetricData with gaps that would make every alarm evaluation wrong (measured
on stock 5.2.1 and 5.2.6: upstream/cloudwatch-get-metric-data-*.md):
- the namespace is ignored; a query without dimensions matches a metric with any; the same
  dimensions given in another order than stored match nothing. CloudWatch matches namespace,
  name and the exact dimension set;
- a percentile statistic (p99, p99.9, ...) fails the whole call (a TypeError, a 500);
- a metric math expression answers the series of the one id it names verbatim, and nothing for
  arithmetic ("errors / invocations * 100") or FILL.

Here every query is answered as CloudWatch documents it: data points of one period each, aligned
to the period from the epoch, with Sum, Average, Minimum, Maximum, SampleCount or a percentile
(nearest rank); expressions of + - * /, parentheses, numbers, the ids of other queries and
FILL(series, value). Two series combine where both have a value; a division by zero yields no
value there. A new alarm starts in INSUFFICIENT_DATA, as in CloudWatch (moto starts it in OK, which would
make the first evaluation with data in range look like no change). Everything else about
CloudWatch stays moto's.

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Percentiles
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation (a new alarm is INSUFFICIENT_DATA)
"""

import datetime
import math
import re

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricAggregatedDatum

from local_endpoint import cloudwatch_metric_index as metric_index

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

_UTC = datetime.timezone.utc
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")


def statistic(stat, datums):
    """One statistic of the datums of one period (raw values and statistic sets); None when
    CloudWatch would have no value (a percentile of statistic sets only)."""
    values = [d.value for d in datums if not isinstance(d, MetricAggregatedDatum)]
    sets = [d for d in datums if isinstance(d, MetricAggregatedDatum)]
    count = len(values) + sum(s.sample_count for s in sets)
    if not count:
        return None
    total = sum(values) + sum(s.sum for s in sets)
    if stat == "Sum":
        return total
    if stat == "SampleCount":
        return count
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min(values + [s.min for s in sets])
    if stat == "Maximum":
        return max(values + [s.max for s in sets])
    match = _PERCENTILE.match(stat)
    if match:
        if not values:
            return None
        ordered = sorted(values)
        rank = max(1, math.ceil(float(match.group(1)) / 100 * len(ordered)))
        return ordered[rank - 1]
    raise ValidationError(f"The statistic {stat} is not supported.")


def _series(backend, metric_stat, start, end):
    metric = metric_stat["Metric"]
    unit = metric_stat.get("Unit")
    period = int(metric_stat["Period"])
    first = math.floor(start / period) * period
    buckets = {}
    # The metric's own series, in the window (behaviour 20): not the whole history.
    for datum in metric_index.points(backend, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"),
                                     start, end):
        if unit and datum.unit != unit:
            continue
        at = metric_index.epoch(datum.timestamp)
        buckets.setdefault(first + math.floor((at - first) / period) * period, []).append(datum)
    series = {}
    for at, datums in buckets.items():
        value = statistic(metric_stat["Stat"], datums)
        if value is not None:
            series[at] = float(value)
    return series, period, first


class _Expression:
    """A metric math expression over the series of other queries (a small recursive descent)."""

    TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")

    def __init__(self, text, series, grid):
        self.tokens = [m.groups() for m in self.TOKEN.finditer(text) if any(m.groups())]
        self.position = 0
        self.series = series
        self.grid = grid
        self.text = text

    def fail(self, why):
        raise ValidationError(f"Error in expression '{self.text}': {why}")

    def peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else (None, None, None)

    def take(self, symbol=None):
        token = self.peek()
        if symbol is not None and token[2] != symbol:
            self.fail(f"expected '{symbol}'")
        self.position += 1
        return token

    def evaluate(self):
        value = self.sum()
        if self.position != len(self.tokens):
            self.fail("unexpected text after the expression")
        return value

    def sum(self):
        value = self.product()
        while self.peek()[2] in ("+", "-"):
            operator = self.take()[2]
            value = _combine(value, self.product(), operator)
        return value

    def product(self):
        value = self.unary()
        while self.peek()[2] in ("*", "/"):
            operator = self.take()[2]
            value = _combine(value, self.unary(), operator)
        return value

    def unary(self):
        if self.peek()[2] == "-":
            self.take()
            return _combine(0.0, self.unary(), "-")
        return self.atom()

    def atom(self):
        number, name, symbol = self.take()
        if number is not None:
            return float(number)
        if symbol == "(":
            value = self.sum()
            self.take(")")
            return value
        if name is not None and self.peek()[2] == "(":
            return self.function(name)
        if name is not None:
            if name not in self.series:
                self.fail(f"no query with id {name}")
            return self.series[name]
        self.fail("expected a number, an id or '('")

    def function(self, name):
        self.take("(")
        if name.upper() != "FILL":
            self.fail(f"the function {name} is not emulated (only FILL)")
        series = self.sum()
        self.take(",")
        value = self.sum()
        self.take(")")
        if not isinstance(series, dict) or isinstance(value, dict):
            self.fail("FILL takes a series and a number")
        return {at: series.get(at, value) for at in self.grid}


def _combine(left, right, operator):
    def apply(a, b):
        if operator == "+":
            return a + b
        if operator == "-":
            return a - b
        if operator == "*":
            return a * b
        return None if b == 0 else a / b

    if isinstance(left, dict) and isinstance(right, dict):
        pairs = {at: apply(left[at], right[at]) for at in left.keys() & right.keys()}
    elif isinstance(left, dict):
        pairs = {at: apply(value, right) for at, value in left.items()}
    elif isinstance(right, dict):
        pairs = {at: apply(left, value) for at, value in right.items()}
    else:
        value = apply(left, right)
        return math.nan if value is None else value
    return {at: value for at, value in pairs.items() if value is not None}


def get_metric_data(self, queries, start_time, end_time, scan_by="TimestampDescending"):
    start, end = metric_index.epoch(start_time), metric_index.epoch(end_time)
    if start >= end:
        raise ValidationError("The parameter StartTime must be less than the parameter EndTime.")
    computed = {}
    grid = set()
    for query in queries:
        if "MetricStat" in query:
            series, period, first = _series(self, query["MetricStat"], start, end)
            computed[query["Id"]] = series
            grid.update(first + i * period for i in range(math.ceil((end - first) / period)) if first + i * period < end)
    for query in queries:
        if "Expression" in query:
            value = _Expression(query["Expression"], computed, sorted(grid)).evaluate()
            computed[query["Id"]] = value if isinstance(value, dict) else {at: value for at in grid}
    results = []
    for query in queries:
        if str(query.get("ReturnData", True)).lower() == "false":
            continue
        points = sorted(computed[query["Id"]].items(), reverse=scan_by != "TimestampAscending")
        if "MetricStat" in query:
            label = query.get("Label") or query["MetricStat"]["Metric"]["MetricName"]
        else:
            label = query.get("Label") or query["Id"]
        results.append({
            "id": query["Id"],
            "label": label,
            "values": [value for _, value in points],
            "timestamps": [datetime.datetime.fromtimestamp(at, tz=_UTC) for at, _ in points],
            "status_code": "Complete",
        })
    return results


_alarm_init = Alarm.__init__


def _alarm_starting_unknown(self, *args, **kwargs):
    _alarm_init(self, *args, **kwargs)
    self.state_value = "INSUFFICIENT_DATA"


def apply():
    CloudWatchBackend.get_metric_data = get_metric_data
    Alarm.__init__ = _alarm_starting_unknown
