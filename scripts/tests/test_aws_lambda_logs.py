"""Tests of scripts/deploy/logs.py (`make aws-lambda-logs`): events as books-telemetry ships them
(shapes copied from a local cloud's telemetry group), read back through boto3 from the local
endpoint's CloudWatch Logs (moto with the endpoint's behaviours). The whole command against a
running local cloud is scripts/e2e_logs.py's (make test-local-e2e)."""

import io
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)

from deploy import logs  # noqa: E402
from deploy.errors import Refusal  # noqa: E402

T0 = 1_796_633_410_000  # 2026-12-07 08:50:10 UTC
RID = "e8d2a0ba-e8a4-45a1-a895-1fd308ef70e9"
CREATED = {"book_id": "01M97V4EXX4V3GBFFE53DNHRW4", "cold_start": True, "function_name": "books-local-command",
           "function_version": "$LATEST", "level": "INFO", "message": "book created", "request_id": RID,
           "service": "command", "target": "books::http::command", "timestamp": "2026-12-07T08:50:10.509Z",
           "trace_id": "Root=1-6b167342-3b525029a31e3073ef2d6b70;Sampled=0"}
REPORT = {"type": "platform.report", "record": {
    "requestId": RID, "status": "success", "metrics": {"durationMs": 89.817, "billedDurationMs": 90,
                                                      "memorySizeMB": 256, "maxMemoryUsedMB": 45,
                                                      "initDurationMs": 98.841}},
    "request_id": RID, "function_name": "books-local-command", "function_version": "$LATEST"}
EMF = {"_aws": {"Timestamp": T0, "CloudWatchMetrics": [{"Namespace": "Books", "Dimensions": [["Service"]],
                                                         "Metrics": [{"Name": "BooksCreated", "Unit": "Count"}]}]},
       "BooksCreated": 1.0, "Service": "command"}
EXTENSION = {"level": "ERROR", "message": "CloudWatch refused the destination: AccessDeniedException",
             "source": "extension", "function_name": "books-local-command", "function_version": "$LATEST"}
OUTPUTS = {"log_groups": {"value": {"command": "/books/t/command", "query": "/books/t/query",
                                    "projector": "/books/t/projector", "api_access": "/aws/apigateway/t"}},
           "platform_log_groups": {"value": {"command": "/aws/lambda/books-t-command"}}}


class Rendering(unittest.TestCase):
    def test_a_function_line_reads_time_level_request_message_then_its_own_fields(self):
        self.assertEqual(logs.render(json.dumps(CREATED), T0 + 509, None, colour=False),
                         f"2026-12-07 08:50:10.509  INFO      {RID}  book created  book_id=01M97V4EXX4V3GBFFE53DNHRW4")

    def test_a_report_reads_as_durations_and_memory(self):
        self.assertEqual(logs.render(json.dumps(REPORT), T0, "command", colour=False),
                         f"2026-12-07 08:50:10.000  command    REPORT    {RID}  89.817 ms (billed 90 ms), "
                         "45 of 256 MB, init 98.841 ms, success")

    def test_the_extensions_own_lines_say_so_and_metric_documents_are_left_out(self):
        line = logs.render(json.dumps(EXTENSION), T0, None, colour=False)
        self.assertIn("ERROR     -", line)
        self.assertIn("[extension] CloudWatch refused the destination", line)
        self.assertIsNone(logs.render(json.dumps(EMF), T0, None, colour=False))
        self.assertTrue(logs.render("START RequestId: x Version: $LATEST\n", T0, None, colour=False)
                        .endswith("START RequestId: x Version: $LATEST"))

    def test_an_access_log_line_reads_as_the_request_and_its_answer(self):
        access = {"requestId": "c0ffee00-0000-4000-8000-000000000001", "ip": "203.0.113.9", "apiKeyId": "k1",
                  "httpMethod": "POST", "resourcePath": "/books", "status": "429", "latencyMs": "3",
                  "integrationError": "-", "errorType": "THROTTLED"}
        self.assertEqual(logs.render(json.dumps(access), T0, None, colour=False),
                         "2026-12-07 08:50:10.000  ACCESS    c0ffee00-0000-4000-8000-000000000001  "
                         "POST /books 429 3 ms  apiKeyId=k1 ip=203.0.113.9 errorType=THROTTLED")

    def test_since_takes_durations_and_utc_times(self):
        self.assertEqual(logs.since_ms("90s", T0), T0 - 90_000)
        self.assertEqual(logs.since_ms(None, T0), T0 - 600_000)
        self.assertEqual(logs.since_ms("2026-12-07T08:50:10Z", 0), T0)
        with self.assertRaises(Refusal):
            logs.since_ms("yesterday", T0)

    def test_groups_follow_terraforms_outputs(self):
        self.assertEqual(logs.groups(OUTPUTS, "command"),
                         {"command": "/books/t/command", "command (Lambda)": "/aws/lambda/books-t-command"})
        self.assertEqual(logs.groups(OUTPUTS, "api"), {"api": "/aws/apigateway/t"})
        self.assertEqual(len(logs.groups(OUTPUTS, None)), 4)
        with self.assertRaises(Refusal) as refused:
            logs.groups(OUTPUTS, "commands")
        self.assertIn("command, query, projector, or api", str(refused.exception))


class LocalCloudFiles(unittest.TestCase):
    def test_no_serving_cloud_is_named_with_the_fix(self):
        folder = pathlib.Path(tempfile.mkdtemp())
        cloud = logs.LocalCloud(folder / "local.ready.json", folder / "terraform.tfstate")
        with self.assertRaises(Refusal) as refused:
            cloud.open()
        self.assertIn("start one with make run", str(refused.exception))
        gone = subprocess.Popen(["true"])
        gone.wait()
        (folder / "local.ready.json").write_text(json.dumps({"pid": gone.pid, "aws_endpoint_url": "http://127.0.0.1:9",
                                                             "region": "us-east-1"}))
        with self.assertRaises(Refusal) as refused:
            cloud.open()
        self.assertIn(f"(pid {gone.pid}) is not running", str(refused.exception))


class Reading(unittest.TestCase):
    def put(self, group, *events, stream="s"):
        existing = [g["logGroupName"] for g in self.client.describe_log_groups()["logGroups"]]
        if group not in existing:
            self.client.create_log_group(logGroupName=group)
        if not self.client.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
            self.client.create_log_stream(logGroupName=group, logStreamName=stream)
        self.client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": ms, "message": json.dumps(message)} for ms, message in events])

    def request(self, **overrides):
        return logs.Request(**{"function": "command", "start_ms": T0 - 60_000, "pattern": None, "follow": False,
                               "raw": False, **overrides})

    @in_moto_mock
    def test_the_groups_are_read_interleaved_filtered_and_each_event_once(self):
        self.client = boto3.client("logs", region_name="us-east-1")
        self.put("/books/t/command", (T0, CREATED), (T0 + 5, EMF), (T0 + 72, REPORT))
        self.put("/aws/lambda/books-t-command", (T0 + 1, EXTENSION))
        self.put("/books/t/query", (T0 + 2, {**CREATED, "message": "other"}))
        out = io.StringIO()
        self.assertEqual(logs.tail(self.client, logs.groups(OUTPUTS, "command"), self.request(), out), 3)
        self.assertEqual([line.split("  ")[1].strip() for line in out.getvalue().splitlines()],
                         ["command", "command (Lambda)", "command"])
        out = io.StringIO()
        logs.tail(self.client, logs.groups(OUTPUTS, "command"),
                  self.request(pattern='{ $.level = "ERROR" }'), out)
        self.assertEqual(len(out.getvalue().splitlines()), 1)
        self.assertIn("[extension]", out.getvalue())
        out = io.StringIO()
        logs.tail(self.client, {"command": "/books/t/command"}, self.request(raw=True), out)
        self.assertEqual([json.loads(line) for line in out.getvalue().splitlines()], [CREATED, EMF, REPORT])

    @in_moto_mock
    def test_following_prints_late_batches_once_and_stops_at_ctrl_c(self):
        self.client = boto3.client("logs", region_name="us-east-1")
        self.put("/books/t/command", (T0, CREATED))
        clock = {"now": T0 + 1000, "polls": 0}

        def sleep(_seconds):
            clock["polls"] += 1
            clock["now"] += 2000
            if clock["polls"] == 1:  # a batch the extension shipped late: older than what was read
                self.put("/books/t/command", (T0 - 500, {**CREATED, "message": "late"}), stream="other")
            if clock["polls"] == 3:
                raise KeyboardInterrupt

        out = io.StringIO()
        with self.assertRaises(KeyboardInterrupt):
            logs.tail(self.client, {"command": "/books/t/command"}, self.request(follow=True), out,
                      now_ms=lambda: clock["now"], sleep=sleep)
        # Three polls: each event printed once, the late one when it arrived.
        self.assertEqual([re.split(r"\s{2,}", line)[3] for line in out.getvalue().splitlines()], ["book created", "late"])

    @in_moto_mock
    def test_a_group_that_does_not_exist_is_named(self):
        self.client = boto3.client("logs", region_name="us-east-1")
        with self.assertRaises(Refusal) as refused:
            logs.tail(self.client, {"command": "/books/t/command"}, self.request(), io.StringIO())
        self.assertIn("/books/t/command (command) does not exist", str(refused.exception))


if __name__ == "__main__":
    unittest.main()
