"""Tests of scripts/local_endpoint/dynamodb_atomic.py. Behaviour 3: a cancelled transaction leaves nothing, and never copies a table."""

import pathlib
import sys
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import create_table, in_moto_mock  # noqa: E402


class CancelledTransactions(unittest.TestCase):
    @in_moto_mock
    def test_an_open_stream_reader_sees_records_written_after_a_cancelled_transaction(self):
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        create_table(dynamodb, "books", stream=True)
        arn = dynamodb.describe_table(TableName="books")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        dynamodb.put_item(TableName="books", Item={"pk": {"S": "ISBN#1"}})
        page = streams.get_records(ShardIterator=iterator)
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]], ["ISBN#1"])

        with self.assertRaises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "books", "Item": {"pk": {"S": "BOOK#2"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": "books", "Item": {"pk": {"S": "ISBN#1"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        dynamodb.put_item(TableName="books", Item={"pk": {"S": "BOOK#3"}})

        page = streams.get_records(ShardIterator=page["NextShardIterator"])
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]], ["BOOK#3"],
                         "the reader's iterator sees the write after the cancelled transaction, and nothing of it")
        items = sorted(i["pk"]["S"] for i in dynamodb.scan(TableName="books")["Items"])
        self.assertEqual(items, ["BOOK#3", "ISBN#1"], "the cancelled transaction left nothing behind")


    @in_moto_mock
    def test_a_cancelled_transaction_puts_back_every_item_it_touched_and_no_stream_record(self):
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        create_table(dynamodb, "view", range_key="sk", stream=True)
        key = lambda pk, sk: {"pk": {"S": pk}, "sk": {"S": sk}}  # noqa: E731
        dynamodb.put_item(TableName="view", Item={**key("A", "1"), "n": {"N": "1"}, "tags": {"SS": ["x"]}})
        dynamodb.put_item(TableName="view", Item={**key("B", "1"), "n": {"N": "2"}})
        before = sorted(map(str, dynamodb.scan(TableName="view")["Items"]))
        arn = dynamodb.describe_table(TableName="view")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]

        with self.assertRaises(dynamodb.exceptions.TransactionCanceledException) as cancelled:
            dynamodb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "view", "Key": key("A", "1"),  # changes the stored item in place
                            "UpdateExpression": "SET n = n + :one ADD tags :y",
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":y": {"SS": ["y"]}}}},
                {"Delete": {"TableName": "view", "Key": key("B", "1")}},
                {"Put": {"TableName": "view", "Item": {**key("C", "1"), "n": {"N": "3"}}}},
                {"Put": {"TableName": "view", "Item": {**key("B", "2")}}},  # a new range key beside B's
                {"ConditionCheck": {"TableName": "view", "Key": key("D", "1"),
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ])
        reasons = [r["Code"] for r in cancelled.exception.response["CancellationReasons"]]
        self.assertEqual(reasons, ["None", "None", "None", "None", "ConditionalCheckFailed"])
        self.assertEqual(sorted(map(str, dynamodb.scan(TableName="view")["Items"])), before,
                         "every item as it was, none added")
        self.assertEqual(dynamodb.query(TableName="view", KeyConditionExpression="pk = :b",
                                        ExpressionAttributeValues={":b": {"S": "B"}})["Count"], 1)
        dynamodb.put_item(TableName="view", Item={**key("E", "1")})
        records = streams.get_records(ShardIterator=iterator)["Records"]
        self.assertEqual([(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records], [("INSERT", "E")],
                         "the cancelled transaction left no stream record; the next write is read")

    @in_moto_mock
    def test_a_transaction_never_copies_a_table(self):
        from moto.dynamodb.models.table import Table
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "books", stream=True)

        def copied(table, memo):
            raise AssertionError(f"table {table.name} deep-copied: a write would cost the whole table")

        put = lambda pk: {"Put": {"TableName": "books", "Item": {"pk": {"S": pk}},  # noqa: E731
                                  "ConditionExpression": "attribute_not_exists(pk)"}}
        with unittest.mock.patch.object(Table, "__deepcopy__", copied, create=True):
            dynamodb.transact_write_items(TransactItems=[put("BOOK#1"), put("ISBN#1")])
            with self.assertRaises(dynamodb.exceptions.TransactionCanceledException):
                dynamodb.transact_write_items(TransactItems=[put("BOOK#2"), put("ISBN#1")])
        items = sorted(i["pk"]["S"] for i in dynamodb.scan(TableName="books")["Items"])
        self.assertEqual(items, ["BOOK#1", "ISBN#1"])
