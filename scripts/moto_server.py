"""The local AWS endpoint: moto's server with two behaviours brought closer to AWS.

1. moto invokes a Lambda function itself (through Docker) whenever a DynamoDB table with an
   event source mapping gets a stream record, then drops the records it delivered. In the local
   cloud `books-local`'s stream poller plays the event source mapping, reading the stream like
   Lambda does; moto's own delivery would fail the write (no Docker here) or steal the records.
   So moto keeps stream records for readers and invokes nothing.
2. moto's server answers requests on several threads but does not lock its DynamoDB backend, so
   two concurrent conditional writes or transactions can both pass their conditions. DynamoDB
   makes each of them atomic; here every DynamoDB item operation runs under one lock.

Everything else is moto's server, unchanged.
"""

import functools
import sys
import threading

from moto.awslambda.models import LambdaBackend
from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

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


for _name in _ITEM_OPERATIONS:
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))


def _deliver_nothing(self, function_arn, items, source):  # noqa: ARG001 - moto's signature
    return None


LambdaBackend.send_dynamodb_items = _deliver_nothing

if __name__ == "__main__":
    sys.exit(main())
