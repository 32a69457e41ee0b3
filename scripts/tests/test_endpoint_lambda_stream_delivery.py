"""Tests of scripts/local_endpoint/lambda_stream_delivery.py. Behaviour 1: stream records kept for
their readers (books-local's pollers play the event source mapping), none delivered by moto."""

import io
import pathlib
import sys
import unittest
import zipfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import support  # noqa: E402,F401  (installs every behaviour of the local endpoint)

REGION = "eu-west-1"


def handler_zip():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as files:
        files.writestr("handler.py", "def handle(event, context):\n    return None\n")
    return archive.getvalue()


class StreamRecordsKept(unittest.TestCase):
    @mock_aws
    def test_a_table_with_a_mapping_keeps_every_record_for_its_readers(self):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = dynamodb.create_table(
            TableName="books", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="projector", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lambda_ = boto3.client("lambda", region_name=REGION)
        lambda_.create_function(FunctionName="projector", Runtime="python3.12", Role=role, Handler="handler.handle",
                                Code={"ZipFile": handler_zip()})
        lambda_.create_event_source_mapping(EventSourceArn=table["LatestStreamArn"], FunctionName="projector",
                                            StartingPosition="TRIM_HORIZON")
        for isbn in ("9780262033848", "9780131103627", "9780201633610"):
            dynamodb.put_item(TableName="books", Item={"pk": {"S": isbn}})

        streams = boto3.client("dynamodbstreams", region_name=REGION)
        shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in records],
                         ["9780262033848", "9780131103627", "9780201633610"])


if __name__ == "__main__":
    unittest.main()
