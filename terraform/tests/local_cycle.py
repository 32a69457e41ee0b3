"""Apply the root module against the local AWS endpoint (moto), re-plan expecting no changes,
check what was created through the AWS API, and always destroy it again.

Run by `make test-terraform` inside `scripts/with-moto`, which sets AWS_ENDPOINT_URL, the
region and fake credentials.
"""

import json
import os
import shlex
import subprocess
import sys
import time
import unittest

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
TERRAFORM = os.environ.get("TERRAFORM", "terraform")
TF_DIR = os.environ["TF_DIR"]
STATE = os.environ["TF_TEST_STATE"]
VARS = shlex.split(os.environ["TF_TEST_VARS"]) + ["-var", f"aws_endpoint_url={ENDPOINT}"]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# What the module's defaults promise (variables.tf); the checks compare against them.
THROTTLE = {"rateLimit": 50.0, "burstLimit": 100}
QUOTA = {"limit": 100000, "period": "DAY"}
CONTRACT = {("/books", "POST"), ("/books", "GET"), ("/books/{id}", "GET"), ("/books/{id}", "PUT"), ("/books/{id}", "DELETE")}
DYNAMO_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def terraform(*args, check=True):
    command = [TERRAFORM, f"-chdir={TF_DIR}", *args]
    started = time.monotonic()
    result = subprocess.run(command, text=True, capture_output=True)
    print(f"    terraform {args[0]}: exit {result.returncode} in {time.monotonic() - started:.1f}s", flush=True)
    if check and result.returncode != 0:
        sys.stderr.write(result.stdout[-20000:] + result.stderr[-20000:])
        raise SystemExit(f"terraform {args[0]} failed")
    return result


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT)


class Footprint(unittest.TestCase):
    outputs = {}

    @classmethod
    def setUpClass(cls):
        cls.apigw = client("apigateway")
        cls.iam = client("iam")
        cls.dynamodb = client("dynamodb")
        cls.lambda_ = client("lambda")
        cls.logs = client("logs")
        cls.cloudwatch = client("cloudwatch")

    def test_every_method_of_the_contract_requires_an_api_key(self):
        api = self.outputs["rest_api_id"]
        resources = self.apigw.get_resources(restApiId=api, embed=["methods"])["items"]
        found = set()
        for resource in resources:
            for method in resource.get("resourceMethods", {}):
                detail = self.apigw.get_method(restApiId=api, resourceId=resource["id"], httpMethod=method)
                self.assertTrue(detail["apiKeyRequired"], f"{method} {resource['path']} must require a key")
                self.assertEqual(detail["methodIntegration"]["type"], "AWS_PROXY")
                found.add((resource["path"], method))
        self.assertEqual(found, CONTRACT)

    def test_integrations_target_the_right_functions(self):
        api = self.outputs["rest_api_id"]
        names = self.outputs["function_names"]
        for resource in self.apigw.get_resources(restApiId=api, embed=["methods"])["items"]:
            for method in resource.get("resourceMethods", {}):
                uri = self.apigw.get_integration(restApiId=api, resourceId=resource["id"], httpMethod=method)["uri"]
                expected = names["query"] if method == "GET" else names["command"]
                self.assertIn(f":function:{expected}/invocations", uri)

    def test_the_usage_plan_has_the_configured_limits_and_the_key(self):
        api = self.outputs["rest_api_id"]
        plans = [p for p in self.apigw.get_usage_plans()["items"] if any(s["apiId"] == api for s in p.get("apiStages", []))]
        self.assertEqual(len(plans), 1)
        plan = plans[0]
        self.assertEqual(plan["throttle"], THROTTLE)
        self.assertEqual({k: plan["quota"][k] for k in QUOTA}, QUOTA)
        self.assertIn({"apiId": api, "stage": "v1"}, [{k: s[k] for k in ("apiId", "stage")} for s in plan["apiStages"]])
        keys = self.apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        self.assertEqual([k["id"] for k in keys], [self.outputs["api_key_id"]])

    def test_the_stage_traces_and_logs_access(self):
        stage = self.apigw.get_stage(restApiId=self.outputs["rest_api_id"], stageName="v1")
        self.assertTrue(stage["tracingEnabled"])
        self.assertIn(self.outputs["log_groups"]["api_access"], stage["accessLogSettings"]["destinationArn"])

    def policy_of(self, role):
        function = self.lambda_.get_function(FunctionName=self.outputs["function_names"][role])["Configuration"]
        role_name = function["Role"].split("/")[-1]
        names = self.iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        self.assertEqual(len(names), 1, f"{role}: one inline policy")
        self.assertEqual(self.iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"], [])
        document = self.iam.get_role_policy(RoleName=role_name, PolicyName=names[0])["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = {}
        for statement in document["Statement"]:
            self.assertEqual(statement["Effect"], "Allow")
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            statements[statement["Sid"]] = (set(actions), resources)
        return statements

    def table_arn(self, name):
        return self.dynamodb.describe_table(TableName=self.outputs["table_names"][name])["Table"]["TableArn"]

    def test_the_query_role_only_reads_the_view(self):
        policy = self.policy_of("query")
        self.assertEqual(set(policy), {"ReadView", "ShipTelemetry", "PlatformLogs", "Tracing"})
        actions, resources = policy["ReadView"]
        self.assertEqual(actions, {"dynamodb:GetItem", "dynamodb:Query"})
        view = self.table_arn("books_view")
        self.assertEqual(sorted(resources), sorted([view, f"{view}/index/*"]))

    def test_the_command_role_only_touches_the_write_model(self):
        policy = self.policy_of("command")
        self.assertEqual(set(policy), {"WriteModel", "ShipTelemetry", "PlatformLogs", "Tracing"})
        actions, resources = policy["WriteModel"]
        self.assertTrue(actions <= {"dynamodb:GetItem", "dynamodb:ConditionCheckItem"} | DYNAMO_WRITES)
        self.assertNotIn("dynamodb:Query", actions)
        self.assertEqual(resources, [self.table_arn("books")])

    def test_the_projector_role_reads_the_stream_and_writes_the_view(self):
        policy = self.policy_of("projector")
        self.assertEqual(set(policy), {"ReadStream", "ListStreams", "WriteView", "ShipTelemetry", "PlatformLogs", "Tracing"})
        stream = self.dynamodb.describe_table(TableName=self.outputs["table_names"]["books"])["Table"]["LatestStreamArn"]
        self.assertEqual(policy["ReadStream"][1], [stream])
        self.assertEqual(policy["WriteView"][1], [self.table_arn("books_view")])
        self.assertFalse(any(a.startswith("dynamodb:") for s, (a_, _) in policy.items() if s not in {"ReadStream", "ListStreams", "WriteView"} for a in a_))

    def test_logs_statements_are_limited_to_the_functions_own_groups(self):
        for role in ("command", "query", "projector"):
            policy = self.policy_of(role)
            group = self.outputs["log_groups"][role]
            self.assertEqual(len(policy["ShipTelemetry"][1]), 1)
            self.assertIn(f":log-group:{group}:*", policy["ShipTelemetry"][1][0])
            self.assertIn(f":log-group:/aws/lambda/{self.outputs['function_names'][role]}:*", policy["PlatformLogs"][1][0])

    def test_tables_match_tables_json(self):
        with open(os.path.join(ROOT, "terraform", "tables.json")) as f:
            schema = json.load(f)
        for name, spec in schema.items():
            table = self.dynamodb.describe_table(TableName=self.outputs["table_names"][name])["Table"]
            keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
            self.assertEqual(keys.get("HASH"), spec["hash_key"])
            self.assertEqual(keys.get("RANGE"), spec["range_key"])
            self.assertEqual({a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}, spec["attributes"])
            indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
            self.assertEqual(set(indexes), {g["name"] for g in spec["global_secondary_indexes"]})
            for gsi in spec["global_secondary_indexes"]:
                got = {k["KeyType"]: k["AttributeName"] for k in indexes[gsi["name"]]["KeySchema"]}
                self.assertEqual(got, {"HASH": gsi["hash_key"], "RANGE": gsi["range_key"]})
            if spec["stream_view_type"]:
                self.assertEqual(table["StreamSpecification"]["StreamViewType"], spec["stream_view_type"])
            ttl = self.dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
            self.assertEqual(ttl.get("AttributeName"), spec["ttl_attribute"])
            backups = self.dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
            self.assertEqual(backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"], "ENABLED")

    def test_functions_run_their_handler_from_an_arm64_image(self):
        expected = {"command": "books-command", "query": "books-query", "projector": "books-projector"}
        for role, handler in expected.items():
            config = self.lambda_.get_function(FunctionName=self.outputs["function_names"][role])["Configuration"]
            self.assertEqual(config["PackageType"], "Image")
            self.assertEqual(config["Architectures"], ["arm64"])
            self.assertEqual(config["ImageConfigResponse"]["ImageConfig"]["Command"], [handler])
            env = config["Environment"]["Variables"]
            self.assertEqual(env["BOOKS_SERVICE"], role)
            self.assertEqual(env["BOOKS_TELEMETRY_LOG_GROUP"], self.outputs["log_groups"][role])
        query_env = self.lambda_.get_function(FunctionName=self.outputs["function_names"]["query"])["Configuration"]["Environment"]["Variables"]
        self.assertGreaterEqual(len(query_env["BOOKS_CURSOR_KEY"]), 32)

    def test_the_projector_mapping_reports_partial_failures(self):
        # moto's FunctionName filter does not match; filter on the ARN ourselves.
        name = self.outputs["function_names"]["projector"]
        mappings = [m for m in self.lambda_.list_event_source_mappings()["EventSourceMappings"] if m["FunctionArn"].endswith(f":function:{name}")]
        self.assertEqual(len(mappings), 1)
        mapping = mappings[0]
        self.assertEqual(mapping["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertTrue(mapping["BisectBatchOnFunctionError"])
        self.assertEqual(mapping["StartingPosition"], "TRIM_HORIZON")
        self.assertEqual(mapping["BatchSize"], 100)
        stream = self.dynamodb.describe_table(TableName=self.outputs["table_names"]["books"])["Table"]["LatestStreamArn"]
        self.assertEqual(mapping["EventSourceArn"], stream)

    def test_every_log_group_has_retention(self):
        groups = self.logs.describe_log_groups()["logGroups"]
        ours = [g for g in groups if g["logGroupName"] in self.outputs["log_groups"].values() or g["logGroupName"].startswith("/aws/lambda/books-test")]
        self.assertGreaterEqual(len(ours), 4)
        for group in ours:
            self.assertEqual(group.get("retentionInDays"), 30, group["logGroupName"])

    def test_alarms_notify_the_topic(self):
        alarms = [a for a in self.cloudwatch.describe_alarms(AlarmNamePrefix="books-test-")["MetricAlarms"]]
        names = {a["AlarmName"] for a in alarms}
        for expected in ("books-test-command-errors", "books-test-query-throttles", "books-test-projector-duration-p99",
                         "books-test-projector-iterator-age", "books-test-api-5xx", "books-test-api-latency-p99"):
            self.assertIn(expected, names)
        for alarm in alarms:
            self.assertEqual(alarm["AlarmActions"], [self.outputs["alarm_topic_arn"]])


def main():
    print("==> apply", flush=True)
    try:
        terraform("apply", "-auto-approve", "-no-color", f"-state={STATE}", *VARS)
        print("==> plan (expecting no changes)", flush=True)
        plan = terraform("plan", "-detailed-exitcode", "-no-color", f"-state={STATE}", *VARS, check=False)
        if plan.returncode != 0:
            sys.stderr.write(plan.stdout[-20000:] + plan.stderr[-5000:])
            raise SystemExit(f"re-plan after apply is not empty (exit {plan.returncode})")
        raw = terraform("output", "-json", f"-state={STATE}").stdout
        Footprint.outputs = {k: v["value"] for k, v in json.loads(raw).items()}
        print("==> checks through the AWS API", flush=True)
        result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.loadTestsFromTestCase(Footprint))
        if not result.wasSuccessful():
            raise SystemExit("footprint checks failed")
    finally:
        print("==> destroy", flush=True)
        terraform("destroy", "-auto-approve", "-no-color", f"-state={STATE}", *VARS)


if __name__ == "__main__":
    main()
