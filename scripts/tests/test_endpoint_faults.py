"""Tests of scripts/local_endpoint/faults.py. Behaviour 10: faults on demand."""

import json
import pathlib
import sys
import time
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from support import serve_endpoint  # noqa: E402


class FaultsOnDemand(unittest.TestCase):
    """Behaviour 10, through boto3: one log group's PutLogEvents fail until the fault ends."""

    def setUp(self):
        self.url = serve_endpoint(self.addCleanup)
        self.logs = boto3.client("logs", region_name="us-east-1", endpoint_url=self.url,
                                 aws_access_key_id="testing", aws_secret_access_key="testing",
                                 config=Config(retries={"mode": "standard", "total_max_attempts": 1}))

    def control(self, method, document=None):
        import urllib.error
        import urllib.request
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(self.url + "/_books/faults", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def put(self, group):
        self.logs.put_log_events(logGroupName=group, logStreamName="s",
                                 logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}])

    def test_only_matching_requests_fail_and_only_while_the_fault_lasts(self):
        for group in ("/aws/lambda/quiet", "/aws/lambda/other"):
            self.logs.create_log_group(logGroupName=group)
            self.logs.create_log_stream(logGroupName=group, logStreamName="s")
        status, fault = self.control("POST", {"operation": "PutLogEvents",
                                              "match": {"logGroupName": "/aws/lambda/quiet"}})
        self.assertEqual((status, fault["status"], fault["code"]), (201, 503, "ServiceUnavailableException"))
        with self.assertRaises(self.logs.exceptions.ServiceUnavailableException):
            self.put("/aws/lambda/quiet")
        self.put("/aws/lambda/other")  # another group: not matched
        self.logs.describe_log_streams(logGroupName="/aws/lambda/quiet")  # another operation: not matched
        self.assertEqual([f["failed"] for f in self.control("GET")[1]["faults"]], [1])
        self.assertEqual(self.control("DELETE")[0], 200)
        self.put("/aws/lambda/quiet")
        events = self.logs.get_log_events(logGroupName="/aws/lambda/quiet", logStreamName="s")["events"]
        self.assertEqual(len(events), 1, "the faulted request never reached moto; the later one did")

    def test_a_lost_answer_was_carried_out(self):
        self.logs.create_log_group(logGroupName="/aws/lambda/lost")
        self.logs.create_log_stream(logGroupName="/aws/lambda/lost", logStreamName="s")
        self.control("POST", {"operation": "PutLogEvents", "match": {"logGroupName": "/aws/lambda/lost"},
                              "status": 500, "code": "InternalFailure", "after": True})
        with self.assertRaises(ClientError):
            self.put("/aws/lambda/lost")
        self.control("DELETE")
        events = self.logs.get_log_events(logGroupName="/aws/lambda/lost", logStreamName="s")["events"]
        self.assertEqual(len(events), 1, "the request whose answer was lost was carried out")

    def test_a_slow_request_outlasts_a_client_timeout_and_is_still_carried_out(self):
        from botocore.exceptions import ReadTimeoutError
        self.logs.create_log_group(logGroupName="/aws/lambda/slow")
        self.logs.create_log_stream(logGroupName="/aws/lambda/slow", logStreamName="s")
        status, fault = self.control("POST", {"operation": "PutLogEvents", "match": {"logGroupName": "/aws/lambda/slow"},
                                              "delay": 3, "slow": True})
        self.assertEqual((status, fault["delay"], fault["slow"]), (201, 3.0, True))
        impatient = boto3.client("logs", region_name="us-east-1", endpoint_url=self.url,
                                 aws_access_key_id="testing", aws_secret_access_key="testing",
                                 config=Config(read_timeout=0.5, retries={"mode": "standard", "total_max_attempts": 1}))
        with self.assertRaises(ReadTimeoutError):  # botocore's own timeout gave up on it
            impatient.put_log_events(logGroupName="/aws/lambda/slow", logStreamName="s",
                                     logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}])
        self.assertEqual(self.control("DELETE")[1]["ended"][0]["failed"], 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # carried out once its delay is over
            if self.logs.get_log_events(logGroupName="/aws/lambda/slow", logStreamName="s")["events"]:
                break
            time.sleep(0.2)
        events = self.logs.get_log_events(logGroupName="/aws/lambda/slow", logStreamName="s")["events"]
        self.assertEqual(len(events), 1, "the slow request was carried out after its delay")

    def test_reordered_stream_reads_hold_every_record_some_twice(self):
        options = dict(region_name="us-east-1", endpoint_url=self.url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        dynamodb, streams = boto3.client("dynamodb", **options), boto3.client("dynamodbstreams", **options)
        table = dynamodb.create_table(
            TableName="streamed", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]
        for n in range(6):
            dynamodb.put_item(TableName="streamed", Item={"pk": {"S": f"book-{n}"}})
        shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = lambda: streams.get_shard_iterator(StreamArn=table["LatestStreamArn"], ShardId=shard,
                                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        plain = [r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=iterator())["Records"]]
        self.control("POST", {"operation": "GetRecords", "reorder": True})
        answer = streams.get_records(ShardIterator=iterator())
        mangled = [r["dynamodb"]["SequenceNumber"] for r in answer["Records"]]
        self.control("DELETE")
        self.assertEqual(len(plain), 6)
        self.assertEqual(sorted(set(mangled)), sorted(plain), "every record, none invented")
        self.assertEqual(len(mangled), 8, "a third of them twice")
        self.assertIn("NextShardIterator", answer, "the position is the real one")
        dynamodb.put_item(TableName="streamed", Item={"pk": {"S": "book-6"}})
        self.control("POST", {"operation": "GetRecords", "reorder": True})
        later = streams.get_records(ShardIterator=answer["NextShardIterator"])["Records"]
        self.control("DELETE")
        numbers = [r["dynamodb"]["SequenceNumber"] for r in later]
        fresh = [n for n in numbers if n not in plain]
        self.assertEqual(len(set(fresh)), 1, f"the new record: {numbers} {plain}")
        self.assertEqual(len(numbers) - len(fresh), 1, "one earlier record again, late")

    def test_a_fault_with_a_delay_out_of_bounds_is_refused(self):
        self.assertEqual(self.control("POST", {"operation": "GetItem", "delay": 600})[0], 400)

    def test_a_fault_with_a_probability_fails_that_share(self):
        self.logs.create_log_group(logGroupName="/aws/lambda/some")
        self.control("POST", {"operation": "DescribeLogStreams", "match": {"logGroupName": "/aws/lambda/some"},
                              "probability": 0.5})
        failed = 0
        for _ in range(200):
            try:
                self.logs.describe_log_streams(logGroupName="/aws/lambda/some")
            except self.logs.exceptions.ServiceUnavailableException:
                failed += 1
        self.assertEqual(self.control("GET")[1]["faults"][0]["failed"], failed)
        # Binomial(200, 0.5): outside 50..150 with a probability below 1e-12.
        self.assertTrue(50 <= failed <= 150, f"{failed} of 200 failed")

    def test_a_fault_without_an_operation_is_refused(self):
        status, answer = self.control("POST", {"match": {}})
        self.assertEqual(status, 400)
        self.assertIn("operation", answer["message"])
        self.assertEqual(self.control("GET")[1]["faults"], [])
