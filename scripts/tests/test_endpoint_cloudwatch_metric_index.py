"""Tests of scripts/local_endpoint/cloudwatch_metric_index.py. Behaviour 20: metrics as series —
ListMetrics answers distinct metrics (500 a page, the last two weeks), GetMetricStatistics
matches exact dimensions, and no read walks the whole history. Through boto3."""

import datetime
import pathlib
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from moto.cloudwatch.models import cloudwatch_backends  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)

from local_endpoint import cloudwatch_metric_index  # noqa: E402

# API Gateway's four dimensions, as the local gateway publishes them.
GATEWAY = [{"Name": "ApiName", "Value": "books-local-api"}, {"Name": "Stage", "Value": "v1"},
           {"Name": "Resource", "Value": "/books"}, {"Name": "Method", "Value": "GET"}]


class NoWalks(list):
    """moto's datum list, refusing to be walked whole (a slice, as the index catches up, is fine)."""

    def walked(self, *_):
        raise AssertionError("a read walked every datum ever stored")

    __iter__ = __add__ = __radd__ = __reversed__ = walked


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
        backend.metric_data = NoWalks(backend.metric_data)
        now = time.time()
        cloudwatch.list_metrics()
        cloudwatch.get_metric_statistics(Namespace="AWS/ApiGateway", MetricName="Count", Dimensions=GATEWAY,
                                         StartTime=now - 600, EndTime=now + 60, Period=60, Statistics=["Sum"])
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "c", "MetricStat": {"Metric": {"Namespace": "AWS/ApiGateway", "MetricName": "Count",
                                                                    "Dimensions": GATEWAY},
                                                         "Period": 3600, "Stat": "Sum"}}],
            StartTime=datetime.datetime.fromtimestamp(now - 3600), EndTime=datetime.datetime.fromtimestamp(now + 60))
        self.assertEqual(answer["MetricDataResults"][0]["Values"], [6.0])
        index = cloudwatch_metric_index.index(backend)
        self.assertEqual((len(index.series), index.indexed), (51, 5003))


if __name__ == "__main__":
    unittest.main()
