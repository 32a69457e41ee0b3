"""Tests of scripts/local_endpoint/cloudwatch_metric_index.py. Behaviour 20: metrics as series —
ListMetrics answers distinct metrics (500 a page, the last two weeks), GetMetricStatistics
matches exact dimensions, and no read walks the whole history. Through boto3."""

import datetime
import pathlib
import sys
import time
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from moto.cloudwatch.models import cloudwatch_backends  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)

from local_endpoint import cloudwatch_metric_index  # noqa: E402

# API Gateway's four dimensions, as the local gateway publishes them.
GATEWAY = [{"Name": "ApiName", "Value": "books-local-api"}, {"Name": "Stage", "Value": "v1"},
           {"Name": "Resource", "Value": "/books"}, {"Name": "Method", "Value": "GET"}]


class MetricIndex(unittest.TestCase):
    def put(self, cloudwatch, name, dimensions, values, at=None, namespace="AWS/ApiGateway"):
        at = at or datetime.datetime.now(datetime.timezone.utc)
        for chunk in range(0, len(values), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
                {"MetricName": name, "Dimensions": dimensions, "Value": value, "Timestamp": at, "Unit": "Count"}
                for value in values[chunk:chunk + 1000]])

    @in_moto_mock
    def test_a_metric_of_four_dimensions_is_listed_once_whatever_its_datums(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.put(cloudwatch, "Count", GATEWAY, [1.0] * 2000)
        self.put(cloudwatch, "Count", list(reversed(GATEWAY)), [1.0] * 10)  # the same set, another order
        self.put(cloudwatch, "Latency", GATEWAY, [5.0] * 10)
        listed = cloudwatch.list_metrics(Namespace="AWS/ApiGateway")["Metrics"]
        self.assertEqual(sorted(m["MetricName"] for m in listed), ["Count", "Latency"])
        self.assertEqual(sorted((d["Name"], d["Value"]) for d in listed[0]["Dimensions"]),
                         sorted((d["Name"], d["Value"]) for d in GATEWAY))
        self.assertEqual(len(cloudwatch.list_metrics(Dimensions=[{"Name": "Method", "Value": "GET"}])["Metrics"]), 2)
        self.assertEqual(cloudwatch.list_metrics(Dimensions=[{"Name": "Method", "Value": "PUT"}])["Metrics"], [])
        self.assertEqual(len(cloudwatch.list_metrics(Dimensions=[{"Name": "Stage"}])["Metrics"]), 2)

    @in_moto_mock
    def test_pages_of_500_and_only_the_last_two_weeks(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for n in range(1203):
            self.put(cloudwatch, f"M{n:04d}", [{"Name": "Service", "Value": "query"}], [1.0], namespace="Books")
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=15)
        self.put(cloudwatch, "Forgotten", [{"Name": "Service", "Value": "query"}], [1.0], at=old, namespace="Books")
        pages = list(cloudwatch.get_paginator("list_metrics").paginate(Namespace="Books"))
        self.assertEqual([len(page["Metrics"]) for page in pages], [500, 500, 203])
        names = [m["MetricName"] for page in pages for m in page["Metrics"]]
        self.assertEqual(len(set(names)), 1203)
        self.assertNotIn("Forgotten", names)

    @in_moto_mock
    def test_statistics_match_the_exact_dimension_set(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.put(cloudwatch, "Count", GATEWAY, [1.0, 2.0])
        self.put(cloudwatch, "Count", GATEWAY[:2], [100.0])
        now = time.time()

        def total(dimensions):
            points = cloudwatch.get_metric_statistics(
                Namespace="AWS/ApiGateway", MetricName="Count", Dimensions=dimensions, StartTime=now - 600,
                EndTime=now + 60, Period=3600, Statistics=["Sum", "SampleCount"])["Datapoints"]
            return [(p["Sum"], p["SampleCount"]) for p in points]
        self.assertEqual(total(GATEWAY), [(3.0, 2.0)])
        self.assertEqual(total(GATEWAY[:2]), [(100.0, 1.0)])
        self.assertEqual(total(GATEWAY[:1]), [])

    @in_moto_mock
    def test_no_read_walks_the_history(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for n in range(50):
            self.put(cloudwatch, f"Other{n}", GATEWAY, [1.0] * 100)
        self.put(cloudwatch, "Count", GATEWAY, [1.0, 2.0, 3.0])
        backend = cloudwatch_backends["123456789012"]["us-east-1"]
        series = cloudwatch_metric_index.index(backend).series
        self.assertEqual((len(series), sum(len(s) for s in series.values()), backend.metric_data), (51, 5003, []))
        made = []
        datum = cloudwatch_metric_index.Series.datum
        now = time.time()
        with unittest.mock.patch.object(cloudwatch_metric_index.Series, "datum",
                                        lambda self, i: made.append(i) or datum(self, i)):
            cloudwatch.list_metrics()
            cloudwatch.get_metric_statistics(Namespace="AWS/ApiGateway", MetricName="Count", Dimensions=GATEWAY,
                                             StartTime=now - 600, EndTime=now + 60, Period=60, Statistics=["Sum"])
            answer = cloudwatch.get_metric_data(
                MetricDataQueries=[{"Id": "c", "MetricStat": {"Metric": {"Namespace": "AWS/ApiGateway",
                                                                        "MetricName": "Count", "Dimensions": GATEWAY},
                                                             "Period": 3600, "Stat": "Sum"}}],
                StartTime=datetime.datetime.fromtimestamp(now - 3600), EndTime=datetime.datetime.fromtimestamp(now + 60))
        self.assertEqual(answer["MetricDataResults"][0]["Values"], [6.0])
        # A datum object is made for each metric listed and each point answered: none of the rest.
        self.assertEqual(len(made), 51 + 3 + 3)

DAY = 86400
T = 1_796_688_000  # 2026-12-08 00:00:00 UTC: the endpoint's "now" below


class Retention(unittest.TestCase):
    """CloudWatch's retention at its edges, on a clock the test sets."""

    def setUp(self):
        self.clock = T
        patcher = unittest.mock.patch.object(cloudwatch_metric_index, "now", lambda: self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)

    def put(self, cloudwatch, ages_s, value=1.0, resolution=60):
        cloudwatch.put_metric_data(Namespace="Books", MetricData=[
            {"MetricName": "Duration", "Dimensions": [{"Name": "Service", "Value": "query"}], "Value": value,
             "Timestamp": datetime.datetime.fromtimestamp(T - age, datetime.timezone.utc), "StorageResolution": resolution}
            for age in ages_s])

    def points(self, cloudwatch, since_s, period=1, stats=("SampleCount", "Sum")):
        """(age in seconds, sample count, sum) of each stored point or set."""
        datapoints = cloudwatch.get_metric_statistics(
            Namespace="Books", MetricName="Duration", Dimensions=[{"Name": "Service", "Value": "query"}],
            StartTime=datetime.datetime.fromtimestamp(T - since_s, datetime.timezone.utc),
            EndTime=datetime.datetime.fromtimestamp(T + 1, datetime.timezone.utc), Period=period,
            Statistics=list(stats))["Datapoints"]
        return sorted((T - int(p["Timestamp"].timestamp()), p["SampleCount"], p["Sum"]) for p in datapoints)

    @in_moto_mock
    def test_each_resolution_is_rolled_up_or_dropped_past_its_limit(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        hours3, days15, days63, days455 = 3 * 3600, 15 * DAY, 63 * DAY, 455 * DAY
        self.put(cloudwatch, [hours3 - 10, hours3 + 10, hours3 + 20], resolution=1)  # high resolution
        self.put(cloudwatch, [days15 - 60, days15 + 60, days15 + 120])
        self.put(cloudwatch, [days63 - 600, days63 + 600])
        self.put(cloudwatch, [days455 - 3600, days455 + 10])
        # T is a whole hour: a set's age is its points' rounded up to its period.
        self.assertEqual(self.points(cloudwatch, 500 * DAY), [
            (hours3 - 10, 1, 1.0),              # younger than 3 hours: as put
            (hours3 + 60, 2, 2.0),              # two 1-second points: one set, at its minute
            (days15 - 60, 1, 1.0),              # a one-minute point younger than 15 days
            (days15 + 300, 2, 2.0),             # one five-minute set
            (days63 - 600, 1, 1.0),             # a five-minute set
            (days63 + 3600, 1, 1.0),            # an hourly set
            (days455 - 3600, 1, 1.0),           # the last hour kept; the older point gone
        ])

    @in_moto_mock
    def test_points_age_pass_after_pass_and_sums_survive(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.put(cloudwatch, [14 * DAY + 10, 14 * DAY + 70, 14 * DAY + 130], value=2.0)  # one five minutes
        self.assertEqual([n for _, n, _ in self.points(cloudwatch, 20 * DAY)], [1, 1, 1])
        self.clock = T + 2 * DAY  # a day later than their 15th birthday
        self.assertEqual([(n, total) for _, n, total in self.points(cloudwatch, 20 * DAY)], [(3, 6.0)])
        self.clock = T + 60 * DAY
        self.assertEqual([(n, total) for _, n, total in self.points(cloudwatch, 80 * DAY)], [(3, 6.0)])
        self.clock = T + 450 * DAY
        self.assertEqual(self.points(cloudwatch, 500 * DAY), [])

    @in_moto_mock
    def test_list_metrics_shows_two_weeks(self):
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.put(cloudwatch, [14 * DAY - 60])
        self.assertEqual(len(cloudwatch.list_metrics(Namespace="Books")["Metrics"]), 1)
        self.clock = T + 120
        self.assertEqual(cloudwatch.list_metrics(Namespace="Books")["Metrics"], [])


if __name__ == "__main__":
    unittest.main()
