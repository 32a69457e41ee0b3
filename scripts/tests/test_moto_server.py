"""Tests of scripts/moto_server.py's corrections to moto (applied on import)."""

import os
import pathlib
import sys
import time
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import moto_server  # noqa: E402,F401  (patches moto's DynamoDB backend)


class CancelledTransactions(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_an_open_stream_reader_sees_records_written_after_a_cancelled_transaction(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, whatever the caller points at
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        dynamodb.create_table(
            TableName="books", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
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


class DeleteTable(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_a_table_already_gone_is_named_as_dynamodb_names_it(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="books", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        dynamodb.delete_table(TableName="books")
        with self.assertRaises(dynamodb.exceptions.ResourceNotFoundException) as raised:
            dynamodb.delete_table(TableName="books")
        # What the AWS provider of Terraform matches to treat a retried delete as done.
        self.assertEqual(raised.exception.response["Error"]["Message"],
                         "Requested resource not found: Table: books not found")


if __name__ == "__main__":
    unittest.main()


class IngestionOrder(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_an_i_token_reads_every_event_once_in_the_order_it_arrived(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        put = lambda *events: logs.put_log_events(  # noqa: E731
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": t, "message": m} for t, m in events])

        def read(token):
            page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True, nextToken=token)
            return [e["message"] for e in page["events"]], page["nextForwardToken"]

        now = int(time.time() * 1000)
        put((now, "a"), (now + 1, "b"))
        first, token = read("i/0")
        put((now - 1000, "held back, older"))
        second, token = read(token)
        third, _ = read(token)
        self.assertEqual((first, second, third), (["a", "b"], ["held back, older"], []))
        # Without the i/ token, moto's own paging (by timestamp) still works for other readers.
        page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)
        self.assertEqual([e["message"] for e in page["events"]], ["held back, older", "a", "b"])


class UsagePlanStages(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_removing_a_stage_twice_is_not_an_error(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        api = apigateway.create_rest_api(name="a")["id"]
        plan = apigateway.create_usage_plan(name="p", apiStages=[{"apiId": api, "stage": "v1"}])["id"]
        remove = [{"op": "remove", "path": "/apiStages", "value": f"{api}:v1"}]
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)  # moto: 500
        self.assertEqual(apigateway.get_usage_plan(usagePlanId=plan).get("apiStages", []), [])
