"""Tests of scripts/local_endpoint/cloudwatch_metric_data.py (behaviour 5): GetMetricData answered as CloudWatch documents it, through
boto3 (AWS's own client) against moto with the correction applied."""

import datetime
import os
import pathlib
import sys
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402
from moto import mock_aws  # noqa: E402

import support  # noqa: E402,F401  (installs every behaviour of the local endpoint)

UTC = datetime.timezone.utc
# A minute boundary an hour ago: inside the retention moto keeps, aligned for 60 s periods.
T0 = (datetime.datetime.now(UTC) - datetime.timedelta(hours=1)).replace(second=0, microsecond=0)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def stat_query(query_id, name, stat, dimensions=None, namespace="Books", period=60, return_data=True):
    return {
        "Id": query_id,
        "ReturnData": return_data,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
            },
            "Period": period,
            "Stat": stat,
        },
    }


@unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
@mock_aws
class GetMetricData(unittest.TestCase):
    def setUp(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, whatever the caller points at
        self.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")

    def put(self, name, values, when, dimensions=None, namespace="Books", counts=None):
        datum = {
            "MetricName": name,
            "Timestamp": when,
            "Values": values,
            "Dimensions": [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
        }
        if counts:
            datum["Counts"] = counts
        self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=[datum])

    def get(self, *queries, scan_by=None, end=600):
        extra = {"ScanBy": scan_by} if scan_by else {}
        answer = self.cloudwatch.get_metric_data(MetricDataQueries=list(queries), StartTime=at(0), EndTime=at(end), **extra)
        return {r["Id"]: list(zip(r["Timestamps"], r["Values"])) for r in answer["MetricDataResults"]}

    def test_a_query_matches_the_namespace_the_name_and_the_exact_dimension_set(self):
        self.put("Errors", [1], at(5), {"Service": "command"})
        self.put("Errors", [10], at(5), {"Service": "command", "Operation": "create"})
        self.put("Errors", [100], at(5), {"Service": "command"}, namespace="Other")
        self.put("Errors", [1000], at(5), {"Service": "query"})
        result = self.get(stat_query("e", "Errors", "Sum", {"Service": "command"}))
        self.assertEqual(result["e"], [(at(0), 1.0)])

    def test_values_with_counts_give_every_statistic_per_period(self):
        self.put("Latency", [10, 20, 30], at(1), counts=[1, 2, 1])
        self.put("Latency", [5], at(61))
        result = self.get(*(stat_query(s.lower(), "Latency", s) for s in
                            ("Sum", "SampleCount", "Average", "Minimum", "Maximum")), scan_by="TimestampAscending")
        self.assertEqual(result["sum"], [(at(0), 80.0), (at(60), 5.0)])
        self.assertEqual(result["samplecount"], [(at(0), 4.0), (at(60), 1.0)])
        self.assertEqual(result["average"][0], (at(0), 20.0))
        self.assertEqual(result["minimum"][0], (at(0), 10.0))
        self.assertEqual(result["maximum"][0], (at(0), 30.0))

    def test_percentiles_are_nearest_rank(self):
        self.put("Duration", list(range(1, 101)), at(1))
        result = self.get(stat_query("p50", "Duration", "p50"), stat_query("p99", "Duration", "p99"),
                          stat_query("p999", "Duration", "p99.9"), stat_query("p100", "Duration", "p100"))
        self.assertEqual(result["p50"], [(at(0), 50.0)])
        self.assertEqual(result["p99"], [(at(0), 99.0)])
        self.assertEqual(result["p999"], [(at(0), 100.0)])
        self.assertEqual(result["p100"], [(at(0), 100.0)])

    def test_the_newest_data_point_comes_first_unless_asked_otherwise(self):
        self.put("Count", [1], at(1))
        self.put("Count", [2], at(61))
        self.assertEqual(self.get(stat_query("c", "Count", "Sum"))["c"], [(at(60), 2.0), (at(0), 1.0)])

    def test_metric_math_combines_series_where_both_have_a_value(self):
        self.put("Errors", [1], at(1))
        self.put("Invocations", [4], at(1))
        self.put("Invocations", [2], at(61))
        self.put("Errors", [3], at(121))
        self.put("Invocations", [0], at(121))
        result = self.get(
            stat_query("errors", "Errors", "Sum", return_data=False),
            stat_query("invocations", "Invocations", "Sum", return_data=False),
            {"Id": "rate", "Expression": "100 * errors / invocations"},
            {"Id": "filled", "Expression": "FILL(errors, 0) / (invocations + 1)", "Label": "filled"},
            scan_by="TimestampAscending",
        )
        self.assertEqual(set(result), {"rate", "filled"}, "only the queries with ReturnData")
        # The second minute has no Errors; the third divides by zero: no value in either.
        self.assertEqual(result["rate"], [(at(0), 25.0)])
        self.assertEqual(result["filled"], [(at(0), 0.2), (at(60), 0.0), (at(120), 3.0)])

    def test_a_new_alarm_has_insufficient_data(self):
        self.cloudwatch.put_metric_alarm(AlarmName="a", Namespace="Books", MetricName="Errors", Statistic="Sum",
                                         Period=60, EvaluationPeriods=1, Threshold=1,
                                         ComparisonOperator="GreaterThanThreshold")
        alarm = self.cloudwatch.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]
        self.assertEqual(alarm["StateValue"], "INSUFFICIENT_DATA")

    def test_an_expression_naming_no_query_is_refused(self):
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.get(stat_query("m", "Count", "Sum"), {"Id": "e", "Expression": "m + nothing"})
        self.assertIn("nothing", str(refused.exception))


if __name__ == "__main__":
    unittest.main()
