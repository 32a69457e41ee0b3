"""DynamoDB's item operations atomic, and transactions undone item by item.

Behaviour 2: moto's server answers requests on several threads but does not lock its DynamoDB backend, so
two concurrent conditional writes or transactions can both pass their conditions. DynamoDB
makes each of them atomic; here every DynamoDB item operation runs under one lock.

Behaviour 3: moto prepares to roll a transaction back by deep-copying every table it names, before
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

AWS documentation followed:
- https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html (a conditional write is atomic)
- https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-isolation (transactions are serializable; a cancelled one changes nothing)
- https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
"""

import copy
import functools
import threading

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


ATOMIC = threading.RLock()
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
        with ATOMIC:
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


def apply():
    DynamoDBBackend.transact_write_items = _transact_touching_only_its_items
    for name in _ITEM_OPERATIONS:
        if hasattr(DynamoDBBackend, name):
            setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
    # A stream is read under the same lock: never in the middle of a transaction (behaviour 3).
    for name in ("get_shard_iterator", "get_records"):
        setattr(DynamoDBStreamsBackend, name, _atomic(getattr(DynamoDBStreamsBackend, name)))
