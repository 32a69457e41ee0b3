"""Tests of scripts/local_endpoint/logs_retention.py. Behaviour 21: log events expire by their
group's retention (on a clock the test sets), behaviour 6's `i/<n>` positions survive it, and
reads by time do not walk the stream. Through boto3."""

import pathlib
import sys
import tempfile
import time
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402
from moto.logs.models import LogEvent, logs_backends  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)

from local_endpoint import logs_retention, persistence  # noqa: E402

DAY_MS = 86_400_000
# The endpoint's "now" below: this machine's (PutLogEvents refuses events from more than two hours
# ahead or fourteen days back, by the real clock, as CloudWatch does).
T_MS = int(time.time() * 1000)


class NoWalks(list):
    """A stream's events, refusing to be walked whole (slices and indexing are fine)."""

    def walked(self, *_):
        raise AssertionError("a read walked every event of the stream")

    __iter__ = __add__ = __radd__ = __reversed__ = walked


class Retention(unittest.TestCase):
    def setUp(self):
        self.clock_ms = T_MS
        patcher = unittest.mock.patch.object(logs_retention, "now", lambda: self.clock_ms / 1000)
        patcher.start()
        self.addCleanup(patcher.stop)

    def given(self, logs, group, ages_ms, retention_days=None):
        logs.create_log_group(logGroupName=group)
        if retention_days:
            logs.put_retention_policy(logGroupName=group, retentionInDays=retention_days)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
            {"timestamp": T_MS - age, "message": f"aged {age}"} for age in ages_ms])

    def messages(self, logs, group):
        return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]

    @in_moto_mock
    def test_events_older_than_the_retention_go_and_no_others(self):
        logs = boto3.client("logs", region_name="us-east-1")
        self.given(logs, "kept", [10 * DAY_MS])
        self.given(logs, "week", [7 * DAY_MS + 300_000, 7 * DAY_MS - 300_000, 1000], retention_days=7)
        self.clock_ms += 61_000  # a pass runs at most once a minute
        self.assertEqual(self.messages(logs, "week"), [f"aged {7 * DAY_MS - 300_000}", "aged 1000"])
        self.assertEqual(self.messages(logs, "kept"), [f"aged {10 * DAY_MS}"])
        stream = logs.describe_log_streams(logGroupName="week")["logStreams"][0]
        self.assertEqual(stream["firstEventTimestamp"], T_MS - 7 * DAY_MS + 300_000)
        self.assertEqual(stream["storedBytes"], len(f"aged {7 * DAY_MS - 300_000}") + len("aged 1000"))
        self.clock_ms += 2 * DAY_MS  # two days on, the middle event is past the week too
        self.assertEqual(self.messages(logs, "week"), ["aged 1000"])

    @in_moto_mock
    def test_ingestion_positions_name_the_same_events_after_expiry(self):
        logs = boto3.client("logs", region_name="us-east-1")
        self.given(logs, "week", [8 * DAY_MS, 8 * DAY_MS, 3000, 2000, 1000], retention_days=7)
        self.clock_ms += 61_000  # a pass runs at most once a minute

        def read(token):
            page = logs.get_log_events(logGroupName="week", logStreamName="s", startFromHead=True, nextToken=token)
            return [e["message"] for e in page["events"]], page["nextForwardToken"]
        self.assertEqual(read("i/3"), (["aged 2000", "aged 1000"], "i/5"))
        self.assertEqual(read("i/0"), (["aged 3000", "aged 2000", "aged 1000"], "i/5"))
        logs.put_log_events(logGroupName="week", logStreamName="s", logEvents=[{"timestamp": T_MS, "message": "new"}])
        self.assertEqual(read("i/5"), (["new"], "i/6"))

    @in_moto_mock
    def test_reads_by_time_do_not_walk_the_stream(self):
        logs = boto3.client("logs", region_name="us-east-1")
        self.given(logs, "g", [DAY_MS - n * 1000 for n in range(2000)])
        logs.filter_log_events(logGroupName="g")  # its time order, made once
        stream = logs_backends["123456789012"]["us-east-1"].groups["g"].streams["s"]
        stream.events = NoWalks(stream.events)
        window = logs.filter_log_events(logGroupName="g", startTime=T_MS - DAY_MS + 1_000_000, endTime=T_MS)["events"]
        self.assertEqual(len(window), 1000)
        page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=False, limit=5)["events"]
        self.assertEqual(len(page), 5)
        self.assertEqual(logs.describe_log_streams(logGroupName="g")["logStreams"][0]["lastEventTimestamp"],
                         T_MS - DAY_MS + 1_999_000)


    @in_moto_mock
    def test_get_log_events_pages_its_window_forward_and_back(self):
        logs = boto3.client("logs", region_name="us-east-1")
        self.given(logs, "g", [(25 - n) * 1000 for n in range(25)])  # 25 events, one a second

        def pages(**arguments):
            token, seen = None, []
            while True:
                page = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10,
                                           **arguments, **({"nextToken": token} if token else {}))
                key = "nextForwardToken" if arguments.get("startFromHead") else "nextBackwardToken"
                seen.append([int(e["message"].split()[1]) // 1000 for e in page["events"]])
                if page[key] == token:
                    return seen
                token = page[key]
        self.assertEqual(pages(startFromHead=True), [list(range(25, 15, -1)), list(range(15, 5, -1)), [5, 4, 3, 2, 1], []])
        self.assertEqual(pages(startFromHead=False), [list(range(10, 0, -1)), list(range(20, 10, -1)), [25, 24, 23, 22, 21], []])
        window = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True,
                                     startTime=T_MS - 12000, endTime=T_MS - 8000)["events"]
        self.assertEqual([T_MS - e["timestamp"] for e in window], [12000, 11000, 10000, 9000, 8000])
        with self.assertRaises(botocore.exceptions.ClientError):
            logs.get_log_events(logGroupName="g", logStreamName="s", nextToken="x/1")

    @in_moto_mock
    def test_a_saved_state_holds_every_event_compactly_and_numbers_go_on(self):
        logs = boto3.client("logs", region_name="us-east-1")
        self.given(logs, "week", [3000, 2000, 1000], retention_days=7)
        before = logs.get_log_events(logGroupName="week", logStreamName="s", startFromHead=True)["events"]
        ids_before = {e["eventId"] for e in logs.filter_log_events(logGroupName="week")["events"]}
        folder = pathlib.Path(tempfile.mkdtemp())
        persistence.Persistence.save(folder / "state")
        LogEvent._event_id = 0  # a new process of the endpoint
        persistence.Persistence.restore(folder / "state")
        self.assertEqual(logs.get_log_events(logGroupName="week", logStreamName="s", startFromHead=True)["events"],
                         before)
        logs.put_log_events(logGroupName="week", logStreamName="s", logEvents=[{"timestamp": T_MS, "message": "new"}])
        ids_after = {e["eventId"] for e in logs.filter_log_events(logGroupName="week")["events"]}
        self.assertEqual(len(ids_after), 4, "an event numbered as one restored")
        self.assertTrue(ids_before < ids_after)
        stream = logs_backends["123456789012"]["us-east-1"].groups["week"].streams["s"]
        self.assertIs(stream.log_group, logs_backends["123456789012"]["us-east-1"].groups["week"])


if __name__ == "__main__":
    unittest.main()
