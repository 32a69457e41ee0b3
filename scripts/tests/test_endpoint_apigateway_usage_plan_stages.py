"""Tests of scripts/local_endpoint/apigateway_usage_plan_stages.py. Behaviour 7: removing an absent stage of a usage plan."""

import os
import pathlib
import sys
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
import support  # noqa: E402,F401  (installs every behaviour of the local endpoint)



class UsagePlanStages(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_removing_a_stage_twice_is_not_an_error(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        api = apigateway.create_rest_api(name="a")["id"]
        plan = apigateway.create_usage_plan(name="p", apiStages=[{"apiId": api, "stage": "v1"}])["id"]
        remove = [{"op": "remove", "path": "/apiStages", "value": f"{api}:v1"}]
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)  # moto: 500
        self.assertEqual(apigateway.get_usage_plan(usagePlanId=plan).get("apiStages", []), [])
