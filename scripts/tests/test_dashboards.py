"""Tests of scripts/dashboards.py: pure parsing, and check/render against a real moto server,
with the EMF values read by the debug build's books-local (`make build-debug`)."""

import contextlib
import io
import json
import os
import pathlib
import socket
import sys
import tempfile
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import dashboards  # noqa: E402

DOCUMENT = {
    "_aws": {"Timestamp": 60_000, "CloudWatchMetrics": [{
        "Namespace": "Books",
        "Dimensions": [["Service"], ["Service", "Operation"]],
        "Metrics": [{"Name": "RequestLatency", "Unit": "Milliseconds"}],
    }]},
    "Service": "query", "Operation": "GetBook", "RequestLatency": [3.0, 5.0],
}
QUERY = (("Service", "query"),)
QUERY_GET = (("Operation", "GetBook"), ("Service", "query"))


class Parsing(unittest.TestCase):
    def test_a_point_of_books_local_metrics(self):
        line = {"log_group": "/g", "namespace": "Books", "name": "RequestLatency", "unit": "Milliseconds",
                "dimensions": [["Service", "query"], ["Operation", "GetBook"]], "timestamp_ms": 60_000, "value": 5}
        self.assertEqual(dashboards.as_point(line), ("Books", "RequestLatency", QUERY_GET, 60_000, 5.0))

    def test_widget_rows_expand_the_dot_shorthand_and_skip_expressions(self):
        widget = {"properties": {"metrics": [
            ["Books", "Duration", "Service", "query", {"stat": "p99"}],
            [".", ".", ".", "command"],
            [{"expression": "m1 / m2", "label": "ratio"}],
        ]}}
        rows = dashboards.widget_metric_rows(widget)
        self.assertEqual([r[:3] for r in rows], [
            ("Books", "Duration", QUERY), ("Books", "Duration", (("Service", "command"),))])
        self.assertEqual(rows[0][3], {"stat": "p99"})

    def test_alarm_metrics_single_and_math(self):
        single = {"AlarmName": "a", "Namespace": "Books", "MetricName": "ColdStart",
                  "Dimensions": [{"Name": "Service", "Value": "query"}]}
        math_alarm = {"AlarmName": "b", "Metrics": [
            {"Id": "r", "Expression": "c / w"},
            {"Id": "c", "MetricStat": {"Metric": {"Namespace": "Books", "MetricName": "ConcurrencyConflicts",
                                                  "Dimensions": [{"Name": "Service", "Value": "command"}]}}}]}
        self.assertEqual(dashboards.alarm_metrics(single), [("Books", "ColdStart", QUERY)])
        self.assertEqual(dashboards.alarm_metrics(math_alarm),
                         [("Books", "ConcurrencyConflicts", (("Service", "command"),))])

    def test_compare_names_what_is_missing_and_what_is_unshown(self):
        emitted = {("Books", "RequestLatency", QUERY_GET), ("Books", "Duration", QUERY)}
        body = {"widgets": [{"type": "metric", "properties": {"title": "t", "metrics": [
            ["Books", "RequestLatency", "Service", "query", "Operation", "GetBook"],
            ["Books", "Never", "Service", "query"],
            ["AWS/ApiGateway", "5XXError", "ApiName", "x"],
        ]}}]}
        alarm = {"AlarmName": "lag", "Namespace": "Books", "MetricName": "ProjectionLag", "Dimensions": []}
        missing, unshown = dashboards.compare(emitted, {"d": body}, [alarm], "Books")
        self.assertEqual([where for where, _ in missing], ["dashboard d / t", "alarm lag"])
        self.assertEqual(unshown, [("Books", "Duration", QUERY)])

    def test_statistics(self):
        values = [float(v) for v in range(1, 101)]
        self.assertEqual(dashboards.statistic(values, "p99"), 99.0)
        self.assertEqual(dashboards.statistic(values, "p50"), 50.0)
        self.assertEqual(dashboards.statistic(values, "SampleCount"), 100.0)
        self.assertEqual(dashboards.statistic(values, "Average"), 50.5)


class AgainstMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        cls.server.start()
        cls.environment = unittest.mock.patch.dict(os.environ, {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        cls.environment.start()
        import boto3

        cls.logs = boto3.client("logs", region_name="us-east-1")
        cls.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        cls.logs.create_log_group(logGroupName="/books/t/query")
        cls.logs.create_log_stream(logGroupName="/books/t/query", logStreamName="s")
        import time

        now = int(time.time() * 1000)
        document = dict(DOCUMENT, _aws=dict(DOCUMENT["_aws"], Timestamp=now))
        cls.logs.put_log_events(logGroupName="/books/t/query", logStreamName="s", logEvents=[
            {"timestamp": now, "message": json.dumps(document)},
            {"timestamp": now, "message": json.dumps({"message": "a plain log line"})},
        ])
        cls.cloudwatch.put_metric_alarm(
            AlarmName="cold", Namespace="Books", MetricName="RequestLatency", Statistic="Average",
            Dimensions=[{"Name": "Service", "Value": "query"}], Period=60, EvaluationPeriods=1,
            Threshold=1.0, ComparisonOperator="GreaterThanThreshold")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.environment.stop()

    def dashboard(self, *rows):
        body = {"widgets": [
            {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
             "properties": {"title": "latency", "region": "us-east-1", "metrics": list(rows)}},
            {"type": "log", "x": 12, "y": 0, "width": 12, "height": 6,
             "properties": {"title": "slowest", "query": "SOURCE '/books/t/query' | fields @timestamp"}},
        ]}
        self.cloudwatch.put_dashboard(DashboardName="books-t-service", DashboardBody=json.dumps(body))

    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = dashboards.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_check_passes_when_everything_referenced_is_emitted_and_fails_otherwise(self):
        self.dashboard(["Books", "RequestLatency", "Service", "query", "Operation", "GetBook", {"stat": "p99"}])
        code, out, err = self.run_cli("check")
        self.assertEqual(code, 0, out + err)
        self.assertIn("emitted but on no dashboard: Books/RequestLatency{Service=query}", out)

        self.dashboard(["Books", "RequestLatency", "Service", "query", "Operation", "GetBook"],
                       ["Books", "ColdStart", "Service", "query", {"stat": "Sum"}])
        code, out, err = self.run_cli("check")
        self.assertEqual(code, 1)
        self.assertIn("dashboard books-t-service / latency: Books/ColdStart{Service=query}", err)

    def test_render_draws_a_picture(self):
        self.dashboard(["Books", "RequestLatency", "Service", "query", "Operation", "GetBook", {"stat": "p99"}])
        with tempfile.TemporaryDirectory() as out_dir:
            for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
                code, out, err = self.run_cli("render", "--out-dir", out_dir, "--format", fmt)
                self.assertEqual(code, 0, out + err)
                picture = pathlib.Path(out_dir, f"books-t-service.{fmt}").read_bytes()
                self.assertTrue(picture.startswith(magic) and len(picture) > 10_000, len(picture))


if __name__ == "__main__":
    unittest.main()
