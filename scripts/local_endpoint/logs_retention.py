"""Log events expire by their group's retention, and reads by time cost what they read.

moto keeps every log event forever, whatever the group's RetentionInDays (which Terraform sets
on every group here), and answers each FilterLogEvents and DescribeLogStreams by walking every
event of every stream: the first filters and sorts them all, the second takes the minimum and
maximum timestamp of each stream at each call. A local cloud kept for weeks grows without end
and each of those calls with it.

Here, at most once a minute on a write or a read, every stream of a group with a retention
drops the events older than it from the head of the stream's arrival order (CloudWatch deletes
expired events some time after they expire; an older event that arrived after a younger one
waits for it). The stream counts what it dropped, so that behaviour 6's `i/<n>` tokens (n is a
position in arrival order since the stream began) still name the same events. Each stream also
keeps its events ordered by timestamp, caught up at each read, so FilterLogEvents and
GetLogEvents bisect their time window (GetLogEvents pages it with moto's tokens) and
DescribeLogStreams reads the first and last timestamps. A saved state (behaviour
11) holds a stream's events as arrays and one list of messages, read back faster than an object
each.

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/Working-with-log-groups-and-streams.html#SettingLogRetention
- https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
- https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
"""

from __future__ import annotations

import bisect
import time
from array import array

from moto.logs.exceptions import InvalidParameterException
from moto.logs.models import LogEvent, LogsBackend, LogStream

from local_endpoint import logs_filter_patterns, logs_ingestion_order, persistence

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

EXPIRY_EVERY_S = 60
DAY_MS = 86_400_000


def now() -> float:
    """The endpoint's clock (tests set their own)."""
    return time.time()


class ByTime:
    """A stream's events ordered by timestamp, over the first `indexed` of its arrival order."""

    __slots__ = ("times", "events", "indexed")

    def __init__(self):
        self.times: list[int] = []
        self.events: list[LogEvent] = []
        self.indexed = 0


def by_time(stream: LogStream) -> ByTime:
    """The stream's time order, caught up with what arrived since the last read."""
    order = stream.__dict__.get("_books_by_time")
    if order is None or order.indexed > len(stream.events):
        order = stream._books_by_time = ByTime()
    for event in stream.events[order.indexed:]:
        if not order.times or event.timestamp >= order.times[-1]:
            order.times.append(event.timestamp)
            order.events.append(event)
        else:
            where = bisect.bisect_right(order.times, event.timestamp)
            order.times.insert(where, event.timestamp)
            order.events.insert(where, event)
    order.indexed = len(stream.events)
    return order


def expire_stream(stream: LogStream, cutoff_ms: int) -> int:
    """Drops the events older than the cutoff from the head of the arrival order; how many."""
    events = stream.events
    count = 0
    while count < len(events) and events[count].timestamp < cutoff_ms:
        count += 1
    if not count:
        return 0
    order = by_time(stream)
    gone = {id(event) for event in events[:count]}
    stream.stored_bytes = max(0, stream.stored_bytes - sum(len(event.message) for event in events[:count]))
    del events[:count]
    stream._books_expired = getattr(stream, "_books_expired", 0) + count
    old = bisect.bisect_left(order.times, cutoff_ms)
    kept = [(at, event) for at, event in zip(order.times[:old], order.events[:old]) if id(event) not in gone]
    order.times[:old] = [at for at, _ in kept]
    order.events[:old] = [event for _, event in kept]
    order.indexed = len(events)
    return count


def expire(backend: LogsBackend, at: float | None = None) -> int:
    """One pass over every group with a retention; how many events went."""
    at = now() if at is None else at
    backend._books_logs_expired_at = at
    dropped = 0
    for group in backend.groups.values():
        if not group.retention_in_days:
            continue
        cutoff = int(at * 1000) - int(group.retention_in_days) * DAY_MS
        for stream in group.streams.values():
            dropped += expire_stream(stream, cutoff)
    return dropped


def _maybe_expire(backend: LogsBackend) -> None:
    last = backend.__dict__.get("_books_logs_expired_at")
    if last is None or now() - last >= EXPIRY_EVERY_S:
        expire(backend)


# --- the patches ---------------------------------------------------------------------------------

def _filter_stream(self, start_time, end_time, filter_pattern):
    order = by_time(self)
    first = bisect.bisect_left(order.times, start_time) if start_time else 0
    last = bisect.bisect_right(order.times, end_time) if end_time else len(order.times)
    matches = logs_filter_patterns.EventMessageFilter(filter_pattern).matches
    found = []
    for event in order.events[first:last]:
        if matches(event.message):
            event_obj = event.to_filter_dict()
            event_obj["logStreamName"] = self.log_stream_name
            found.append(event_obj)
    return found


def _read_by_time(self, start_time, end_time, limit, next_token, start_from_head):
    """GetLogEvents (without an `i/<n>` token) from the time order: pages of the window between
    the times asked, `f/<n>` and `b/<n>` tokens (positions in that window) as moto hands out;
    the same forward token again at the end of the stream, as CloudWatch does."""
    order = by_time(self)
    first = bisect.bisect_left(order.times, start_time) if start_time else 0
    stop = bisect.bisect_right(order.times, end_time) if end_time else len(order.times)
    size, limit = stop - first, limit or 10000
    if next_token:
        direction, _, position = next_token.partition("/")
        if direction not in ("f", "b") or not position.isdigit():
            raise InvalidParameterException("The specified nextToken is invalid.")
        position = int(position)
        low, high = (position + 1, position + 1 + limit) if direction == "f" else (position - limit, position)
    else:
        low, high = (0, limit) if start_from_head else (size - limit, size)
    low, high = max(low, 0), min(high, size)
    if low >= high:
        return [], f"b/{low:056d}", f"f/{low - 1:056d}"
    page = [event.to_response_dict() for event in order.events[first + low:first + high]]
    return page, f"b/{low:056d}", f"f/{high - 1:056d}"


def _update(self):
    order = by_time(self)
    self.first_event_timestamp = order.times[0] if order.times else None
    self.last_event_timestamp = order.times[-1] if order.times else None


def _wrapped(method):
    def expiring(self, *args, **kwargs):
        _maybe_expire(self)
        return method(self, *args, **kwargs)
    expiring.__name__ = method.__name__
    return expiring


# --- a saved state ----------------------------------------------------------------------------------

def reduce_stream(stream: LogStream):
    """A stream as a saved state holds it: its events as arrays and a list of messages (read
    back several times faster than one object each); its time order is made again at the first
    read."""
    state = {key: value for key, value in stream.__dict__.items() if key not in ("events", "_books_by_time")}
    events = stream.events
    packed = (array("q", [e.ingestion_time for e in events]), array("q", [e.timestamp for e in events]),
              array("q", [e.event_id for e in events]), [e.message for e in events])
    return LogStream.__new__, (LogStream,), (state, packed), None, None, _restore_stream


def _restore_stream(stream: LogStream, saved) -> None:
    state, (ingestion_times, timestamps, event_ids, messages) = saved
    stream.__dict__.update(state)
    blank = LogEvent.__new__
    events = []
    for ingestion_time, timestamp, event_id, message in zip(ingestion_times, timestamps, event_ids, messages):
        event = blank(LogEvent)
        event.__dict__.update(ingestion_time=ingestion_time, timestamp=timestamp, message=message, event_id=event_id)
        events.append(event)
    stream.events = events
    # moto numbers events from a counter of its process: a restarted endpoint goes on from the
    # highest number it restored, so that no two events share an eventId.
    if event_ids:
        LogEvent._event_id = max(LogEvent._event_id, max(event_ids) + 1)


def apply():
    persistence.COMPACT[LogStream] = reduce_stream
    in_ingestion_order = LogStream.get_log_events  # behaviour 6's, for its `i/<n>` tokens

    def get_log_events(self, start_time, end_time, limit, next_token, start_from_head):
        if (next_token or "").startswith(logs_ingestion_order.INGESTION_ORDER):
            return in_ingestion_order(self, start_time, end_time, limit, next_token, start_from_head)
        return _read_by_time(self, start_time, end_time, limit, next_token, start_from_head)
    LogStream.get_log_events = get_log_events
    LogStream.filter_log_events = _filter_stream
    LogStream._update = _update
    for name in ("put_log_events", "filter_log_events", "get_log_events", "describe_log_streams"):
        setattr(LogsBackend, name, _wrapped(getattr(LogsBackend, name)))
