"""Tests of scripts/local_endpoint/cloudwatch_describe_alarms.py. Behaviour 24: DescribeAlarms
applies every filter it is given."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402

from support import serve_endpoint  # noqa: E402


class DescribeAlarms(unittest.TestCase):
    """Through boto3 (the JSON protocol) and the state CloudWatch would hold."""

    @classmethod
    def setUpClass(cls):
        cls.cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=serve_endpoint(cls.addClassCleanup),
                                      aws_access_key_id="testing", aws_secret_access_key="testing")
        for name, state, action in (("books-staging-api-5xx", "ALARM", "arn:aws:sns:eu-west-1:123456789012:staging"),
                                    ("books-staging-query-errors", "OK", "arn:aws:sns:eu-west-1:123456789012:staging"),
                                    ("books-prod-api-5xx", "ALARM", "arn:aws:sns:eu-west-1:123456789012:prod")):
            cls.cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/ApiGateway", MetricName="5XXError",
                                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                            ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[action])
            cls.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="tested")

    def names(self, **filters):
        answer = self.cloudwatch.describe_alarms(**filters)
        return sorted(a["AlarmName"] for a in answer["MetricAlarms"] + answer["CompositeAlarms"])

    def test_a_prefix_and_a_state_both_narrow_the_answer(self):
        self.assertEqual(self.names(AlarmNamePrefix="books-staging-", StateValue="ALARM"), ["books-staging-api-5xx"])
        self.assertEqual(self.names(StateValue="ALARM"), ["books-prod-api-5xx", "books-staging-api-5xx"])
        self.assertEqual(self.names(ActionPrefix="arn:aws:sns:eu-west-1:123456789012:staging", StateValue="OK"),
                         ["books-staging-query-errors"])
        self.assertEqual(self.names(AlarmNames=["books-staging-api-5xx", "books-prod-api-5xx"], StateValue="OK"), [])

    def test_alarm_types_choose_metric_or_composite_alarms(self):
        # moto has no PutCompositeAlarm: the metric alarms are all there is to choose from.
        self.assertEqual(self.names(AlarmNamePrefix="books-staging-", AlarmTypes=["CompositeAlarm"]), [])
        self.assertEqual(self.names(AlarmNamePrefix="books-staging-", AlarmTypes=["MetricAlarm", "CompositeAlarm"]),
                         ["books-staging-api-5xx", "books-staging-query-errors"])

    def test_names_and_a_name_prefix_together_are_refused(self):
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.cloudwatch.describe_alarms(AlarmNames=["books-prod-api-5xx"], AlarmNamePrefix="books-")
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterCombination")


if __name__ == "__main__":
    unittest.main()
