"""Tests of scripts/local_endpoint/lambda_versions.py. Behaviour 23: Lambda's versions are
immutable, and an alias is a resource of its own (policy, event source mappings, routing)."""

import json
import pathlib
import sys
import unittest
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402

from support import serve_endpoint  # noqa: E402


class LambdaVersions(unittest.TestCase):
    """Through boto3, as Terraform's provider and the deployment program call it."""

    @classmethod
    def setUpClass(cls):
        options = dict(region_name="eu-west-1", endpoint_url=serve_endpoint(cls.addClassCleanup),
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        cls.lambda_ = boto3.client("lambda", **options)
        cls.dynamodb = boto3.client("dynamodb", **options)
        cls.role = boto3.client("iam", **options).create_role(
            RoleName="versions", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def setUp(self):
        self.name = f"books-{uuid.uuid4().hex[:12]}"  # the endpoint's backends outlive the test
        self.lambda_.create_function(
            FunctionName=self.name, Role=self.role, PackageType="Image", Publish=True,
            Code={"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/books-query@sha256:" + "1" * 64},
            ImageConfig={"Command": ["/var/task/books-query"]}, Environment={"Variables": {"RELEASE": "one"}})
        self.lambda_.create_alias(FunctionName=self.name, Name="live", FunctionVersion="1")

    def release_two(self):
        self.lambda_.update_function_code(
            FunctionName=self.name,
            ImageUri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/books-query@sha256:" + "2" * 64)
        self.lambda_.update_function_configuration(FunctionName=self.name, Environment={"Variables": {"RELEASE": "two"}})
        return self.lambda_.publish_version(FunctionName=self.name)["Version"]

    def test_a_published_version_keeps_its_code_and_configuration(self):
        self.assertEqual(self.release_two(), "2")
        one = self.lambda_.get_function(FunctionName=self.name, Qualifier="1")
        two = self.lambda_.get_function(FunctionName=self.name, Qualifier="2")
        self.assertTrue(one["Code"]["ImageUri"].endswith("1" * 64), one["Code"])
        self.assertEqual(one["Configuration"]["Environment"]["Variables"], {"RELEASE": "one"})
        self.assertTrue(two["Code"]["ImageUri"].endswith("2" * 64), two["Code"])
        self.assertEqual(two["Configuration"]["Environment"]["Variables"], {"RELEASE": "two"})
        # Nothing changed since: publishing again gives the same version.
        self.assertEqual(self.lambda_.publish_version(FunctionName=self.name)["Version"], "2")

    def test_an_alias_keeps_its_own_policy_when_it_moves(self):
        self.lambda_.add_permission(FunctionName=self.name, Qualifier="live", StatementId="apigateway-get",
                                    Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                                    SourceArn="arn:aws:execute-api:eu-west-1:123456789012:api/*/GET/books")
        policy = json.loads(self.lambda_.get_policy(FunctionName=self.name, Qualifier="live")["Policy"])
        self.assertEqual([s["Resource"] for s in policy["Statement"]],
                         [f"arn:aws:lambda:eu-west-1:123456789012:function:{self.name}:live"])
        # Neither the function nor the version the alias named holds it.
        for qualifier in ({}, {"Qualifier": "1"}):
            with self.assertRaises(self.lambda_.exceptions.ResourceNotFoundException):
                self.lambda_.get_policy(FunctionName=self.name, **qualifier)
        self.lambda_.update_alias(FunctionName=self.name, Name="live", FunctionVersion=self.release_two())
        policy = json.loads(self.lambda_.get_policy(FunctionName=self.name, Qualifier="live")["Policy"])
        self.assertEqual([s["Sid"] for s in policy["Statement"]], ["apigateway-get"])
        self.lambda_.remove_permission(FunctionName=self.name, Qualifier="live", StatementId="apigateway-get")
        with self.assertRaises(self.lambda_.exceptions.ResourceNotFoundException):
            self.lambda_.get_policy(FunctionName=self.name, Qualifier="live")

    def test_a_mapping_on_an_alias_keeps_the_alias(self):
        table = f"{self.name}-table"
        stream = self.dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        alias_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{self.name}:live"
        mapping = self.lambda_.create_event_source_mapping(
            EventSourceArn=stream, FunctionName=alias_arn, StartingPosition="TRIM_HORIZON")
        self.assertEqual(mapping["FunctionArn"], alias_arn)
        self.assertEqual(self.lambda_.get_event_source_mapping(UUID=mapping["UUID"])["FunctionArn"], alias_arn)
        self.lambda_.delete_event_source_mapping(UUID=mapping["UUID"])

    def test_routing_takes_one_published_version_other_than_the_alias_s(self):
        two = self.release_two()
        self.lambda_.update_alias(FunctionName=self.name, Name="live", FunctionVersion="1",
                                  RoutingConfig={"AdditionalVersionWeights": {two: 0.1}})
        alias = self.lambda_.get_alias(FunctionName=self.name, Name="live")
        self.assertEqual(alias["RoutingConfig"], {"AdditionalVersionWeights": {"2": 0.1}})
        for wrong in ({"1": 0.1}, {"$LATEST": 0.1}, {"7": 0.1}, {"2": 1.5}):
            with self.subTest(wrong=wrong), self.assertRaises(botocore.exceptions.ClientError) as refused:
                self.lambda_.update_alias(FunctionName=self.name, Name="live", FunctionVersion="1",
                                          RoutingConfig={"AdditionalVersionWeights": wrong})
            self.assertIn(refused.exception.response["Error"]["Code"],
                          ("InvalidParameterValueException", "ResourceNotFoundException"))
        self.lambda_.update_alias(FunctionName=self.name, Name="live", FunctionVersion=two,
                                  RoutingConfig={"AdditionalVersionWeights": {}})
        alias = self.lambda_.get_alias(FunctionName=self.name, Name="live")
        self.assertEqual(alias["FunctionVersion"], "2")
        self.assertFalse((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"))


if __name__ == "__main__":
    unittest.main()
