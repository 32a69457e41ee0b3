"""Tests of scripts/local_endpoint/apigateway_usage_plan_stages.py. Behaviour 7: removing an absent stage of a usage plan."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)


class UsagePlanStages(unittest.TestCase):
    @in_moto_mock
    def test_removing_a_stage_twice_is_not_an_error(self):
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        api = apigateway.create_rest_api(name="a")["id"]
        plan = apigateway.create_usage_plan(name="p", apiStages=[{"apiId": api, "stage": "v1"}])["id"]
        remove = [{"op": "remove", "path": "/apiStages", "value": f"{api}:v1"}]
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)  # moto: 500
        self.assertEqual(apigateway.get_usage_plan(usagePlanId=plan).get("apiStages", []), [])
