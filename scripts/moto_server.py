"""The local AWS endpoint: moto's server with eight behaviours brought closer to AWS, one cost
removed and a fault switch.

1. moto invokes a Lambda function itself (through Docker) whenever a DynamoDB table with an
   event source mapping gets a stream record, then drops the records it delivered. In the local
   cloud `books-local`'s stream poller plays the event source mapping, reading the stream like
   Lambda does; moto's own delivery would fail the write (no Docker here) or steal the records.
   So moto keeps stream records for readers and invokes nothing.
2. moto's server answers requests on several threads but does not lock its DynamoDB backend, so
   two concurrent conditional writes or transactions can both pass their conditions. DynamoDB
   makes each of them atomic; here every DynamoDB item operation runs under one lock.
3. moto prepares to roll a transaction back by deep-copying every table it names, before
   running it: a write costs what the table holds (a POST took seconds with a few thousand
   books), and the rollback swaps the tables for their copies, stream shard included, so every
   open shard iterator kept reading the old shard and never saw another record. Here a
   transaction saves only the items it touches (as they were) and each stream shard's length;
   a rollback puts those items back and cuts the shards to their length, so the table and shard
   objects stay, nothing of the cancelled transaction is left in either, and the cost is that
   of the items touched.
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

9. moto finds the backend of every request by listing its own package's folders (a directory
   read and a stat per entry, ~150 system calls), twice, under the lock that serialises every
   request's dispatch. Those folders do not change while the server runs: here they are listed
   once. (Where a GetItem's time goes, profiled with cProfile: Flask's and moto's dispatch,
   moto's response serialiser, and this lookup, about a sixth of the server's time; side by side,
   boto3 GetItem round trips went ~7% faster with it. The rest is moto's own and not cheap to
   change.)

And one switch AWS does not have, for the local cloud's fault scenarios (scripts/e2e_alarms.py):

10. Faults on demand (`Faults`): `POST /_books/faults` with `{"operation": "PutLogEvents",
   "match": {"logGroupName": "/aws/lambda/f"}, "status": 503, "code": "ServiceUnavailableException"}`
   makes every request of that operation (the `X-Amz-Target` action) whose JSON body holds those
   fields fail as AWS fails, without reaching moto; `GET` lists the faults with how many requests
   each failed, `DELETE` ends them all. A telemetry outage of one function is this, for instance.

Everything else is moto's server, unchanged.
"""

import collections
import copy
import functools
import io
import json
import re
import sys
import threading

from moto.awslambda.models import LambdaBackend
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    ResourceNotFoundException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.apigateway.models import UsagePlan
from moto.logs.models import LogStream
import moto.backends
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


class _Undo:
    """What a transaction changed, to put back (behaviour 3): each touched item as it was, and
    each stream shard's length before the transaction."""

    def __init__(self):
        self.items = []  # (table, hash value, range value, copy of the item or None), in order
        self.shards = {}  # id(shard): (shard, length)

    def save(self, table, hash_value, range_value):
        """Called before the item is written (an update changes the stored item in place)."""
        self.items.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        shard = table.stream_shard
        if shard is not None:
            self.shards.setdefault(id(shard), (shard, len(shard.items)))

    def roll_back(self):
        for table, hash_value, range_value, item in reversed(self.items):
            if range_value is None:
                if item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            elif item is None:
                same_hash = table.items.get(hash_value)
                if same_hash is not None:
                    same_hash.pop(range_value, None)
                    if not same_hash:
                        del table.items[hash_value]
            else:
                table.items[hash_value][range_value] = item
        for shard, length in self.shards.values():
            del shard.items[length:]


def _transact_touching_only_its_items(self, transact_items):
    """moto's TransactWriteItems (same checks, same order, same errors), rolled back by `_Undo`."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _Undo()
    targets = set()
    errors = []  # one (code, message, item) per action; (None, None, None) when it went through
    try:
        for action in transact_items:
            if len(action) > 1:
                raise TransactWriteSingleOpException
            old_item = None
            try:
                kind, operation = next(iter(action.items()))
                if kind not in ("ConditionCheck", "Put", "Delete", "Update"):
                    raise ValueError("Unsupported transaction operation")
                table_name = operation["TableName"]
                condition = operation.get("ConditionExpression")
                names = operation.get("ExpressionAttributeNames")
                values = operation.get("ExpressionAttributeValues")
                table = self.get_table(table_name)
                if kind == "Put":
                    attributes = operation["Item"]
                    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attributes[table.range_key_attr]
                else:
                    key = operation["Key"]
                target = (str(table_name), str(dict(sorted(key.items()))))
                if target in targets:
                    raise MultipleTransactionsException()
                targets.add(target)
                current = self.get_item(table_name, key)
                if condition is not None and not get_filter_expression(condition, names, values).expr(current):
                    if operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old_item)
                if kind != "ConditionCheck":
                    undo.save(table, *self.get_keys_value(table, key))
                written = {"condition_expression": condition, "expression_attribute_names": names,
                           "expression_attribute_values": values}
                if kind == "Put":
                    self.put_item(table_name, operation["Item"], **written)
                elif kind == "Delete":
                    self.delete_item(table_name, key, **written)
                elif kind == "Update":
                    self.update_item(table_name, key, update_expression=operation["UpdateExpression"], **written)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as failed:
                errors.append(("ConditionalCheckFailed", str(failed.message), old_item))
            except Exception as error:  # noqa: BLE001 - moto reports any other failure as the action's reason
                errors.append((type(error).__name__, str(error), old_item))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
    except BaseException:
        undo.roll_back()
        raise


DynamoDBBackend.transact_write_items = _transact_touching_only_its_items

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


class Faults:
    """WSGI middleware: requests that match a fault fail as AWS fails them (behaviour 10).

    Matches AWS JSON protocol requests (CloudWatch Logs, DynamoDB…: the operation in
    `X-Amz-Target`, the parameters in the JSON body). Faults live until `DELETE /_books/faults`.
    """

    PATH = "/_books/faults"

    def __init__(self, app):
        self.app = app
        self._guard = threading.Lock()
        self._faults = []  # dicts: operation, match, status, code, message, failed

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == self.PATH:
            return self._control(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self._guard:
            candidates = [f for f in self._faults if target.rpartition(".")[2] == f["operation"]]
        if not candidates:
            return self.app(environ, start_response)
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            parameters = json.loads(body or b"{}")
        except ValueError:
            parameters = {}
        for fault in candidates:
            if isinstance(parameters, dict) and all(parameters.get(k) == v for k, v in fault["match"].items()):
                with self._guard:
                    fault["failed"] += 1
                return _answer(start_response, fault["status"],
                               {"__type": fault["code"], "message": fault["message"]},
                               [("x-amzn-ErrorType", fault["code"])])
        return self.app(environ, start_response)

    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            try:
                asked = json.loads(_read_body(environ))
                fault = {"operation": str(asked["operation"]), "match": dict(asked.get("match") or {}),
                         "status": int(asked.get("status", 503)),
                         "code": str(asked.get("code", "ServiceUnavailableException")),
                         "message": str(asked.get("message", "injected by the local endpoint's fault switch")),
                         "failed": 0}
            except (ValueError, KeyError, TypeError) as error:
                return _answer(start_response, 400, {"message": f"a fault is {{operation, match?, status?, "
                                                                f"code?, message?}}: {error!r}"})
            with self._guard:
                self._faults.append(fault)
            return _answer(start_response, 201, fault)
        if method == "DELETE":
            with self._guard:
                ended, self._faults = self._faults, []
            return _answer(start_response, 200, {"ended": ended})
        with self._guard:
            return _answer(start_response, 200, {"faults": [dict(f) for f in self._faults]})


def _read_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _answer(start_response, status, document, headers=()):
    body = json.dumps(document).encode()
    reason = {200: "OK", 201: "Created", 400: "Bad Request"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/x-amz-json-1.1"),
                                         ("Content-Length", str(len(body))), *headers])
    return [body]


_list_of_moto_modules = moto.backends.list_of_moto_modules
_MOTO_MODULES = tuple(_list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES

_dispatcher = moto.server.DomainDispatcherApplication
moto.server.DomainDispatcherApplication = lambda create_app: Faults(RetriesAnsweredOnce(_dispatcher(create_app)))

if __name__ == "__main__":
    sys.exit(main())
