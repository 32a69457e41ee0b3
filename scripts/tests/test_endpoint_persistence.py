"""Tests of scripts/local_endpoint/persistence.py. Behaviour 11: the state saved and restored."""

import json
import os
import pathlib
import pickle
import shutil
import socket
import subprocess
import sys
import time
import unittest
import unittest.mock
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import create_table  # noqa: E402


class SavedState(unittest.TestCase):
    """Behaviour 11, with the real server process: what it holds when stopped is what it holds
    when started again, across the services whose objects pickle cannot write as they are
    (locks in SQS queues, private keys in KMS, the weak index of Lambda functions)."""

    SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "moto_server.py"

    def setUp(self):
        self.folder = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"books-state-{os.getpid()}-{time.time_ns()}"
        self.folder.mkdir(parents=True)
        self.state = self.folder / "endpoint.state"

    def tearDown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with (self.folder / f"server-{port}.log").open("w") as log:
            server = subprocess.Popen([sys.executable, str(self.SCRIPT), "-H", "127.0.0.1", "-p", str(port),
                                       "--state", str(self.state)], stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    return server, None
                time.sleep(0.1)
        return server, endpoint

    def client(self, endpoint, service):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self, server):
        server.terminate()
        self.assertEqual(server.wait(timeout=60), 0)

    def test_a_stopped_endpoint_starts_again_with_what_it_held(self):
        server, endpoint = self.start()
        self.assertIsNotNone(endpoint, "the server started")
        try:
            dynamodb = self.client(endpoint, "dynamodb")
            create_table(dynamodb, "books", stream=True)
            dynamodb.put_item(TableName="books", Item={"pk": {"S": "BOOK#1"}, "title": {"S": "Dune"}})
            logs = self.client(endpoint, "logs")
            logs.create_log_group(logGroupName="/books")
            logs.create_log_stream(logGroupName="/books", logStreamName="s")
            logs.put_log_events(logGroupName="/books", logStreamName="s",
                                logEvents=[{"timestamp": int(time.time() * 1000), "message": "kept"}])
            queue = self.client(endpoint, "sqs").create_queue(QueueName="failures")["QueueUrl"]
            self.client(endpoint, "sqs").send_message(QueueUrl=queue, MessageBody="a failed batch")
            key = self.client(endpoint, "kms").create_key()["KeyMetadata"]["KeyId"]
            secret = self.client(endpoint, "kms").encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
            role = self.client(endpoint, "iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            self.client(endpoint, "lambda").create_function(
                FunctionName="f", Role=role, PackageType="Image",
                Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/f:1"})
            put = urllib.request.Request(f"{endpoint}/_books/emulator-state", method="PUT",
                                         data=json.dumps({"streams": {"m": {"shard": "42"}}}).encode())
            urllib.request.urlopen(put, timeout=10).read()
        finally:
            self.stop(server)
        self.assertTrue(self.state.exists(), "the state was saved when the server stopped")

        server, endpoint = self.start()
        self.assertIsNotNone(endpoint, "the server started again from the saved state")
        try:
            dynamodb = self.client(endpoint, "dynamodb")
            item = dynamodb.get_item(TableName="books", Key={"pk": {"S": "BOOK#1"}})["Item"]
            self.assertEqual(item["title"]["S"], "Dune")
            arn = dynamodb.describe_table(TableName="books")["Table"]["LatestStreamArn"]
            streams = self.client(endpoint, "dynamodbstreams")
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            self.assertEqual(len(streams.get_records(ShardIterator=iterator)["Records"]), 1, "the stream record")
            events = self.client(endpoint, "logs").get_log_events(logGroupName="/books", logStreamName="s")["events"]
            self.assertEqual([e["message"] for e in events], ["kept"])
            sqs = self.client(endpoint, "sqs")
            queue = sqs.get_queue_url(QueueName="failures")["QueueUrl"]
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
            self.assertEqual([m["Body"] for m in messages], ["a failed batch"])
            plain = self.client(endpoint, "kms").decrypt(CiphertextBlob=secret)["Plaintext"]
            self.assertEqual(plain, b"secret", "the KMS key decrypts what it encrypted before the restart")
            function = self.client(endpoint, "lambda").get_function(FunctionName="f")["Configuration"]
            self.assertEqual(function["PackageType"], "Image")
            with urllib.request.urlopen(f"{endpoint}/_books/emulator-state", timeout=10) as answer:
                self.assertEqual(json.load(answer), {"streams": {"m": {"shard": "42"}}})
        finally:
            self.stop(server)

    def test_a_state_another_moto_saved_is_refused_with_the_way_out(self):
        self.state.write_bytes(pickle.dumps({"format": 1, "moto": "0.0.1", "backends": {}, "emulator": {}}))
        server, endpoint = self.start()
        self.assertIsNone(endpoint, "the server refused to start")
        self.assertNotEqual(server.wait(timeout=30), 0)
        log = next(self.folder.glob("server-*.log")).read_text()
        self.assertIn("saved by moto 0.0.1", log)
        self.assertIn("make run FRESH=1", log)
