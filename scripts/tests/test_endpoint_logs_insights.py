"""Tests of scripts/local_endpoint/logs_insights.py. Behaviour 22: Logs Insights queries — the
examples of AWS's query syntax documentation and the service dashboard's two queries (with their
SOURCE clauses, as the widgets hold them) — through boto3's StartQuery and GetQueryResults, on
events shaped as books-telemetry ships them."""

import json
import pathlib
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
NOW_MS = int(time.time() * 1000)
GROUPS = {"command": "/books/local/command", "query": "/books/local/query", "projector": "/books/local/projector"}


def line(service, n, **fields):
    return {"level": "INFO", "message": "request handled", "service": service, "request_id": f"r-{service}-{n}",
            "function_name": f"books-local-{service}", **fields}


LINES = {
    "command": [line("command", 1, status=201, duration_ms=17.5, operation="CreateBook"),
                line("command", 2, status=409, duration_ms=9.0, operation="CreateBook", level="WARN",
                     message="isbn conflict", error="IsbnConflict"),
                line("command", 3, status=409, duration_ms=8.0, operation="CreateBook", level="WARN",
                     message="isbn conflict", error="IsbnConflict")],
    "query": [line("query", 1, status=200, duration_ms=30.5, operation="ListBooks"),
              line("query", 2, status=500, duration_ms=250.0, operation="GetBook", level="ERROR",
                   message="read model item is corrupt", error="CorruptItem"),
              {"message": "Exception in thread main", "level": "ERROR", "service": "query"}],
    "projector": [line("projector", 1, message="batch projected", events=3)],
}


class LogsInsights(unittest.TestCase):
    def setUp(self):
        self.logs = None

    def given(self):
        self.logs = boto3.client("logs", region_name="us-east-1")
        for service, group in GROUPS.items():
            self.logs.create_log_group(logGroupName=group)
            self.logs.create_log_stream(logGroupName=group, logStreamName="s")
            self.logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
                {"timestamp": NOW_MS - 60_000 + i * 1000, "message": json.dumps(document)}
                for i, document in enumerate(LINES[service])])

    def results(self, query, groups=None):
        arguments = {"logGroupNames": groups} if groups else {}
        query_id = self.logs.start_query(startTime=NOW_MS // 1000 - 3600, endTime=NOW_MS // 1000 + 60,
                                         queryString=query, **arguments)["queryId"]
        answer = self.logs.get_query_results(queryId=query_id)
        self.assertEqual(answer["status"], "Complete")
        return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in answer["results"]]

    def dashboard_query(self, title):
        widgets = json.loads((ROOT / "dashboards/service.json").read_text())["widgets"]
        query = next(w["properties"]["query"] for w in widgets
                     if w["type"] == "log" and w["properties"]["title"].startswith(title))
        for service, group in GROUPS.items():
            query = query.replace(f"${{log_group_{service}}}", group)
        return query

    @in_moto_mock
    def test_the_dashboards_errors_by_type(self):
        self.given()
        rows = self.results(self.dashboard_query("Errors"))
        self.assertEqual(rows[0], {"service": "command", "status": "409", "message": "isbn conflict",
                                   "error": "IsbnConflict", "count": "2"})
        self.assertCountEqual(rows[1:], [  # a tie: CloudWatch promises no order between them
            {"service": "query", "status": "500", "message": "read model item is corrupt", "error": "CorruptItem",
             "count": "1"},
            {"service": "query", "message": "Exception in thread main", "count": "1"},
        ])

    @in_moto_mock
    def test_the_dashboards_slowest_requests(self):
        self.given()
        rows = self.results(self.dashboard_query("Slowest"))
        self.assertEqual([(r["service"], r["duration_ms"]) for r in rows],
                         [("query", "250"), ("query", "30.5"), ("command", "17.5"), ("command", "9"),
                          ("command", "8")])
        self.assertEqual(rows[0]["operation"], "GetBook")
        self.assertRegex(rows[0]["@timestamp"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")

    @in_moto_mock
    def test_examples_of_the_query_syntax_documentation(self):
        self.given()
        groups = list(GROUPS.values())
        newest = self.results("fields @timestamp, @message | sort @timestamp desc | limit 4", groups)
        self.assertEqual(len(newest), 4)
        self.assertEqual(sorted(json.loads(r["@message"]).get("request_id", "-") for r in newest[:2]),
                         ["-", "r-command-3"])  # the two newest, of the same second
        self.assertTrue(newest[0]["@timestamp"] == newest[1]["@timestamp"] > newest[2]["@timestamp"])
        self.assertEqual(self.results("filter @message like /Exception/ | stats count(*) as exceptionCount by bin(1h)"
                                      " | sort exceptionCount desc", groups)[0]["exceptionCount"], "1")
        averages = self.results("stats avg(duration_ms) as average, max(duration_ms), count(*) by service"
                                " | sort average desc", groups)
        self.assertEqual(averages[0], {"service": "query", "average": "140.25", "max(duration_ms)": "250",
                                       "count(*)": "3"})
        self.assertEqual(self.results("filter status in [200, 201] and not level = 'ERROR' | fields request_id"
                                      " | sort request_id", groups),
                         [{"request_id": "r-command-1"}, {"request_id": "r-query-1"}])
        self.assertEqual(self.results("fields service as who | filter ispresent(events)", groups), [{"who": "projector"}])

    @in_moto_mock
    def test_a_query_it_cannot_run_is_refused_not_answered_wrongly(self):
        self.given()
        for query in ("parse @message '* *' as a, b", "stats pct(duration_ms, 99) by service",
                      "filter status >", "fields a | limit ten"):
            with self.subTest(query=query), self.assertRaises(ClientError) as refused:
                self.results(query, ["/books/local/query"])
            self.assertEqual(refused.exception.response["Error"]["Code"], "MalformedQueryException")
        with self.assertRaises(ClientError):
            self.results("fields @message")  # no group named anywhere


if __name__ == "__main__":
    unittest.main()
