"""Tests of scripts/local_endpoint/logs_filter_patterns.py. Behaviour 19: FilterLogEvents with
CloudWatch Logs' filter pattern syntax, interleaved by time. The patterns and the events they
must or must not match are the examples of AWS's filter pattern documentation (the CloudTrail-like
JSON events, the ERROR/Exception terms), sent through boto3."""

import json
import pathlib
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)

# AWS's documented JSON example events (shortened to the fields the patterns read).
TRAIL = {"eventType": "UpdateTrail", "sourceIPAddress": "123.123.123.123", "arrayKey": ["value", "another value"],
         "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}], "SomeObject": None,
         "cluster": {"name": "prod", "latency": 600.5}, "errorCode": "AccessDenied", "bandwidth": 75,
         "isRoot": True, "level": "ERROR"}
OTHER = {"eventType": "CreateTrail", "sourceIPAddress": "10.0.0.1", "bandwidth": 12, "isRoot": False,
         "cluster": {"name": "dev", "latency": 40}, "level": "INFO"}
TEXT = ["[ERROR] Caught IllegalArgumentException", "[WARN] Deadlock detected", "[INFO] all good",
        "[ERROR] Exception in MainThread"]


class FilterPatterns(unittest.TestCase):
    @property
    def logs(self):
        # Made inside each test, under its moto mock.
        if "_logs" not in vars(self):
            self._logs = boto3.client("logs", region_name="us-east-1")
        return self._logs

    def messages(self, pattern, group="g"):
        pages = self.logs.get_paginator("filter_log_events").paginate(logGroupName=group, filterPattern=pattern)
        return [event["message"] for page in pages for event in page["events"]]

    def given(self, *messages, stream="s", at=None):
        self.logs.create_log_group(logGroupName="g") if not self.logs.describe_log_groups(
            logGroupNamePrefix="g")["logGroups"] else None
        self.logs.create_log_stream(logGroupName="g", logStreamName=stream)
        now = at or int(time.time() * 1000)
        self.logs.put_log_events(logGroupName="g", logStreamName=stream, logEvents=[
            {"timestamp": now + i, "message": m if isinstance(m, str) else json.dumps(m)}
            for i, m in enumerate(messages)])

    @in_moto_mock
    def test_json_patterns_of_the_documentation(self):
        self.given(TRAIL, OTHER, "not json at all: UpdateTrail")
        trail, other = json.dumps(TRAIL), json.dumps(OTHER)
        for pattern, expected in [
            ('{ $.eventType = "UpdateTrail" }', [trail]),
            ("{ $.eventType = UpdateTrail }", [trail]),
            ("{ $.sourceIPAddress != 123.123.* }", [other]),
            ('{ $.eventType = "Update*" }', [trail]),
            ("{ $.arrayKey[0] = \"value\" }", [trail]),
            ("{ $.objectList[1].id = 2 }", [trail]),
            ("{ $.SomeObject IS NULL }", [trail]),
            ("{ $.SomeObject NOT EXISTS }", [other]),
            ("{ $.isRoot IS TRUE }", [trail]),
            ("{ $.isRoot IS FALSE }", [other]),
            ("{ $.bandwidth > 50 }", [trail]),
            ("{ $.bandwidth <= 12 }", [other]),
            ("{ $.cluster.latency >= 600.5 }", [trail]),
            ('{ ($.errorCode = "AccessDenied") && ($.bandwidth > 50) }', [trail]),
            ('{ $.eventType = "CreateTrail" || $.bandwidth > 50 }', [trail, other]),
            ('{ ($.level = "ERROR" || $.level = "WARN") && $.cluster.name = "prod" }', [trail]),
            ("{ $.eventType = %^Up.*Trail$% }", [trail]),
            ('{ $.missing = "x" }', []),
        ]:
            with self.subTest(pattern=pattern):
                self.assertEqual(self.messages(pattern), expected)

    @in_moto_mock
    def test_term_patterns_of_the_documentation(self):
        self.given(*TEXT)
        for pattern, expected in [
            ("ERROR", [TEXT[0], TEXT[3]]),
            ("ERROR Exception", [TEXT[0], TEXT[3]]),
            ("ERROR MainThread", [TEXT[3]]),
            ('"Deadlock detected"', [TEXT[1]]),
            ("?ERROR ?WARN", [TEXT[0], TEXT[1], TEXT[3]]),
            ("ERROR -MainThread", [TEXT[0]]),
            ("-ERROR", [TEXT[1], TEXT[2]]),
            ("error", []),  # terms are case-sensitive
            ("%Dead[a-z]+%", [TEXT[1]]),
            ("", TEXT),
        ]:
            with self.subTest(pattern=pattern):
                self.assertEqual(self.messages(pattern), expected)

    @in_moto_mock
    def test_a_pattern_aws_would_not_parse_is_refused_not_matched_to_everything(self):
        self.given(TRAIL)
        for pattern in ('{ $.eventType = "UpdateTrail" ', "{ eventType = 1 }", "{ $.a > abc }",
                        "{ $.a IS MAYBE }", "[ip, user, ...]", "{ $.a = %[% }"):
            with self.subTest(pattern=pattern), self.assertRaises(ClientError) as refused:
                self.messages(pattern)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterException")

    @in_moto_mock
    def test_streams_are_interleaved_by_time_without_asking(self):
        now = int(time.time() * 1000)
        self.given("first", "third", stream="a", at=now)
        self.logs.put_log_events(logGroupName="g", logStreamName="a",
                                 logEvents=[{"timestamp": now + 5, "message": "fifth"}])
        self.given("second", "fourth", stream="b", at=now)  # at now and now + 1
        events = self.logs.filter_log_events(logGroupName="g")["events"]
        self.assertEqual([e["timestamp"] - now for e in events], [0, 0, 1, 1, 5])


if __name__ == "__main__":
    unittest.main()
