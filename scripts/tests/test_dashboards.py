"""Tests of scripts/dashboards.py: pure parsing, and check/render against a real moto server
with every behaviour of the local endpoint (scripts/local_endpoint/) applied in-process."""

import contextlib
import datetime
import io
import json
import math
import os
import pathlib
import socket
import sys
import tempfile
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import dashboards  # noqa: E402
import support  # noqa: E402,F401  (installs every behaviour of the local endpoint)

QUERY = (("Service", "query"),)
QUERY_GET = (("Operation", "GetBook"), ("Service", "query"))


# A Logs Insights widget's query as the dashboards hold it: SOURCE clauses, then the query.
SLOWEST = "SOURCE '/books/t/query' | fields request_id, duration_ms | sort duration_ms desc | limit 2"


class Parsing(unittest.TestCase):
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

    def test_widget_queries_carry_each_row_s_statistic_period_label_and_expressions(self):
        properties = {"stat": "Sum", "metrics": [
            ["Books", "Duration", "Service", "query", {"stat": "p99", "id": "d", "visible": False}],
            ["Books", "Errors", "Service", "query", {"label": "errors", "yAxis": "right", "period": 300}],
            [{"expression": "d * 2", "label": "doubled"}],
        ]}
        queries = dashboards.widget_queries(properties, 60)
        self.assertEqual([q["Id"] for q in queries], ["d", "m1", "m2"])
        self.assertEqual(queries[0]["MetricStat"]["Stat"], "p99")
        self.assertFalse(queries[0]["ReturnData"])
        self.assertEqual((queries[1]["MetricStat"]["Stat"], queries[1]["MetricStat"]["Period"]), ("Sum", 300))
        self.assertEqual((queries[1]["Label"], queries[1]["yAxis"]), ("errors", "right"))
        self.assertEqual((queries[2]["Expression"], queries[2]["Label"]), ("d * 2", "doubled"))

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

    def test_compare_names_what_is_missing_unknowable_and_unshown(self):
        published = {("Books", "RequestLatency", QUERY_GET), ("Books", "Duration", QUERY)}
        body = {"widgets": [{"type": "metric", "properties": {"title": "t", "metrics": [
            ["Books", "RequestLatency", "Service", "query", "Operation", "GetBook"],
            ["Books", "Never", "Service", "query"],
            ["AWS/ApiGateway", "5XXError", "ApiName", "x"],
        ]}}]}
        alarm = {"AlarmName": "lag", "Namespace": "Books", "MetricName": "ProjectionLag", "Dimensions": []}
        throttles = {"AlarmName": "t", "Namespace": "AWS/DynamoDB", "MetricName": "ReadThrottleEvents", "Dimensions": []}
        missing, unknowable, unshown = dashboards.compare(published, {"d": body}, [alarm, throttles], "Books")
        self.assertEqual([where for where, _ in missing], ["dashboard d / t", "dashboard d / t", "alarm lag"])
        self.assertEqual([key[1] for _, key in missing], ["Never", "5XXError", "ProjectionLag"])
        self.assertEqual([where for where, _ in unknowable], ["alarm t"])
        self.assertEqual(unshown, [("Books", "Duration", QUERY)])

    def test_a_line_breaks_where_a_period_has_no_value(self):
        drawn = dashboards.gapped([(0, 1.0), (60, 2.0), (240, 3.0), (300, 4.0)], 60)
        self.assertEqual([t for t, _ in drawn], [0, 60, 120, 240, 300])
        self.assertTrue(math.isnan(drawn[2][1]))
        self.assertEqual(dashboards.gapped([(0, 1.0), (60, 2.0)], 60), [(0, 1.0), (60, 2.0)])

    def test_a_short_run_sums_counts_and_takes_the_largest_of_the_rest(self):
        self.assertEqual(dashboards.summary([1.0, 2.0], "Sum"), 3.0)
        self.assertEqual(dashboards.summary([1.0, 2.0], "SampleCount"), 3.0)
        self.assertEqual(dashboards.summary([1.0, 5.0, 2.0], "p99"), 5.0)
        self.assertEqual(dashboards.summary([], "Average"), 0.0)


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

        cls.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        # What books-local publishes from an EMF document with two dimension sets.
        now = datetime.datetime.now(datetime.timezone.utc)
        for dims in ([("Service", "query"), ("Operation", "GetBook")], [("Service", "query")]):
            cls.cloudwatch.put_metric_data(Namespace="Books", MetricData=[{
                "MetricName": "RequestLatency", "Timestamp": now, "Values": [3.0, 5.0], "Unit": "Milliseconds",
                "Dimensions": [{"Name": n, "Value": v} for n, v in dims]}])
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/books/t/query")
        logs.create_log_stream(logGroupName="/books/t/query", logStreamName="s")
        logs.put_log_events(logGroupName="/books/t/query", logStreamName="s", logEvents=[
            {"timestamp": int(now.timestamp() * 1000) - 1000 * n, "message": json.dumps(
                {"level": "INFO", "message": "request handled", "duration_ms": 10.0 * n, "request_id": f"r{n}"})}
            for n in (3, 2, 1)])
        cls.cloudwatch.put_metric_alarm(
            AlarmName="slow", Namespace="Books", MetricName="RequestLatency", Statistic="Average",
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
             "properties": {"title": "slowest", "query": SLOWEST}},
        ]}
        self.cloudwatch.put_dashboard(DashboardName="books-t-service", DashboardBody=json.dumps(body))

    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = dashboards.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_check_passes_when_everything_referenced_is_published_and_fails_otherwise(self):
        self.dashboard(["Books", "RequestLatency", "Service", "query", "Operation", "GetBook", {"stat": "p99"}],
                       ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", "books"])
        code, out, err = self.run_cli("check")
        self.assertEqual(code, 0, out + err)
        self.assertIn("published but on no dashboard: Books/RequestLatency{Service=query}", out)
        self.assertIn("not known locally (AWS/DynamoDB)", out)

        self.dashboard(["Books", "RequestLatency", "Service", "query", "Operation", "GetBook"],
                       ["Books", "ColdStart", "Service", "query", {"stat": "Sum"}])
        code, out, err = self.run_cli("check")
        self.assertEqual(code, 1)
        self.assertIn("dashboard books-t-service / latency: Books/ColdStart{Service=query}", err)

    def test_a_widget_s_rows_are_answered_by_get_metric_data(self):
        properties = {"metrics": [
            ["Books", "RequestLatency", "Service", "query", {"stat": "Maximum", "id": "m"}],
            [{"expression": "m * 2", "id": "twice"}],
        ]}
        now = datetime.datetime.now(datetime.timezone.utc)
        results = dashboards.fetch(self.cloudwatch, dashboards.widget_queries(properties, 60),
                                   now - datetime.timedelta(minutes=5), now + datetime.timedelta(minutes=1))
        self.assertEqual([v for _, v in results["m"][1]], [5.0])
        self.assertEqual([v for _, v in results["twice"][1]], [10.0])

    def test_a_logs_insights_widget_is_answered_by_its_query_on_its_sources(self):
        import boto3

        now = datetime.datetime.now(datetime.timezone.utc)
        rows = dashboards.insights(boto3.client("logs", region_name="us-east-1"), SLOWEST,
                                   now - datetime.timedelta(minutes=5), now + datetime.timedelta(minutes=1))
        self.assertEqual(rows, [{"request_id": "r3", "duration_ms": "30"}, {"request_id": "r2", "duration_ms": "20"}])

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
