"""The local AWS endpoint: moto's server with seven behaviours brought closer to AWS.

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
   destroy retried for twenty minutes. Here removing an absent stage changes nothing.

Everything else is moto's server, unchanged.
"""

import functools
import sys
import threading

from moto.awslambda.models import LambdaBackend
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.apigateway.models import UsagePlan
from moto.logs.models import LogStream
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

if __name__ == "__main__":
    sys.exit(main())
