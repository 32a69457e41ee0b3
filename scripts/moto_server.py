"""The local AWS endpoint: moto's server with twelve behaviours brought closer to AWS (1 to 8, 12,
13, 15 and 16), one cost removed, a fault switch, a state that outlives the process, requests read
whole (14), and a record of every call with its caller (17).

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
   of the items touched. Stream reads (GetShardIterator, GetRecords) take the same lock as the
   item operations: a reader between a transaction's first write and its rollback read records
   that never happened, and its position then passed over the next real ones (found by the
   consistency checker: a replace acknowledged, never projected; scripts/consistency.py).
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
   `"probability": 0.2` fails only that share of the matching requests (drawn per request);
   `"after": true` lets the request be carried out and then answers the error instead of its
   answer: a lost answer, which the client's SDK retries under the same invocation id (see 8).
   `"delay": 4` holds the request that many seconds first (after carrying it out, with `after`),
   and `"slow": true` then lets it through to its real answer: a slow request, which a client's
   timeout gives up on and its SDK retries. `"reorder": true` answers the real answer with the
   `Records` it lists shuffled, some of them twice, and some records of the same stream's earlier
   answers again: stream reads (`GetRecords`) delivered out of order, duplicated and late, as a
   consumer that must converge on the newest state has to bear. The consistency checker
   (scripts/consistency.py) injects all of them on DynamoDB.

And one for `make run`, whose local data outlives the endpoint (`Persistence`):

11. `--state FILE`: the endpoint starts from the state saved in FILE, if there is one, and saves
   its whole state there when it stops (SIGTERM or Ctrl-C): every backend moto holds (tables,
   their items and streams, log groups, metrics, alarms, the API and its keys...), pickled at
   once so that objects one service shares with another stay shared, with what the emulator
   keeps in `PUT /_books/emulator-state` (where its stream pollers and its EMF extraction are;
   `GET` reads it back), so both are saved together and agree. The file is written whole or not
   at all, and names the moto version that wrote it: a state another version wrote is refused
   with the way out (`make run FRESH=1`), never half read. A server killed with SIGKILL saves
   nothing; the last saved state stays.

12. API Gateway answers a REST API's resource policy (`policy` of GetRestApi) with its quotes
   escaped (`{\\"Version\\":...}`), and Terraform's provider reads it back that way (it unquotes
   what it reads); moto answers it as it was sent, so the provider failed to read any policy
   (`invalid character ... after top-level value`) and could neither apply nor destroy one.
   Here the policy is answered escaped, as API Gateway does.

13. DynamoDB makes TransactWriteItems calls that carry one `ClientRequestToken` have the effect of
   one call for 10 minutes after the first completes; moto ignores the token. So a transaction's
   first attempt held past its timeout (the fault switch's `slow`) was carried out after its
   retry had been cancelled, when the condition that cancelled it no longer held: a create
   answered 409 left its book behind (found by the consistency checker). Here the first answer
   of a token that is the call's effect (carried out, or cancelled) is every later call's, and
   the token with other parameters is IdempotentParameterMismatch (`TransactionTokens`).

And one for every client of the endpoint (`WholeBodies`):

14. Once it has answered, werkzeug's server reads what is left of the request before it closes
   the connection, with a buffered read that returns only at 10 MB or at the end of the stream.
   A request whose body reached the server after its headers had been read, and whose answer
   did not need the body (a fault switch `DELETE` sent with `{}`, for instance), so held its
   thread until the client closed, and a client that reads to the close (`Connection: close`)
   waited for ever: a test hung on a loaded machine that way. Here every request's body is read
   whole before the request is handled, so nothing is left to read once it is answered.

And two where moto lets through what AWS refuses, so that a client that works here works there:

15. S3 refuses a request that authenticates two ways, a presigned query (`X-Amz-Algorithm`,
   `X-Amz-Signature`, or SigV2's `Signature`) and an `Authorization` header: 400 InvalidArgument,
   "Only one auth mechanism allowed; ...". A registry that serves blobs by redirecting to a
   presigned S3 URL (ECR, and the stand-in for it, scripts/ecr_standin.py) meets exactly this when
   its client sends the registry's credentials along on the redirect; moto answered the blob. An
   expired presigned URL is 403 AccessDenied "Request has expired", where moto answered it too.
   Only requests moto dispatches to S3 are judged, by moto's own dispatch (`S3Authentication`).
16. Lambda runs one image, so CreateFunction and UpdateFunctionCode refuse an `ImageUri` naming an
   image index or a Docker manifest list (what `docker buildx` pushes by default, with its
   provenance) with 400 InvalidParameterValueException, "The image manifest, config or layer
   media type for the source image ... is not supported." moto never looked at the media type
   (and, with MOTO_LAMBDA_STUB_ECR=false, failed with a KeyError on an index). Judged only when
   the endpoint's ECR holds the image; an image it does not hold is left to moto (stubbed by
   default, ImageNotFoundException with MOTO_LAMBDA_STUB_ECR=false).

And one for what AWS evaluates and moto does not, IAM (`CallRecorder`):

17. moto answers every call whatever the caller's policies allow, so a role that lacks a permission
   passes here and fails in AWS. With BOOKS_RECORD_CALLS=FILE in the server's environment (read
   when the server starts), every request is appended to FILE as one JSON line, for
   terraform/tests/iam_calls.py to map to the IAM actions it needs and check against the policies
   of the role that made it: `time` (UTC), `caller` (null when unsigned: `access_key_id`, and the
   credential scope's `service` and `region`, from the SigV4 `Authorization` header or a presigned
   URL's `X-Amz-Credential`; `role_arn` and `session_arn` when the key is one moto's STS handed out
   for an assumed role, AssumeRole or AssumeRoleWithWebIdentity, resolved when the call is made),
   `method`, `host`, `path` (as sent, percent-encoded), `query`, `target` (`X-Amz-Target`),
   `amz_headers` (the names, not the values, of the other `x-amz-*` headers), `content_type`,
   `body` (text, when JSON or form-encoded and at most 64 KiB; never S3's, which carries data;
   `SecretString` and `SecretBinary` replaced by "<redacted>"), `body_bytes`, and `status` (the
   answer's, null if it had not started when the application returned). The endpoint's own
   control paths (`/_books/`, `/moto-api/`) are not recorded. Lines are appended whole, one
   request at a time.

Everything else is moto's server, unchanged.
"""

import collections
import copy
import datetime
import functools
import importlib
import io
import json
import os
import pickle
import random
import re
import sys
import threading
import time
import urllib.parse
import weakref

from cryptography.hazmat.primitives import serialization
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
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
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.apigateway.models import RestAPI, UsagePlan
from moto.core.base_backend import BackendDict
from moto.ecr.models import ecr_backends
from moto.logs.models import LogStream
from moto.sts.models import sts_backends
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

# A stream is read under the same lock: never in the middle of a transaction (behaviour 3).
for _name in ("get_shard_iterator", "get_records"):
    setattr(DynamoDBStreamsBackend, _name, _atomic(getattr(DynamoDBStreamsBackend, _name)))


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

_rest_api_to_dict = RestAPI.to_dict


def _policy_escaped_as_api_gateway(self, *args, **kwargs):
    """Behaviour 12: the resource policy with its quotes escaped, as GetRestApi answers it."""
    document = _rest_api_to_dict(self, *args, **kwargs)
    policy = document.get("policy")
    if policy and '\\"' not in policy:
        document["policy"] = policy.replace('"', '\\"')
    return document


RestAPI.to_dict = _policy_escaped_as_api_gateway

_apply_patch_operations = UsagePlan.apply_patch_operations


def _remove_absent_stages_as_nothing(self, patch_operations):
    held = {f"{stage['apiId']}:{stage['stage']}" for stage in self.api_stages}
    kept = [op for op in patch_operations
            if not (op.get("op") == "remove" and op.get("path") == "/apiStages" and op.get("value") not in held)]
    return _apply_patch_operations(self, kept)


UsagePlan.apply_patch_operations = _remove_absent_stages_as_nothing

IMAGE_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json")


def _ecr_media_type(account_id, region, image_uri):
    """The manifest media type of the image `image_uri` names in the endpoint's ECR (its
    repository is the URI's path, whatever its host), or None when ECR does not hold it."""
    path = image_uri.split("/", 1)[-1]
    if "@" in path:
        repository, digest = path.split("@", 1)
        repository = repository.split(":", 1)[0]  # repository:tag@digest names the digest
        matches = lambda image: image.get_image_digest() == digest  # noqa: E731
    else:
        repository, _, tag = path.rpartition(":") if ":" in path else (path, ":", "latest")
        matches = lambda image: tag in image.image_tags  # noqa: E731
    held = ecr_backends[account_id][region].repositories.get(repository)
    for image in held.images if held else ():
        if matches(image):
            return image.image_manifest_media_type or json.loads(image.image_manifest).get("mediaType")
    return None


_set_function_code = LambdaFunction._set_function_code


def _one_image_only(self, updated_spec):
    """Behaviour 16: an image index is refused as Lambda refuses it."""
    uri = updated_spec.get("ImageUri")
    if uri and _ecr_media_type(self.account_id, self.region, uri) in IMAGE_INDEX_TYPES:
        # Lambda's words, as its users quote them: aws/aws-lambda-roadmap#82,
        # terraform-aws-modules/terraform-aws-lambda#741 (older answers said "manifest or layer").
        raise LambdaClientError("InvalidParameterValueException",
                                f"The image manifest, config or layer media type for the source image {uri} "
                                f"is not supported.")
    return _set_function_code(self, updated_spec)


LambdaFunction._set_function_code = _one_image_only


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
                status, headers, body = _run(self.app, environ)
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


class TransactionTokens:
    """WSGI middleware: DynamoDB's `ClientRequestToken` of TransactWriteItems, which moto ignores.

    DynamoDB makes identical calls with one token "have the same effect as one single call" for
    10 minutes after the first of them completes. So a call that completes after another with its
    token gets the first one's answer without being carried out, whether the first was carried out
    or cancelled; the same token with other parameters is refused (IdempotentParameterMismatch).
    Calls of one token run one at a time. Found by the consistency checker: a create's first
    attempt, held past its timeout, was carried out after its retry had been refused (409) and the
    ISBN freed meanwhile, leaving a book the client was told was never created.
    """

    TARGET = "DynamoDB_20120810.TransactWriteItems"
    WINDOW_S = 600.0

    class _Token:
        __slots__ = ("lock", "parameters", "answer", "completed")

        def __init__(self):
            self.lock = threading.Lock()
            self.parameters = None
            self.answer = None
            self.completed = 0.0

    def __init__(self, app, clock=time.monotonic):
        self.app = app
        self.clock = clock
        self._guard = threading.Lock()
        # Tokens in the order their answers were kept (calls in flight at the end): the expired
        # ones are at the front.
        self._tokens = collections.OrderedDict()

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def _expire(self, now):
        while self._tokens:
            oldest = next(iter(self._tokens.values()))
            if oldest.answer is None or now - oldest.completed <= self.WINDOW_S:
                return
            self._tokens.popitem(last=False)

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") != self.TARGET:
            return self.app(environ, start_response)
        body = _whole_body(environ)
        try:
            parameters = json.loads(body or b"{}")
        except ValueError:
            return self.app(environ, start_response)
        token = parameters.pop("ClientRequestToken", None) if isinstance(parameters, dict) else None
        if not token:
            return self.app(environ, start_response)
        with self._guard:
            self._expire(self.clock())
            entry = self._tokens.setdefault(token, self._Token())
        with entry.lock:
            if entry.answer is not None:
                if entry.parameters != parameters:
                    return _answer(start_response, 400, {
                        "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                        "message": "The request uses the same client token as a previous, but non-identical request."})
                status, headers, answer = entry.answer
                start_response(status, headers)
                return [answer]
            status, headers, answer = _run(self.app, environ)
            # Kept: the answers that are the call's effect, carried out or cancelled by a
            # condition. Throttling or a server error says nothing of what identical calls do.
            kept = status.startswith("2") or (status.startswith("400") and b"TransactionCanceledException" in answer)
            with self._guard:
                if kept:
                    entry.parameters, entry.answer, entry.completed = parameters, (status, headers, answer), self.clock()
                    self._tokens[token] = entry
                    self._tokens.move_to_end(token)
                elif entry.answer is None:
                    self._tokens.pop(token, None)  # nothing to answer again: not held for 10 minutes
            start_response(status, headers)
            return [answer]


class Faults:
    """WSGI middleware: requests that match a fault fail as AWS fails them (behaviour 10).

    Matches AWS JSON protocol requests (CloudWatch Logs, DynamoDB…: the operation in
    `X-Amz-Target`, the parameters in the JSON body). Faults live until `DELETE /_books/faults`.
    """

    PATH = "/_books/faults"

    def __init__(self, app):
        self.app = app
        self._guard = threading.Lock()
        self._delivered = {}  # stream ARN -> its latest records answered (reorder)
        self._faults = []  # dicts: operation, match, status, code, message, probability, after, delay, slow, reorder, failed (requests it applied to)

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
        body = _whole_body(environ)
        try:
            parameters = json.loads(body or b"{}")
        except ValueError:
            parameters = {}
        for fault in candidates:
            if not (isinstance(parameters, dict) and all(parameters.get(k) == v for k, v in fault["match"].items())):
                continue
            if random.random() >= fault["probability"]:
                continue
            with self._guard:
                fault["failed"] += 1
            if fault["slow"]:
                time.sleep(fault["delay"])
                return self.app(environ, start_response)
            if fault["reorder"]:
                return self._reordered(environ, start_response, parameters)
            if fault["after"]:
                # Carried out, then its answer lost: read it whole (and close it, as WSGI asks) and drop it.
                answer = self.app(environ, lambda status, headers, exc_info=None: None)
                try:
                    for _ in answer:
                        pass
                finally:
                    if hasattr(answer, "close"):
                        answer.close()
            time.sleep(fault["delay"])
            return _answer(start_response, fault["status"],
                           {"__type": fault["code"], "message": fault["message"]},
                           [("x-amzn-ErrorType", fault["code"])])
        return self.app(environ, start_response)

    def _reordered(self, environ, start_response, parameters):
        """The real answer, its `Records` shuffled, a third of them (at least one) twice, and up
        to as many of the stream's records answered before (late)."""
        started = []
        chunks = self.app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status, headers = started[0]
        document = json.loads(body or b"{}") if status.startswith("200") else None
        if isinstance(document, dict) and document.get("Records"):
            records = document["Records"]
            # A moto shard iterator starts with its stream's ARN.
            stream = str(parameters.get("ShardIterator", "")).split("|", 1)[0]
            with self._guard:
                earlier = self._delivered.setdefault(stream, collections.deque(maxlen=256))
                late = random.sample(list(earlier), min(len(earlier), max(1, len(records) // 3)))
                earlier.extend(records)
            records += random.sample(records, max(1, len(records) // 3)) + late
            random.shuffle(records)
            body = json.dumps(document).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            try:
                asked = json.loads(_read_body(environ))
                fault = {"operation": str(asked["operation"]), "match": dict(asked.get("match") or {}),
                         "status": int(asked.get("status", 503)),
                         "code": str(asked.get("code", "ServiceUnavailableException")),
                         "message": str(asked.get("message", "injected by the local endpoint's fault switch")),
                         "probability": float(asked.get("probability", 1.0)), "after": bool(asked.get("after", False)),
                         "delay": float(asked.get("delay", 0.0)), "slow": bool(asked.get("slow", False)),
                         "reorder": bool(asked.get("reorder", False)),
                         "failed": 0}
                if not 0 <= fault["delay"] <= 60:
                    raise ValueError(f"delay must be 0 to 60 seconds, not {fault['delay']}")
            except (ValueError, KeyError, TypeError) as error:
                return _answer(start_response, 400, {"message": f"a fault is {{operation, match?, status?, "
                                                                f"code?, message?, probability?, after?, delay?, slow?, reorder?}}: {error!r}"})
            with self._guard:
                self._faults.append(fault)
            return _answer(start_response, 201, fault)
        if method == "DELETE":
            with self._guard:
                ended, self._faults = self._faults, []
            return _answer(start_response, 200, {"ended": ended})
        with self._guard:
            return _answer(start_response, 200, {"faults": [dict(f) for f in self._faults]})


class Persistence:
    """The endpoint's state saved in a file and read back (behaviour 11), and the emulator's
    own part of it: WSGI middleware serving `/_books/emulator-state`."""

    PATH = "/_books/emulator-state"
    FORMAT = 1

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != self.PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "PUT":
            try:
                document = json.loads(_read_body(environ))
            except ValueError as error:
                return _answer(start_response, 400, {"message": f"the emulator's state is JSON: {error}"})
            with _ATOMIC:
                _EMULATOR_STATE.clear()
                _EMULATOR_STATE.update(document=document)
            return _answer(start_response, 200, {})
        with _ATOMIC:
            return _answer(start_response, 200, _EMULATOR_STATE.get("document", {}))

    @staticmethod
    def _backends():
        """Every backend registry moto has filled, by the module and name that hold it."""
        found, seen = {}, set()
        for module_name, module in sorted(sys.modules.items()):
            if not module_name.startswith("moto.") or module is None:
                continue
            for attribute, value in list(vars(module).items()):
                if isinstance(value, BackendDict) and value and id(value) not in seen:
                    seen.add(id(value))
                    found[(module_name, attribute)] = value
        return found

    @classmethod
    def save(cls, path):
        with _ATOMIC:
            for attempt in range(3):
                try:
                    buffer = io.BytesIO()
                    _StatePickler(buffer).dump({"format": cls.FORMAT, "moto": moto.__version__,
                                                "backends": cls._backends(), "emulator": dict(_EMULATOR_STATE)})
                    state = buffer.getvalue()
                    break
                except RuntimeError:  # a request still running changed a dict being pickled
                    if attempt == 2:
                        raise
        partial = f"{path}.partial"
        with open(partial, "wb") as file:
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
        print(f"local state saved in {path} ({len(state)} bytes)", file=sys.stderr)

    @classmethod
    def restore(cls, path):
        with open(path, "rb") as file:
            state = pickle.load(file)
        if state.get("format") != cls.FORMAT or state.get("moto") != moto.__version__:
            sys.exit(f"error: {path} holds a local state saved by moto {state.get('moto')} (format "
                     f"{state.get('format')}); this is moto {moto.__version__}.\n"
                     f"       fix: make run FRESH=1   (starts with an empty local cloud)")
        for (module_name, attribute), saved in state["backends"].items():
            registry = getattr(importlib.import_module(module_name), attribute)
            registry.clear()
            registry.update(saved)
        _EMULATOR_STATE.update(state["emulator"])
        print(f"local state restored from {path}", file=sys.stderr)


_EMULATOR_STATE = {}


def _private_key(pem):
    return serialization.load_pem_private_key(pem, None)


class _StatePickler(pickle.Pickler):
    """pickle, plus what moto's backends hold that pickle cannot write: locks (read back as
    new, free ones: nothing runs while the state is saved or read), the private keys of KMS
    keys (written as PKCS#8 PEM), weak-value dictionaries (Lambda's index of functions by ARN;
    the functions are pickled where they live, so the index points at them again), and default
    dictionaries whose factory is a lambda making an empty container (written with its type)."""

    _LOCKS = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)

    def reducer_override(self, obj):
        kind = type(obj)
        if kind in self._LOCKS:
            return self._LOCKS[kind], ()
        if kind.__module__.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            pem = obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            return _private_key, (pem,)
        if type(obj) is weakref.WeakValueDictionary:
            return weakref.WeakValueDictionary, (dict(obj),)
        if type(obj) is collections.defaultdict and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            made = obj.default_factory()
            if type(made) in (dict, list, set) and not made:
                return collections.defaultdict, (type(made), dict(obj))
            raise pickle.PicklingError(f"a defaultdict whose factory makes {made!r} cannot be saved")
        return NotImplemented


def _serve(argv):
    """moto's server, with the state in `--state FILE` restored first and saved at the end."""
    state = None
    if "--state" in argv:
        at = argv.index("--state")
        state, argv = argv[at + 1], argv[:at] + argv[at + 2:]
        if os.path.exists(state):
            Persistence.restore(state)
    try:
        return main(argv)
    finally:
        if state is not None:
            Persistence.save(state)


class WholeBodies:
    """WSGI middleware: the request's body is read whole before the request is handled (behaviour
    14). A chunked body (no Content-Length) is left to werkzeug, which reads it to its end."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if not environ.get("wsgi.input_terminated"):
            environ["wsgi.input"] = io.BytesIO(_read_body(environ))
        return self.app(environ, start_response)


class CallRecorder:
    """WSGI middleware: every request, with its caller, appended as one JSON line to the file
    BOOKS_RECORD_CALLS names (behaviour 17). Inside WholeBodies, so the body is there to read."""

    BODY_LIMIT = 64 * 1024
    CONTROL_PATHS = ("/_books/", "/moto-api/")
    TEXT_BODIES = ("json", "x-www-form-urlencoded")
    # Not a request's parameters: its signature, its date, and the target recorded on its own.
    UNRECORDED_HEADERS = {"x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "x-amz-target",
                          "x-amz-user-agent"}
    REDACTED = ("SecretString", "SecretBinary")

    def __init__(self, app, path):
        self.app = app
        self.path = path
        self._guard = threading.Lock()

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if not self.path or environ.get("PATH_INFO", "").startswith(self.CONTROL_PATHS):
            return self.app(environ, start_response)
        call = self._request(environ)
        statuses = []

        def recording(status, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, recording)
        finally:
            call["status"] = int(statuses[-1].split(" ", 1)[0]) if statuses else None
            line = json.dumps(call, separators=(",", ":")) + "\n"
            with self._guard, open(self.path, "a", encoding="utf-8") as file:
                file.write(line)

    def _request(self, environ):
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or urllib.parse.quote(environ.get("PATH_INFO", ""))
        path = raw.split("?", 1)[0]
        if "://" in path:  # an absolute URI, as a proxy is sent
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        query = environ.get("QUERY_STRING", "")
        caller = _caller(environ.get("HTTP_AUTHORIZATION", ""), query)
        content_type = environ.get("CONTENT_TYPE", "")
        body = _whole_body(environ)
        text = None
        if (len(body) <= self.BODY_LIMIT and any(kind in content_type for kind in self.TEXT_BODIES)
                and (caller or {}).get("service") != "s3"):
            text = self._redacted(body.decode("utf-8", errors="replace"))
        return {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "caller": caller,
            "method": environ.get("REQUEST_METHOD"),
            "host": environ.get("HTTP_HOST", ""),
            "path": path or "/",
            "query": query,
            "target": environ.get("HTTP_X_AMZ_TARGET"),
            "amz_headers": sorted(name[5:].lower().replace("_", "-") for name in environ
                                  if name.startswith("HTTP_X_AMZ_")
                                  and name[5:].lower().replace("_", "-") not in self.UNRECORDED_HEADERS),
            "content_type": content_type,
            "body": text,
            "body_bytes": len(body),
        }

    def _redacted(self, text):
        if not any(field in text for field in self.REDACTED):
            return text
        try:
            document = json.loads(text)
        except ValueError:
            return None  # a secret in a form body: nothing of it is recorded
        if isinstance(document, dict):
            document.update({field: "<redacted>" for field in self.REDACTED if field in document})
        return json.dumps(document)


_CREDENTIAL = re.compile(r"([^/\s,]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


def _caller(authorization, query):
    """Who signed the request (SigV4 header or presigned URL), and as which assumed role; None
    when it is not signed with SigV4."""
    scope = None
    if "Credential=" in authorization:
        scope = _CREDENTIAL.match(authorization.split("Credential=", 1)[1])
    elif "X-Amz-Credential" in query:
        credential = dict(urllib.parse.parse_qsl(query)).get("X-Amz-Credential", "")
        scope = _CREDENTIAL.match(credential)
    if scope is None:
        return None
    key, _, region, service = scope.groups()
    caller = {"access_key_id": key, "service": service, "region": region, "role_arn": None, "session_arn": None}
    for _ in range(3):  # another thread's first call in a new account changes the dictionaries read here
        try:
            role = next((role for account in list(sts_backends.values()) for backend in list(account.values())
                         for role in list(backend.assumed_roles) if role.access_key_id == key), None)
            break
        except RuntimeError:
            role = None
    if role is not None:
        caller.update(role_arn=role.role_arn, session_arn=role.arn)
    return caller


class S3Authentication:
    """WSGI middleware around moto's dispatcher: S3's refusals of a presigned request that also
    carries an `Authorization` header, or has expired (behaviour 15). moto checks neither."""

    ONE_MECHANISM = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
                     "query string parameter or the Authorization header should be specified")

    def __init__(self, dispatcher):
        self.app = dispatcher

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        presigned = {"X-Amz-Algorithm", "X-Amz-Signature", "Signature"} & query.keys()
        if not presigned or not self._dispatched_to_s3(environ):
            return self.app(environ, start_response)
        if environ.get("HTTP_AUTHORIZATION"):
            # S3 names the header; its value, a credential, is not echoed here.
            return _s3_error(start_response, "400 Bad Request", "InvalidArgument", self.ONE_MECHANISM,
                             ArgumentName="Authorization")
        expires = _presigned_expiry(query)
        now = time.time()
        if expires is not None and now > expires:
            return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Request has expired",
                             Expires=_iso(expires), ServerTime=_iso(now))
        return self.app(environ, start_response)

    def _dispatched_to_s3(self, environ):
        """Whether moto's dispatcher sends the request to S3: its own inference, and its default."""
        host = self.app.infer_service_region_host(environ, environ.get("PATH_INFO", ""))
        return self.app.get_backend_for_host(host or "s3.us-east-1.amazonaws.com") == "s3"


def _presigned_expiry(query):
    """When a presigned URL expires (seconds since the epoch): SigV4's X-Amz-Date plus
    X-Amz-Expires, or SigV2's Expires; None when it says neither readably."""
    try:
        if "X-Amz-Date" in query and "X-Amz-Expires" in query:
            signed = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
            return signed.replace(tzinfo=datetime.timezone.utc).timestamp() + int(query["X-Amz-Expires"])
        if "Expires" in query:
            return float(query["Expires"])
    except ValueError:
        pass
    return None


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _s3_error(start_response, status, code, message, **details):
    """An error in S3's XML format."""
    fields = "".join(f"<{name}>{value}</{name}>" for name, value in details.items())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"{fields}<RequestId>{random.getrandbits(64):016X}</RequestId></Error>").encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _run(app, environ):
    """Runs a WSGI application to its whole answer: (status, headers, body)."""
    started, written = [], []

    def start_response(status, headers, exc_info=None):  # noqa: ARG001 - the WSGI signature
        started[:] = [status, list(headers)]
        return written.append  # WSGI's legacy write(): its data precede the iterable's

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return started[0], started[1], b"".join(written) + body


def _whole_body(environ):
    """The request's body as `WholeBodies` read it, left for the application to read (a chunked
    body, which WholeBodies leaves to werkzeug, is none to the middlewares)."""
    stream = environ["wsgi.input"]
    return stream.getvalue() if isinstance(stream, io.BytesIO) else b""


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
moto.server.DomainDispatcherApplication = lambda create_app: WholeBodies(CallRecorder(Persistence(
    Faults(TransactionTokens(RetriesAnsweredOnce(S3Authentication(_dispatcher(create_app)))))),
    os.environ.get("BOOKS_RECORD_CALLS")))

if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
