"""Tests of scripts/local_endpoint/logs_ingestion_order.py. Behaviour 6: GetLogEvents in ingestion order for a token `i/<n>`."""

import pathlib
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)


class IngestionOrder(unittest.TestCase):
    @in_moto_mock
    def test_an_i_token_reads_every_event_once_in_the_order_it_arrived(self):
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
