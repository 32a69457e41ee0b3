"""Metrics kept as CloudWatch keeps them: one time-ordered series per metric (namespace, name,
dimension set), so that ListMetrics, GetMetricStatistics and GetMetricData cost what their
answer needs, whatever the history.

moto keeps every datum in one list and answers by scanning it. ListMetrics compares each datum
with every metric already listed, and its `are_dimensions_same` compares each dimension of one
set with every dimension of the other, so two sets of two or more dimensions are never the same:
every datum of such a metric (API Gateway's four, the functions' Service and Operation) is
listed as a metric of its own. A local cloud used for an hour and a half held ~90,000 datums,
and an unfiltered ListMetrics (what `aws cloudwatch list-metrics` sends) ran for more than
eight minutes — quadratic in the datums — to answer them all, duplicates included (issue 39).
GetMetricStatistics and GetMetricData scanned the whole history for each query.

Here the datums moto stores are indexed by metric identity as they arrive (the index catches up
with moto's list at each read, so every way a datum is stored is covered and a restored state
indexes itself), each series ordered by time. ListMetrics answers distinct metrics with a datum
in the last two weeks, at most 500 a page; GetMetricStatistics matches the exact dimension set,
as CloudWatch does; GetMetricData (behaviour 5) reads its series through `points()`. Every read
costs a dictionary look-up and a binary search, plus the points in its window.

And data ages as in CloudWatch: high-resolution points (StorageResolution below 60, which moto
drops and this module keeps) are rolled up to one-minute statistic sets after 3 hours, every
point to five-minute sets after 15 days and to one-hour sets after 63 days, and dropped after
455 days. A pass runs at most once a minute on a read, and converts only what crossed a limit
since the last pass (each point is rolled up at most three times in its life). Statistic sets
carry no percentiles, as moto's never did: a percentile of rolled-up data answers no value.

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_ListMetrics.html (distinct metrics, 500 a page, two weeks)
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html (exact dimensions)
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Metric (a metric is namespace, name and dimensions)
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#metrics-retention (3 hours, 15, 63, 455 days)
"""

from __future__ import annotations

import bisect
import datetime
import math
import time
from typing import Iterable

from moto.cloudwatch.exceptions import InvalidParameterValue
from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, Statistics

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

PAGE = 500
LISTED_FOR_S = 14 * 86400
DAY = 86400
# (age past which, the period points are rolled up to; None: dropped), youngest first.
RETENTION = ((3 * 3600, 60), (15 * DAY, 300), (63 * DAY, 3600), (455 * DAY, None))
EXPIRY_EVERY_S = 60


def now() -> float:
    """The endpoint's clock (tests set their own)."""
    return time.time()
_UTC = datetime.timezone.utc


def epoch(timestamp) -> float:
    """Seconds since the epoch of a datetime (naive: UTC, as moto stores them) or an ISO text."""
    if isinstance(timestamp, str):
        timestamp = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=_UTC)
    return timestamp.timestamp()


def dimension_set(dimensions) -> frozenset:
    """The (name, value) pairs of moto's stored dimensions or of a request's."""
    return frozenset((d.name, d.value) if hasattr(d, "name") else (d["Name"], d.get("Value"))
                     for d in dimensions or [])


class Series:
    """One metric's datums, in time order."""

    __slots__ = ("times", "datums")

    def __init__(self):
        self.times: list[float] = []
        self.datums: list = []

    def add(self, datum) -> None:
        at = epoch(datum.timestamp)
        if not self.times or at >= self.times[-1]:
            self.times.append(at)
            self.datums.append(datum)
        else:
            where = bisect.bisect_right(self.times, at)
            self.times.insert(where, at)
            self.datums.insert(where, datum)

    def between(self, start: float, end: float) -> list:
        """The datums at start <= t < end."""
        return self.datums[bisect.bisect_left(self.times, start):bisect.bisect_left(self.times, end)]

    def age(self, since: float, until: float, period: int | None) -> bool:
        """Rolls the datums at since <= t < until whose period is shorter up to `period` (None:
        drops them); True when anything changed."""
        first, last = bisect.bisect_left(self.times, since), bisect.bisect_left(self.times, until)
        crossed = self.datums[first:last]
        if period is None:
            kept = []
        else:
            kept, buckets = [], {}
            for at, datum in zip(self.times[first:last], crossed):
                if _period(datum) >= period:
                    kept.append((at, datum))
                else:
                    buckets.setdefault(at // period * period, []).append(datum)
            if not buckets:
                return False
            kept += [(at, _rolled_up(datums, at, period)) for at, datums in buckets.items()]
            kept.sort(key=lambda pair: pair[0])
        if not crossed:
            return False
        self.times[first:last] = [at for at, _ in kept]
        self.datums[first:last] = [datum for _, datum in kept]
        if 0 < first < len(self.times) and self.times[first - 1] > self.times[first]:
            # A roll-up's period began before an older point kept as it was: order again.
            pairs = sorted(zip(self.times, self.datums), key=lambda pair: pair[0])
            self.times, self.datums = [at for at, _ in pairs], [datum for _, datum in pairs]
        return True


def _period(datum) -> int:
    """The period a datum stands for: its roll-up's, or its storage resolution (60 unless said)."""
    return getattr(datum, "books_period", None) or getattr(datum, "books_resolution", 60)


def _rolled_up(datums: list, at: float, period: int) -> MetricAggregatedDatum:
    """One statistic set for the datums of one period."""
    values = [d for d in datums if not isinstance(d, MetricAggregatedDatum)]
    sets = [d for d in datums if isinstance(d, MetricAggregatedDatum)]
    first = datums[0]
    rolled = MetricAggregatedDatum(
        namespace=first.namespace, name=first.name,
        min_stat=min([d.value for d in values] + [d.min for d in sets]),
        max_stat=max([d.value for d in values] + [d.max for d in sets]),
        sample_count=len(values) + sum(d.sample_count for d in sets),
        sum_stat=sum(d.value for d in values) + sum(d.sum for d in sets),
        dimensions=[], timestamp=datetime.datetime.fromtimestamp(at, tz=_UTC).replace(tzinfo=None), unit=first.unit)
    rolled.dimensions = first.dimensions
    rolled.books_period = period
    return rolled


class Index:
    """Series by (namespace, name, dimension set), over the first `indexed` datums of moto's list."""

    def __init__(self):
        self.series: dict[tuple, Series] = {}
        self.indexed = 0
        self.aged_at: float | None = None

    def add(self, datum) -> None:
        key = (datum.namespace, datum.name, dimension_set(datum.dimensions))
        self.series.setdefault(key, Series()).add(datum)


def index(backend: CloudWatchBackend) -> Index:
    """The backend's index, caught up with what moto stored since the last read."""
    found = backend.__dict__.get("_books_metric_index")
    if found is None or found.indexed > len(backend.metric_data):
        found = backend._books_metric_index = Index()
    stored = backend.metric_data
    for datum in stored[found.indexed:]:
        found.add(datum)
    found.indexed = len(stored)
    at = now()
    if found.aged_at is None or at - found.aged_at >= EXPIRY_EVERY_S:
        expire(backend, found, at)
    return found


def expire(backend, found: Index, at: float) -> None:
    """Rolls up and drops what crossed a retention limit since the last pass, everywhere."""
    changed = False
    for series in found.series.values():
        for age, period in RETENTION:
            since = -math.inf if found.aged_at is None else found.aged_at - age
            changed |= series.age(since, at - age, period)
    found.series = {key: series for key, series in found.series.items() if series.datums}
    found.aged_at = at
    if changed:
        backend.metric_data = [datum for series in found.series.values() for datum in series.datums]
        found.indexed = len(backend.metric_data)


_put_metric_data = CloudWatchBackend.put_metric_data


def put_metric_data(self, namespace, metric_data):
    """moto's, keeping each datum's StorageResolution (moto reads and drops it)."""
    before = len(self.metric_data)
    _put_metric_data(self, namespace, metric_data)
    stored = iter(self.metric_data[before:])
    for member in metric_data:
        if member.get("Values"):
            count = sum(int(float(c)) for c in (member.get("Counts") or ["1"] * len(member["Values"])))
        else:
            count = 1
        resolution = int(member.get("StorageResolution") or 60)
        for _ in range(count):
            datum = next(stored, None)
            if datum is not None and resolution < 60:
                datum.books_resolution = resolution


def _providers(backend) -> Iterable:
    """moto's own computed AWS metrics (a few, made at each read), as (identity, datum)."""
    for datum in backend.aws_metric_data:
        yield (datum.namespace, datum.name, dimension_set(datum.dimensions)), datum


def points(backend, namespace: str, name: str, dimensions, start: float, end: float) -> list:
    """The datums of one metric (exact dimension set) at start <= t < end, in time order."""
    key = (namespace, name, dimension_set(dimensions))
    series = index(backend).series.get(key)
    found = series.between(start, end) if series else []
    extra = [d for k, d in _providers(backend) if k == key and start <= epoch(d.timestamp) < end]
    return sorted(found + extra, key=lambda d: epoch(d.timestamp)) if extra else found


def _matches(key: tuple, namespace, name, wanted: list[tuple]) -> bool:
    metric_namespace, metric_name, dimensions = key
    if namespace and namespace != metric_namespace or name and name != metric_name:
        return False
    names = {n: v for n, v in dimensions}
    return all(n in names and (v is None or names[n] == v) for n, v in wanted)


def list_metrics(self, next_token, namespace, metric_name, dimensions):
    wanted = [(d["Name"], d.get("Value")) for d in dimensions or []]
    found = {key: series.datums[-1] for key, series in index(self).series.items()
             if series.times and series.times[-1] >= now() - LISTED_FOR_S and _matches(key, namespace, metric_name, wanted)}
    for key, datum in _providers(self):
        if key not in found and _matches(key, namespace, metric_name, wanted):
            found[key] = datum
    ordered = [found[key] for key in sorted(found, key=lambda k: (k[0], k[1], sorted(k[2])))]
    start = 0
    if next_token:
        if not next_token.startswith("books/") or not next_token[6:].isdigit():
            raise InvalidParameterValue("Request parameter NextToken is invalid")
        start = int(next_token[6:])
    page = ordered[start:start + PAGE]
    token = f"books/{start + PAGE}" if start + PAGE < len(ordered) else None
    return token, page


def get_metric_statistics(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit=None):
    start, end = epoch(start_time.replace(microsecond=0)), epoch(end_time.replace(microsecond=0))
    if start >= end:
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    datums = [d for d in points(self, namespace, metric_name, dimensions, start, end) if not unit or d.unit == unit]
    buckets: dict[float, Statistics] = {}
    first = epoch(datums[0].timestamp) if datums else start
    for datum in datums:
        at = first + (epoch(datum.timestamp) - first) // period * period
        bucket = buckets.get(at)
        if bucket is None:
            bucket = buckets[at] = Statistics(stats, datetime.datetime.fromtimestamp(at, tz=_UTC).replace(tzinfo=None))
        bucket.metric_data.append(datum)
        bucket.unit = datum.unit
    return [buckets[at] for at in sorted(buckets)]


def apply():
    CloudWatchBackend.put_metric_data = put_metric_data
    CloudWatchBackend.list_metrics = list_metrics
    CloudWatchBackend.get_metric_statistics = get_metric_statistics
