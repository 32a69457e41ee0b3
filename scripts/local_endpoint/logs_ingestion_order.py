"""GetLogEvents in ingestion order, for a token `i/<n>`.

CloudWatch extracts EMF metrics at ingestion; here books-local extracts them by reading every
log stream, which must see each event once in the order it arrived. moto's GetLogEvents pages
by index into the stream sorted by timestamp, so an event that arrives with an older timestamp
than one already read (a batch an extension held back) lands behind the reader's token: never
read, and the event it displaced read twice. A token `i/<n>` (never one moto hands out) reads
the stream in ingestion order from its n-th event; its next forward token is `i/<n + read>`.
Positions count from the stream's first event ever, expired ones included (behaviour 21).

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html (metrics extracted at ingestion)
- docs/local-endpoint-protocol.md: the `i/<n>` token is part of the endpoint's private protocol
"""

from moto.logs.models import LogStream

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


_get_log_events = LogStream.get_log_events
INGESTION_ORDER = "i/"


def _get_log_events_in_ingestion_order(self, start_time, end_time, limit, next_token, start_from_head):
    if not (next_token or "").startswith(INGESTION_ORDER):
        return _get_log_events(self, start_time, end_time, limit, next_token, start_from_head)
    start = int(next_token[len(INGESTION_ORDER):])
    # Positions count from the stream's first event ever: the events behaviour 21 expired are
    # no longer in the list, and a position among them reads on from the oldest kept.
    expired = getattr(self, "_books_expired", 0)
    first = max(start, expired)
    page = self.events[first - expired:first - expired + (limit or 10000)]
    end = first + len(page)
    return [event.to_response_dict() for event in page], f"{INGESTION_ORDER}{start}", f"{INGESTION_ORDER}{end}"


def apply():
    LogStream.get_log_events = _get_log_events_in_ingestion_order
