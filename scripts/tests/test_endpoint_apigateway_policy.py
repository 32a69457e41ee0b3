"""Tests of scripts/local_endpoint/apigateway_policy.py. Behaviour 12: a REST API's policy answered escaped."""

import json
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import in_moto_mock  # noqa: E402  (importing support installs every behaviour)


class RestApiPolicy(unittest.TestCase):
    """Behaviour 12: the policy comes back as API Gateway answers it, quotes escaped, and reads
    back whole the way Terraform's provider reads it (the answer unquoted as a JSON string)."""

    @in_moto_mock
    def test_a_policy_reads_back_escaped_and_unquotes_to_what_was_put(self):
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        api = apigateway.create_rest_api(name="a")["id"]
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})
        apigateway.update_rest_api(restApiId=api, patchOperations=[{"op": "replace", "path": "/policy", "value": policy}])
        answered = apigateway.get_rest_api(restApiId=api)["policy"]
        self.assertTrue(answered.startswith('{\\"Version\\"'), answered)
        self.assertEqual(json.loads(json.loads(f'"{answered}"')), json.loads(policy))
