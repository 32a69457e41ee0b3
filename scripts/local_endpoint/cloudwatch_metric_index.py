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

Here the series are the store: what moto's PutMetricData makes is moved at once into the
series of its metric (namespace, name, dimension set), kept in time order in compact arrays (a
datum object, ~240 bytes pickled, becomes five numbers, a period and a unit code; a saved state
shrinks with it), and moto's own list stays empty. ListMetrics answers distinct metrics with a
datum in the last two weeks, at most 500 a page; GetMetricStatistics matches the exact
dimension set, as CloudWatch does; GetMetricData (behaviour 5) reads its series through
`points()`. Every read costs a dictionary look-up and a binary search, plus a datum object made
for each point it answers.

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
from array import array
from typing import Iterable

from moto.cloudwatch.exceptions import InvalidParameterValue
from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, MetricDatum, Statistics

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
    """One metric's points in time order, stored compactly: parallel arrays of the time, sum,
    minimum, maximum and count of each point, and its period — negative for a value as put (its
    storage resolution; percentiles can be read from these), positive for a statistic set (as
    put, or a roll-up). A datum object is made only for a point a read returns."""

    __slots__ = ("namespace", "name", "dimensions", "units", "times", "sums", "mins", "maxs", "counts", "periods",
                 "unit_codes")

    def __init__(self, datum):
        self.namespace, self.name, self.dimensions = datum.namespace, datum.name, datum.dimensions
        self.units: list = []
        self.times, self.sums, self.mins, self.maxs, self.counts = (array("d") for _ in range(5))
        self.periods, self.unit_codes = array("i"), array("B")

    def __len__(self) -> int:
        return len(self.times)

    def _unit(self, unit) -> int:
        if unit not in self.units:
            self.units.append(unit)
        return self.units.index(unit)

    def _insert(self, where: int, point: tuple) -> None:
        for column, value in zip(self._columns(), point):
            column.insert(where, value)

    def _columns(self) -> tuple:
        return self.times, self.sums, self.mins, self.maxs, self.counts, self.periods, self.unit_codes

    def add(self, datum) -> None:
        if isinstance(datum, MetricAggregatedDatum):
            point = (epoch(datum.timestamp), datum.sum, datum.min, datum.max, datum.sample_count,
                     getattr(datum, "books_period", 60), self._unit(datum.unit))
        else:
            point = (epoch(datum.timestamp), datum.value, datum.value, datum.value, 1,
                     -getattr(datum, "books_resolution", 60), self._unit(datum.unit))
        at = point[0]
        where = len(self.times) if not self.times or at >= self.times[-1] else bisect.bisect_right(self.times, at)
        self._insert(where, point)

    def datum(self, i: int):
        """Point i as moto's datum object."""
        at = datetime.datetime.fromtimestamp(self.times[i], tz=_UTC).replace(tzinfo=None)
        unit = self.units[self.unit_codes[i]]
        if self.periods[i] < 0:
            made = MetricDatum(self.namespace, self.name, self.sums[i], [], at, unit)
        else:
            made = MetricAggregatedDatum(namespace=self.namespace, name=self.name, min_stat=self.mins[i],
                                         max_stat=self.maxs[i], sample_count=self.counts[i], sum_stat=self.sums[i],
                                         dimensions=[], timestamp=at, unit=unit)
        made.dimensions = self.dimensions
        return made

    def between(self, start: float, end: float) -> list:
        """The datums at start <= t < end."""
        return [self.datum(i) for i in range(bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end))]

    def age(self, since: float, until: float, period: int | None) -> bool:
        """Rolls the points at since <= t < until whose period is shorter up to `period` (None:
        drops them); True when anything changed."""
        first, last = bisect.bisect_left(self.times, since), bisect.bisect_left(self.times, until)
        if first == last:
            return False
        kept, buckets = [], {}
        if period is not None:
            for i in range(first, last):
                point = tuple(column[i] for column in self._columns())
                if abs(point[5]) >= period:
                    kept.append(point)
                else:
                    buckets.setdefault((point[0] // period * period, point[6]), []).append(point)
            if not buckets:
                return False
            for (at, unit), points in buckets.items():
                kept.append((at, sum(p[1] for p in points), min(p[2] for p in points), max(p[3] for p in points),
                             sum(p[4] for p in points), period, unit))
            kept.sort(key=lambda point: point[0])
        for n, column in enumerate(self._columns()):
            column[first:last] = array(column.typecode, [point[n] for point in kept])
        if 0 < first < len(self.times) and self.times[first - 1] > self.times[first]:
            # A roll-up's period began before an older point kept as it was: order again.
            points = sorted(zip(*self._columns()), key=lambda point: point[0])
            for n, column in enumerate(self._columns()):
                column[:] = array(column.typecode, [point[n] for point in points])
        return True


class Index:
    """Every metric's series, by (namespace, name, dimension set)."""

    def __init__(self):
        self.series: dict[tuple, Series] = {}
        self.aged_at: float | None = None
        # The oldest point each series was given below a limit the last pass already passed
        # (CloudWatch takes points up to two weeks old): the next pass, at once, ages from there.
        self.stale: dict[tuple, float] = {}

    def add(self, datum) -> None:
        key = (datum.namespace, datum.name, dimension_set(datum.dimensions))
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(datum)
        series.add(datum)
        at = epoch(datum.timestamp)
        if self.aged_at is not None and at < self.aged_at - RETENTION[0][0]:
            self.stale[key] = min(at, self.stale.get(key, at))


def index(backend: CloudWatchBackend) -> Index:
    """The backend's series, with what moto stored since the last call moved into them (moto's
    list stays empty between calls: the series are the store, and what a state saves)."""
    found = backend.__dict__.get("_books_metric_index")
    if found is None:
        found = backend._books_metric_index = Index()
    if backend.metric_data:
        for datum in backend.metric_data:
            found.add(datum)
        backend.metric_data = []
    at = now()
    if found.aged_at is None or found.stale or at - found.aged_at >= EXPIRY_EVERY_S:
        expire(found, at)
    return found


def expire(found: Index, at: float) -> None:
    """Rolls up and drops what crossed a retention limit since the last pass, everywhere (and
    in the stale series, from their oldest new point)."""
    for key, series in found.series.items():
        for age, period in RETENTION:
            # From an hour earlier: a roll-up stands at the start of its period, up to an hour
            # before the points it holds.
            since = -math.inf if found.aged_at is None else min(found.aged_at - age, found.stale.get(key, math.inf)) - 3600
            series.age(since, at - age, period)
    found.series = {key: series for key, series in found.series.items() if len(series)}
    found.stale = {}
    found.aged_at = at


_put_metric_data = CloudWatchBackend.put_metric_data


def put_metric_data(self, namespace, metric_data):
    """moto's, keeping each datum's StorageResolution (moto reads and drops it), then stored in
    the series."""
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
    index(self)


def get_all_metrics(self):
    """Every datum (nothing here reads them all; kept for any moto code that would)."""
    return [series.datum(i) for series in index(self).series.values() for i in range(len(series))] \
        + self.aws_metric_data


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
    found = {key: series.datum(len(series) - 1) for key, series in index(self).series.items()
             if series.times[-1] >= now() - LISTED_FOR_S and _matches(key, namespace, metric_name, wanted)}
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
    CloudWatchBackend.get_all_metrics = get_all_metrics
    CloudWatchBackend.list_metrics = list_metrics
    CloudWatchBackend.get_metric_statistics = get_metric_statistics
