"""Tests of scripts/local_endpoint/rpcv2_cbor.py. Behaviour 18: CloudWatch in Smithy RPC v2 CBOR.

The client is boto3's own (botocore's CBOR serialiser and parser, the code AWS ships): told to
prefer RPC v2 CBOR, as the SDKs generated with one protocol do, it must get from the endpoint what
the same client gets through the JSON protocol moto speaks."""

import contextlib
import datetime
import gzip
import json
import os
import pathlib
import sys
import tempfile
import unittest
import unittest.mock
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
import botocore.model  # noqa: E402

from support import serve_endpoint  # noqa: E402

UTC = datetime.timezone.utc
CBOR = "smithy-rpc-v2-cbor"


@contextlib.contextmanager
def preferring(protocol):
    """botocore choosing `protocol` first among those a service's model lists."""
    order = (protocol,) + tuple(p for p in botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS if p != protocol)
    with unittest.mock.patch.object(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", order):
        yield


class CloudWatchInCbor(unittest.TestCase):
    def setUp(self):
        self.calls = pathlib.Path(tempfile.mkdtemp()) / "calls.jsonl"
        self.addCleanup(lambda: self.calls.unlink(missing_ok=True))
        self.url = serve_endpoint(self.addCleanup, {"BOOKS_RECORD_CALLS": str(self.calls)})
        self.sent = []

    def client(self, protocol):
        with preferring(protocol):
            client = boto3.client("cloudwatch", endpoint_url=self.url, region_name="eu-west-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing",
                                  config=botocore.config.Config(retries={"max_attempts": 1}))
        self.assertEqual(client.meta.service_model.resolved_protocol, protocol)
        client.meta.events.register("before-send.*", lambda request, **_: self.sent.append(request))
        return client

    def test_the_local_clouds_calls_answer_in_cbor_as_they_do_in_json(self):
        cbor, json_ = self.client(CBOR), self.client("json")
        now = datetime.datetime.now(UTC).replace(microsecond=0)
        dimensions = [{"Name": "FunctionName", "Value": "books-command"}]
        cbor.put_metric_data(Namespace="Books", MetricData=[
            {"MetricName": "Latency", "Dimensions": dimensions, "Timestamp": now, "Value": 12.5, "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Dimensions": dimensions, "Timestamp": now, "Unit": "Milliseconds",
             "StatisticValues": {"SampleCount": 3, "Sum": 30.0, "Minimum": 5.0, "Maximum": 15.0}},
            {"MetricName": "Latency", "Dimensions": dimensions, "Timestamp": now, "Value": 99.0, "Unit": "Milliseconds"},
        ])
        self.assertTrue(self.sent[-1].url.endswith("/service/GraniteServiceVersion20100801/operation/PutMetricData"))
        self.assertEqual(self.sent[-1].headers["smithy-protocol"], b"rpc-v2-cbor")

        self.assertEqual(cbor.list_metrics(Namespace="Books")["Metrics"],
                         [{"Namespace": "Books", "MetricName": "Latency", "Dimensions": dimensions}])
        query = [{"Id": "p99", "MetricStat": {"Metric": {"Namespace": "Books", "MetricName": "Latency",
                                                         "Dimensions": dimensions}, "Period": 60, "Stat": "p99"}},
                 {"Id": "sum", "MetricStat": {"Metric": {"Namespace": "Books", "MetricName": "Latency",
                                                         "Dimensions": dimensions}, "Period": 60, "Stat": "Sum"}},
                 {"Id": "doubled", "Expression": "sum * 2"}]
        window = {"StartTime": now - datetime.timedelta(minutes=5), "EndTime": now + datetime.timedelta(minutes=5)}
        results = {r["Id"]: r for r in cbor.get_metric_data(MetricDataQueries=query, **window)["MetricDataResults"]}
        self.assertEqual(results["p99"]["Values"], [99.0])  # behaviour 5's percentile: it reached the backend
        self.assertEqual(results["sum"]["Values"], [141.5])
        self.assertEqual(results["doubled"]["Values"], [283.0])
        self.assertEqual(results["sum"]["Timestamps"], [now.replace(second=0)])

        cbor.put_metric_alarm(AlarmName="errors", Namespace="Books", MetricName="Latency", Dimensions=dimensions,
                              Statistic="Maximum", Period=60, EvaluationPeriods=2, DatapointsToAlarm=1,
                              Threshold=50.5, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
                              AlarmActions=["arn:aws:sns:eu-west-1:123456789012:alarms"])
        cbor.set_alarm_state(AlarmName="errors", StateValue="ALARM", StateReason="tested")
        in_cbor, in_json = cbor.describe_alarms(AlarmNames=["errors"]), json_.describe_alarms(AlarmNames=["errors"])
        for answer in (in_cbor, in_json):
            answer.pop("ResponseMetadata")
        self.assertEqual(in_cbor, in_json)
        self.assertEqual(in_cbor["MetricAlarms"][0]["StateValue"], "ALARM")
        self.assertIsInstance(in_cbor["MetricAlarms"][0]["StateUpdatedTimestamp"], datetime.datetime)
        # What moto has not implemented fails in CBOR too (not as werkzeug's HTML page).
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "InternalFailure.*not been implemented"):
            cbor.describe_alarm_history(AlarmName="errors")

        body = json.dumps({"widgets": [{"type": "text", "properties": {"markdown": "books"}}]})
        cbor.put_dashboard(DashboardName="books", DashboardBody=body)
        self.assertEqual(cbor.get_dashboard(DashboardName="books")["DashboardBody"], body)
        self.assertEqual([d["DashboardName"] for d in cbor.list_dashboards()["DashboardEntries"]], ["books"])
        cbor.delete_dashboards(DashboardNames=["books"])

    def test_a_put_the_sdk_compressed_arrives_whole(self):
        # botocore, as the Rust SDK does past 10 KiB, gzips PutMetricData (its requestCompression
        # trait); a body of 10 KiB or more is what books-local's flushes of a busy minute send.
        with preferring(CBOR):
            cbor = boto3.client("cloudwatch", endpoint_url=self.url, region_name="eu-west-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing",
                                config=botocore.config.Config(retries={"max_attempts": 1}))
        cbor.meta.events.register("before-send.*", lambda request, **_: self.sent.append(request))
        now = datetime.datetime.now(UTC).replace(microsecond=0)
        data = [{"MetricName": "Duration", "Timestamp": now, "Value": float(n), "Unit": "Milliseconds",
                 "Dimensions": [{"Name": "FunctionName", "Value": f"books-{n % 3}"},
                                {"Name": "Resource", "Value": f"books-{n % 3}:live"},
                                {"Name": "ExecutedVersion", "Value": str(n % 2 + 1)}]} for n in range(150)]
        cbor.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
        self.assertEqual(self.sent[-1].headers["Content-Encoding"], b"gzip")
        self.assertGreater(len(gzip.decompress(self.sent[-1].body)), 10240)
        listed = cbor.list_metrics(Namespace="AWS/Lambda", MetricName="Duration")["Metrics"]
        self.assertEqual(len(listed), 6, listed)  # 3 functions x 2 versions, every datum arrived
        stat = cbor.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Duration", Statistics=["SampleCount"],
                                          Dimensions=data[0]["Dimensions"], Period=60,
                                          StartTime=now - datetime.timedelta(minutes=5),
                                          EndTime=now + datetime.timedelta(minutes=5))
        self.assertEqual(stat["Datapoints"][0]["SampleCount"], 25.0)

    def test_errors_keep_their_status_code_and_message(self):
        cbor, json_ = self.client(CBOR), self.client("json")
        errors = []
        for client in (cbor, json_):
            with self.assertRaises(client.exceptions.ResourceNotFound) as raised:
                client.get_dashboard(DashboardName="absent")
            errors.append(raised.exception.response)
        self.assertEqual(errors[0]["Error"], errors[1]["Error"])
        self.assertEqual(errors[0]["ResponseMetadata"]["HTTPStatusCode"], 404)
        self.assertEqual(errors[0]["ResponseMetadata"]["HTTPHeaders"]["smithy-protocol"], "rpc-v2-cbor")

    def test_what_is_not_a_cbor_call_it_can_carry_is_refused_in_cbor(self):
        cbor = self.client(CBOR)
        cbor.list_metrics()
        signed = self.sent[-1]

        def post(path, body):
            request = urllib.request.Request(self.url + path, data=body, method="POST", headers={
                "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                "Authorization": signed.headers["Authorization"].decode()})
            with self.assertRaises(urllib.error.HTTPError) as raised:
                urllib.request.urlopen(request, timeout=60)
            return raised.exception.code, raised.exception.read()

        status, body = post("/service/GraniteServiceVersion20100801/operation/NoSuchOperation", b"\xa0")
        self.assertEqual(status, 404)
        self.assertIn(b"UnknownOperationException", body)
        status, body = post("/service/SomethingElse/operation/ListMetrics", b"\xa0")
        self.assertEqual(status, 404)
        self.assertIn(b"serves no service SomethingElse", body)
        status, body = post("/service/GraniteServiceVersion20100801/operation/ListMetrics", b"\xff\x00 not cbor")
        self.assertEqual(status, 400)
        self.assertIn(b"SerializationException", body)

    def test_a_cbor_call_is_recorded_as_the_operation_it_is(self):
        self.client(CBOR).list_dashboards()
        calls = [json.loads(line) for line in self.calls.read_text().splitlines()]
        self.assertEqual([call["target"] for call in calls], ["GraniteServiceVersion20100801.ListDashboards"])
        self.assertEqual(calls[0]["caller"]["service"], "monitoring")


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    unittest.main()
