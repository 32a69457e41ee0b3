"""The endpoint's side of docs/local-endpoint-protocol.md: the page's `contract` examples sent to a
served endpoint answer as the page says (books-local's side: the unit tests of local/src/positions.rs
and local/src/cloudwatch/emf.rs read the same examples)."""

import json
import pathlib
import re
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from support import serve_endpoint  # noqa: E402

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "local-endpoint-protocol.md"


def contract(name):
    """The JSON of the page's example marked `<!-- contract: name -->`."""
    found = re.search(rf"<!-- contract: {re.escape(name)} -->\s*```json\n(.*?)```", PAGE.read_text(), re.S)
    if found is None:
        raise AssertionError(f"{PAGE} has no contract example {name!r}")
    return json.loads(found.group(1))


class PrivateProtocol(unittest.TestCase):
    def setUp(self):
        self.url = serve_endpoint(self.addCleanup)

    def send(self, method, path, document=None, body=None):
        data = body if body is not None else (json.dumps(document).encode() if document is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read() or b"null")

    def test_the_emulator_state_is_kept_whole_and_read_back(self):
        self.assertEqual(self.send("GET", "/_books/emulator-state"), (200, {}))
        state = contract("emulator-state")
        self.assertEqual(self.send("PUT", "/_books/emulator-state", state), (200, {}))
        self.assertEqual(self.send("GET", "/_books/emulator-state"), (200, state))
        status, refusal = self.send("PUT", "/_books/emulator-state", body=b"{not json")
        self.assertEqual(status, 400)
        self.assertIn("message", refusal)
        self.assertEqual(self.send("GET", "/_books/emulator-state"), (200, state))

    def test_a_fault_is_kept_applied_listed_and_ended(self):
        fault = contract("fault")
        status, kept = self.send("POST", "/_books/faults", fault)
        self.assertEqual(status, 201)
        self.assertEqual(kept, {**fault, "failed": 0})
        logs = boto3.client("logs", endpoint_url=self.url, region_name="eu-west-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
        group = fault["match"]["logGroupName"]
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        with self.assertRaises(logs.exceptions.ClientError) as failed:
            logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": 0, "message": "m"}])
        self.assertEqual(failed.exception.response["Error"]["Code"], fault["code"])
        self.assertEqual(failed.exception.response["ResponseMetadata"]["HTTPStatusCode"], fault["status"])
        self.assertEqual(self.send("GET", "/_books/faults"), (200, {"faults": [{**fault, "failed": 1}]}))
        self.assertEqual(self.send("DELETE", "/_books/faults"), (200, {"ended": [{**fault, "failed": 1}]}))
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": 0, "message": "m"}])
        self.assertEqual(self.send("POST", "/_books/faults", {"match": {}})[0], 400)
        self.assertEqual(self.send("POST", "/_books/faults", {**fault, "delay": 61})[0], 400)

    def test_the_ingestion_order_token_reads_events_as_they_arrived(self):
        tokens = contract("ingestion-order")
        logs = boto3.client("logs", endpoint_url=self.url, region_name="eu-west-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        now = int(time.time() * 1000)
        arrived = [(now, "second by time, first to arrive"), (now + 1, "third"), (now - 1000, "first by time, late")]
        for timestamp, message in arrived:
            logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": timestamp, "message": message}])
        step = tokens["after_reading"]
        page = logs.get_log_events(logGroupName="g", logStreamName="s", nextToken=step["from"], limit=step["read"])
        self.assertEqual(step["from"], tokens["first"])
        self.assertEqual([e["message"] for e in page["events"]], [m for _, m in arrived][:step["read"]])
        self.assertEqual(page["nextForwardToken"], step["next"])
        rest = logs.get_log_events(logGroupName="g", logStreamName="s", nextToken=page["nextForwardToken"])
        self.assertEqual((rest["events"], rest["nextForwardToken"]), ([], step["next"]))


if __name__ == "__main__":
    unittest.main()
