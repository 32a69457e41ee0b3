"""The local AWS endpoint: moto's server with eight behaviours brought closer to AWS.

1. moto invokes a Lambda function itself (through Docker) whenever a DynamoDB table with an
   event source mapping gets a stream record, then drops the records it delivered. In the local
   cloud `books-local`'s stream poller plays the event source mapping, reading the stream like
   Lambda does; moto's own delivery would fail the write (no Docker here) or steal the records.
   So moto keeps stream records for readers and invokes nothing.
2. moto's server answers requests on several threads but does not lock its DynamoDB backend, so
   two concurrent conditional writes or transactions can both pass their conditions. DynamoDB
   makes each of them atomic; here every DynamoDB item operation runs under one lock.
3. moto rolls a cancelled transaction back by swapping each table for a deep copy taken
   before it, stream shard included, so every open shard iterator keeps reading the old shard
   and never sees another record (a stream reader stalls after the first 409). Here the table
   and shard objects stay, and only their contents are restored.
4. DeleteTable on a table that is already gone answers "Requested resource not found" where
   DynamoDB answers "Requested resource not found: Table: <name> not found". The AWS provider
   of Terraform recognises only the latter as "already deleted", so a DeleteTable retried on a
   loaded machine (the first call went through) failed the whole destroy. Here it is DynamoDB's.
5. CloudWatch's GetMetricData (namespace and exact dimension matching, percentiles, metric
   math): see moto_cloudwatch.py. The local cloud's alarms and dashboards are evaluated with it.
6. CloudWatch extracts EMF metrics at ingestion; here books-local extracts them by reading every
   log stream, which must see each event once in the order it arrived. moto's GetLogEvents pages
   by index into the stream sorted by timestamp, so an event that arrives with an older timestamp
   than one already read (a batch an extension held back) lands behind the reader's token: never
   read, and the event it displaced read twice. A token `i/<n>` (never one moto hands out) reads
   the stream in ingestion order from its n-th event; its next forward token is `i/<n + read>`.
7. Removing a stage from a usage plan that no longer holds it fails with a 500 (a Python
   ValueError) in moto. Terraform's provider removes the plan's stages before deleting it and
   retries a 500; when a loaded machine made the first PATCH look lost and it was sent again, the
   destroy retried for twenty minutes. Here removing an absent stage changes nothing. (The
   lost answer itself is now handled once for every operation by 8; this stays because a 500
   for a stage that is already gone is moto's bug whoever sends the PATCH.)
8. An AWS SDK retries a request whose answer it never got (a connection reset) under the same
   `amz-sdk-invocation-id`, with `amz-sdk-request: attempt=N`. On a loaded machine the answers
   of this local endpoint do get lost after the request was carried out (Terraform's provider
   logs "retrying request CloudWatch/DeleteDashboards, attempt 2" with no answer to attempt 1;
   seen with werkzeug's server and with waitress alike), and the retry then fails on the first
   attempt's effect: DeleteDashboards answers 404 and the whole destroy fails. Here a retry of
   an invocation that was already answered with success gets that answer again instead of
   being carried out twice. Failures are never replayed: a retry after an error runs again.

Everything else is moto's server, unchanged.
"""

import collections
import functools
import re
import sys
import threading

from moto.awslambda.models import LambdaBackend
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.apigateway.models import UsagePlan
from moto.logs.models import LogStream
import moto.server
from moto.server import main

import moto_cloudwatch

moto_cloudwatch.apply()

_ATOMIC = threading.RLock()
_ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)


def _atomic(operation):
    @functools.wraps(operation)
    def run(*args, **kwargs):
        with _ATOMIC:
            return operation(*args, **kwargs)

    return run


_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_in_place(self, transact_items):
    tables = dict(self.tables)
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for name, table in tables.items():
            restored = self.tables.get(name)
            if restored is None or restored is table:
                continue
            shard = getattr(table, "stream_shard", None)
            table.__dict__.update(restored.__dict__)
            if shard is not None and restored.stream_shard is not None:
                shard.items = restored.stream_shard.items
                shard.table = table
                table.stream_shard = shard
            self.tables[name] = table
        raise


DynamoDBBackend.transact_write_items = _transact_in_place

for _name in _ITEM_OPERATIONS:
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))


_delete_table = DynamoDBBackend.delete_table


def _delete_table_as_dynamodb(self, name):
    try:
        self.get_table(name)
    except ResourceNotFoundException:
        raise ResourceNotFoundException(table_name=name.rsplit("/", 1)[-1]) from None
    return _delete_table(self, name)


DynamoDBBackend.delete_table = _delete_table_as_dynamodb


def _deliver_nothing(self, function_arn, items, source):  # noqa: ARG001 - moto's signature
    return None


LambdaBackend.send_dynamodb_items = _deliver_nothing

_get_log_events = LogStream.get_log_events
INGESTION_ORDER = "i/"


def _get_log_events_in_ingestion_order(self, start_time, end_time, limit, next_token, start_from_head):
    if not (next_token or "").startswith(INGESTION_ORDER):
        return _get_log_events(self, start_time, end_time, limit, next_token, start_from_head)
    start = int(next_token[len(INGESTION_ORDER):])
    page = self.events[start:start + (limit or 10000)]
    end = start + len(page)
    return [event.to_response_dict() for event in page], f"{INGESTION_ORDER}{start}", f"{INGESTION_ORDER}{end}"


LogStream.get_log_events = _get_log_events_in_ingestion_order

_apply_patch_operations = UsagePlan.apply_patch_operations


def _remove_absent_stages_as_nothing(self, patch_operations):
    held = {f"{stage['apiId']}:{stage['stage']}" for stage in self.api_stages}
    kept = [op for op in patch_operations
            if not (op.get("op") == "remove" and op.get("path") == "/apiStages" and op.get("value") not in held)]
    return _apply_patch_operations(self, kept)


UsagePlan.apply_patch_operations = _remove_absent_stages_as_nothing


class RetriesAnsweredOnce:
    """WSGI middleware: the success of an SDK invocation is answered again to its retries.

    Keeps the latest invocations (`most` of them) and their successful answers (`budget` bytes
    of bodies at most), the oldest going first. Attempts of one invocation run one at a time, so a retry that overtakes
    its first attempt waits for it and then gets its answer.
    """

    _ATTEMPT = re.compile(r"attempt=(\d+)")

    class _Invocation:
        __slots__ = ("lock", "answer")

        def __init__(self):
            self.lock = threading.Lock()
            self.answer = None  # (status, headers, body) of a success

    def __init__(self, app, budget=64 << 20, most=100_000):
        self.app = app
        self.budget = budget
        self.most = most
        self._held = 0
        self._guard = threading.Lock()
        self._invocations = collections.OrderedDict()

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        key = environ.get("HTTP_AMZ_SDK_INVOCATION_ID")
        if not key:
            return self.app(environ, start_response)
        attempt = self._ATTEMPT.search(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        retry = attempt is not None and int(attempt.group(1)) > 1
        with self._guard:
            invocation = self._invocations.setdefault(key, self._Invocation())
            self._forget_the_oldest()
        with invocation.lock:
            if not (retry and invocation.answer):
                status, headers, body = self._run(environ)
                if status.startswith("2"):
                    self._keep(key, invocation, (status, headers, body))
                start_response(status, headers)
                return [body]
            status, headers, body = invocation.answer
            start_response(status, headers)
            return [body]

    def _keep(self, key, invocation, answer):
        with self._guard:
            if key not in self._invocations:  # forgotten while it ran
                return
            self._held += len(answer[2]) - (len(invocation.answer[2]) if invocation.answer else 0)
            invocation.answer = answer
            self._invocations.move_to_end(key)
            self._forget_the_oldest()

    def _forget_the_oldest(self):
        while self._invocations and (self._held > self.budget or len(self._invocations) > self.most):
            _, oldest = self._invocations.popitem(last=False)
            if oldest.answer:
                self._held -= len(oldest.answer[2])

    def _run(self, environ):
        started, written = [], []

        def start_response(status, headers, exc_info=None):  # noqa: ARG001 - the WSGI signature
            started[:] = [status, list(headers)]
            return written.append  # WSGI's legacy write(): its data precede the iterable's

        chunks = self.app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return started[0], started[1], b"".join(written) + body


_dispatcher = moto.server.DomainDispatcherApplication
moto.server.DomainDispatcherApplication = lambda create_app: RetriesAnsweredOnce(_dispatcher(create_app))

if __name__ == "__main__":
    sys.exit(main())
