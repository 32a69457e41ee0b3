"""Apply the environment's root module, then the API keys' root module (terraform/keys), against
the local AWS endpoint (moto), re-plan each expecting no changes, check what was created through
the AWS API, and always destroy both again (the keys first).

Run by `make test-terraform` inside `books-local endpoint`, which sets AWS_ENDPOINT_URL, the
region and fake credentials. Environment: TERRAFORM, TF_DIR, TF_DATA_DIR, TF_TEST_STATE (a
state file of its own) and TF_TEST_VARS (the variable file of the local cloud); TF_KEYS_DIR and
TF_KEYS_DATA_DIR, the keys root and its data dir (its state is TF_TEST_STATE.keys).

The keys' values are in the keys root's state only: the environment's state, which the roles CI
plans with read, and everything its runs print are searched for them.

The cursor HMAC key is read back from Secrets Manager to prove it is set, rotated by a new
generation, and never printed nor kept in the state; no output of this script contains it.
"""

import json
import os
import shlex
import subprocess
import sys
import time
import unittest

import boto3

import code_calls  # the actions the code calls, beside this file
import iam_analysis  # cloudsplaining and parliament on the policies read back

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
TERRAFORM = os.environ.get("TERRAFORM", "terraform")
TF_DIR = os.environ["TF_DIR"]
STATE = os.environ["TF_TEST_STATE"]
KEYS_DIR = os.environ["TF_KEYS_DIR"]
KEYS_DATA_DIR = os.environ["TF_KEYS_DATA_DIR"]
KEYS_STATE = STATE + ".keys"
PLAN = STATE + ".plan"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Non-default values, so the checks prove each variable reaches what it configures.
THROTTLE = {"rateLimit": 7.0, "burstLimit": 13}
QUOTA = {"limit": 4321, "period": "WEEK"}
LOG_LEVEL = "books=debug,info"
VARS = shlex.split(os.environ["TF_TEST_VARS"]) + [
    "-var", f"aws_endpoint_url={ENDPOINT}",
    "-var", f"throttle={{rate_limit={THROTTLE['rateLimit']:g},burst_limit={THROTTLE['burstLimit']}}}",
    "-var", f'quota={{limit={QUOTA["limit"]},period="{QUOTA["period"]}"}}',
    "-var", f"log_level={LOG_LEVEL}",
]
# The keys root's own variables (tests/local.tfvars is the environment's): the same environment,
# the same endpoint; usage_plans comes from the environment's output usage_plan_ids.
KEYS_VARS = ["-var", "environment=test", "-var", f"aws_endpoint_url={ENDPOINT}"]

CONTRACT = {  # (path, method) -> function role
    ("/books", "POST"): "command",
    ("/books", "GET"): "query",
    ("/books/{id}", "GET"): "query",
    ("/books/{id}", "PUT"): "command",
    ("/books/{id}", "DELETE"): "command",
}
ENVIRONMENT = {  # the variables each function reads, no more
    "command": {"BOOKS_SERVICE", "BOOKS_LOG", "BOOKS_TELEMETRY_LOG_GROUP", "BOOKS_TELEMETRY_NAMESPACE", "BOOKS_TELEMETRY_SERVICE", "BOOKS_TABLE"},
    "query": {"BOOKS_SERVICE", "BOOKS_LOG", "BOOKS_TELEMETRY_LOG_GROUP", "BOOKS_TELEMETRY_NAMESPACE", "BOOKS_TELEMETRY_SERVICE", "BOOKS_VIEW_TABLE", "BOOKS_CURSOR_KEY_SECRET"},
    "projector": {"BOOKS_SERVICE", "BOOKS_LOG", "BOOKS_TELEMETRY_LOG_GROUP", "BOOKS_TELEMETRY_NAMESPACE", "BOOKS_TELEMETRY_SERVICE", "BOOKS_VIEW_TABLE"},
}
HANDLERS = {"command": "/var/task/books-command", "query": "/var/task/books-query", "projector": "/var/task/books-projector"}
IMAGE_KIND = {"command": "command", "query": "query", "projector": "query"}

# Everything terraform printed, to prove the cursor keys (read back) never appear in it, nor
# the API keys in what the environment's root module printed.
PRINTED = []
PRINTED_BY_MAIN = []
CURSOR_KEY = []  # each generation's value, as read back from Secrets Manager
API_KEYS = set()  # every API key value, as the keys root's outputs give them
USAGE_PLANS = {}  # the usage plans the keys root was last applied with (its destroy needs them)


def terraform(*args, check=True, keys=False):
    """terraform in the environment's root module, or with keys=True in the keys root (its own
    data dir)."""
    command = [TERRAFORM, f"-chdir={KEYS_DIR if keys else TF_DIR}", *args]
    env = dict(os.environ, TF_DATA_DIR=KEYS_DATA_DIR) if keys else None
    started = time.monotonic()
    result = subprocess.run(command, text=True, capture_output=True, env=env)
    PRINTED.append(result.stdout + result.stderr)
    if not keys:
        PRINTED_BY_MAIN.append(result.stdout + result.stderr)
    print(f"    terraform {args[0]}{' (keys)' if keys else ''}: exit {result.returncode} in "
          f"{time.monotonic() - started:.1f}s", flush=True)
    if check and result.returncode != 0:
        sys.stderr.write(result.stdout[-20000:] + result.stderr[-20000:])
        raise SystemExit(f"terraform {args[0]}{' (keys)' if keys else ''} failed")
    return result


def resource_types(document):
    """Every resource type a state file or a `terraform show -json` document names, at any depth
    (a resource there is an object with its mode and type)."""
    if isinstance(document, dict):
        found = {document["type"]} if "mode" in document and isinstance(document.get("type"), str) else set()
        return found.union(*(resource_types(v) for v in document.values()))
    if isinstance(document, list):
        return set().union(*(resource_types(v) for v in document))
    return set()


class NoKeyInTheEnvironmentsState:
    """The API keys' values live in the keys root's state alone: neither the environment's state
    (which the roles CI plans with read), nor its plan, nor anything its runs printed holds one."""

    def test_the_environment_s_state_and_plan_hold_no_api_key(self):
        self.assertTrue(API_KEYS, "the keys root's outputs gave key values")
        with open(KEYS_STATE) as f:
            keys_state = f.read()
        self.assertTrue(all(value in keys_state for value in API_KEYS), "the search finds values where they are")
        with open(STATE) as f:
            state = f.read()
        shown = terraform("show", "-json", STATE).stdout
        planned = terraform("show", "-json", PLAN).stdout
        for name, text in (("state file", state), ("terraform show -json", shown), ("saved re-plan", planned)):
            # any(): a failure must not print the value it found.
            self.assertFalse(any(v in text for v in API_KEYS), f"an API key's value is in the environment's {name}")
            types = resource_types(json.loads(text))
            self.assertIn("aws_api_gateway_usage_plan", types, name)
            self.assertNotIn("aws_api_gateway_api_key", types, name)
            self.assertNotIn("aws_api_gateway_usage_plan_key", types, name)
        self.assertFalse(any(v in text for v in API_KEYS for text in PRINTED_BY_MAIN),
                         "a run of the environment's root module printed an API key's value")


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT)


def as_list(value):
    return value if isinstance(value, list) else [value]


class Footprint(NoKeyInTheEnvironmentsState, unittest.TestCase):
    outputs = {}
    keys = {}  # the keys root's outputs

    @classmethod
    def setUpClass(cls):
        cls.apigw = client("apigateway")
        cls.iam = client("iam")
        cls.dynamodb = client("dynamodb")
        cls.lambda_ = client("lambda")
        cls.logs = client("logs")
        cls.cloudwatch = client("cloudwatch")
        cls.ecr = client("ecr")
        cls.sns = client("sns")

    # --- helpers -------------------------------------------------------------------------

    def function(self, role):
        return self.lambda_.get_function(FunctionName=self.outputs["function_names"][role])["Configuration"]

    def table(self, name):
        return self.dynamodb.describe_table(TableName=self.outputs["table_names"][name])["Table"]

    def log_group_arn(self, name):
        group = self.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
        return group["arn"].removesuffix(":*")

    def policy_of(self, role):
        """The role's one inline policy as {sid: (actions, resources)}; nothing attached."""
        role_name = self.function(role)["Role"].split("/")[-1]
        names = self.iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        self.assertEqual(len(names), 1, f"{role}: one inline policy")
        self.assertEqual(self.iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"], [])
        document = self.iam.get_role_policy(RoleName=role_name, PolicyName=names[0])["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = {}
        for statement in document["Statement"]:
            self.assertEqual(statement["Effect"], "Allow")
            self.assertNotIn("NotAction", statement)
            self.assertNotIn("NotResource", statement)
            statements[statement["Sid"]] = (set(as_list(statement["Action"])), sorted(as_list(statement["Resource"])))
        return statements

    def test_the_function_roles_pass_the_third_party_analysis(self):
        """cloudsplaining and parliament on each function's role, as read back (iam_analysis.py)."""
        policies = iam_analysis.policies_on_endpoint(self.iam, ("books-test-",))
        self.assertEqual(len(policies), 3, sorted(policies))
        problems = iam_analysis.check(policies)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def expected_logs_statements(self, role):
        telemetry = self.log_group_arn(self.outputs["log_groups"][role])
        platform = self.log_group_arn(f"/aws/lambda/{self.outputs['function_names'][role]}")
        return {
            "ShipTelemetry": (code_calls.extension_logs_needs(), [f"{telemetry}:*"]),
            # tests/local.tfvars keeps the platform copy; WithoutPlatformLogs checks the default.
            "PlatformLogs": ({"logs:CreateLogStream", "logs:PutLogEvents"}, [f"{platform}:*"]),
            "Tracing": ({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, ["*"]),
        }

    # --- the REST API ----------------------------------------------------------------------

    def test_every_method_of_the_contract_requires_an_api_key_and_proxies_to_its_function(self):
        api = self.outputs["rest_api_id"]
        names = self.outputs["function_names"]
        found = {}
        for resource in self.apigw.get_resources(restApiId=api, embed=["methods"])["items"]:
            for method in resource.get("resourceMethods", {}):
                detail = self.apigw.get_method(restApiId=api, resourceId=resource["id"], httpMethod=method)
                self.assertTrue(detail["apiKeyRequired"], f"{method} {resource['path']} must require a key")
                integration = detail["methodIntegration"]
                self.assertEqual(integration["type"], "AWS_PROXY")
                self.assertEqual(integration["httpMethod"], "POST")
                # The alias, never $LATEST: a release reaches callers when the alias moves.
                function = next(role for role, name in names.items() if f":function:{name}:live/invocations" in integration["uri"])
                found[(resource["path"], method)] = function
        self.assertEqual(found, CONTRACT)

    def test_each_function_may_be_invoked_by_exactly_its_methods(self):
        api = self.outputs["rest_api_id"]
        for role in ("command", "query"):
            name = self.outputs["function_names"][role]
            # API Gateway may invoke the alias only: neither $LATEST nor any version by number.
            with self.assertRaises(self.lambda_.exceptions.ResourceNotFoundException):
                self.lambda_.get_policy(FunctionName=name)
            policy = json.loads(self.lambda_.get_policy(FunctionName=name, Qualifier="live")["Policy"])
            arns = set()
            for statement in policy["Statement"]:
                self.assertEqual(statement["Principal"], {"Service": "apigateway.amazonaws.com"})
                self.assertEqual(statement["Action"], "lambda:InvokeFunction")
                arns.add(statement["Condition"]["ArnLike"]["AWS:SourceArn"])
            prefix = f"arn:aws:execute-api:{os.environ['AWS_REGION']}:"
            expected = {
                f"/*/{method}{path.replace('{id}', '*')}" for (path, method), fn in CONTRACT.items() if fn == role
            }
            self.assertTrue(all(arn.startswith(prefix) and f":{api}/*/" in arn for arn in arns), arns)
            self.assertEqual({arn.split(f":{api}", 1)[1] for arn in arns}, expected)

    def test_the_usage_plan_has_the_configured_limits_and_the_key(self):
        self.assertEqual(set(self.outputs["usage_plan_ids"]), {"default"})
        plan = self.apigw.get_usage_plan(usagePlanId=self.outputs["usage_plan_ids"]["default"])
        self.assertEqual(plan["throttle"], THROTTLE)
        self.assertEqual({k: plan["quota"][k] for k in QUOTA}, QUOTA)
        self.assertEqual([{k: s[k] for k in ("apiId", "stage")} for s in plan["apiStages"]],
                         [{"apiId": self.outputs["rest_api_id"], "stage": "v1"}])
        keys = self.apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        self.assertEqual([(k["id"], k["type"]) for k in keys], [(self.keys["api_key_id"], "API_KEY")])
        key = self.apigw.get_api_key(apiKey=self.keys["api_key_id"])
        self.assertTrue(key["enabled"])
        self.assertEqual(key["name"], "books-test-api-default-1")
        self.assertEqual(self.keys["client_keys"],
                         {"default": {"tier": "default", "keys": [{"generation": "1", "id": self.keys["api_key_id"]}]}})

    def test_the_stage_traces_logs_access_as_json_and_throttles_methods(self):
        stage = self.apigw.get_stage(restApiId=self.outputs["rest_api_id"], stageName=self.outputs["stage_name"])
        self.assertEqual(self.outputs["stage_name"], "v1")
        self.assertTrue(stage["tracingEnabled"])
        self.assertTrue(stage["accessLogSettings"]["destinationArn"].endswith(f":log-group:{self.outputs['log_groups']['api_access']}"))
        access_format = json.loads(stage["accessLogSettings"]["format"])
        self.assertEqual(access_format["requestId"], "$context.requestId")
        # Who called with which key, over which TLS, and what the web ACL (if any) said.
        for field in ("apiKeyId", "ip", "domainName", "tlsVersion", "cipherSuite", "wafResponseCode"):
            self.assertIn(field, access_format)
        settings = stage["methodSettings"]["*/*"]
        self.assertEqual((settings["throttlingRateLimit"], settings["throttlingBurstLimit"]),
                         (THROTTLE["rateLimit"], THROTTLE["burstLimit"]))
        self.assertTrue(settings["metricsEnabled"])
        deployments = self.apigw.get_deployments(restApiId=self.outputs["rest_api_id"])["items"]
        self.assertIn(stage["deploymentId"], [d["id"] for d in deployments])
        self.assertTrue(self.outputs["invoke_url"].endswith("/v1"), self.outputs["invoke_url"])

    # --- roles -------------------------------------------------------------------------------

    # The DynamoDB actions of each role are those its code calls (code_calls.py), exactly.

    def code_needs(self, function, table):
        needed_table, actions = code_calls.dynamodb_needs(function)
        self.assertEqual(needed_table, table, f"{function} works on {needed_table}")
        return actions

    def test_the_query_role_only_reads_the_view(self):
        view = self.table("books_view")["TableArn"]
        secret = self.function("query")["Environment"]["Variables"]["BOOKS_CURSOR_KEY_SECRET"]
        expected = {
            "ReadView": (self.code_needs("query", "books_view"), sorted([view, f"{view}/index/*"])),
            "ReadCursorKeys": (code_calls.secrets_needs("query"), [secret]),
            **self.expected_logs_statements("query"),
        }
        self.assertEqual(self.policy_of("query"), expected)

    def test_the_command_role_only_touches_the_write_model(self):
        expected = {
            "WriteModel": (self.code_needs("command", "books"), [self.table("books")["TableArn"]]),
            **self.expected_logs_statements("command"),
        }
        self.assertEqual(self.policy_of("command"), expected)

    def test_the_projector_role_reads_the_stream_and_writes_the_view(self):
        expected = {
            "ReadStream": ({"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
                           [self.table("books")["LatestStreamArn"]]),
            "ListStreams": ({"dynamodb:ListStreams"}, ["*"]),
            "WriteView": (self.code_needs("projector", "books_view"), [self.table("books_view")["TableArn"]]),
            "DescribeDiscardedBatches": ({"sqs:SendMessage"}, [self.failure_queue()["QueueArn"]]),
            **self.expected_logs_statements("projector"),
        }
        self.assertEqual(self.policy_of("projector"), expected)

    def failure_queue(self):
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName="books-test-projector-failures")["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    def test_batches_the_projector_gives_up_on_are_described_to_an_encrypted_queue(self):
        queue = self.failure_queue()
        self.assertEqual(queue.get("SqsManagedSseEnabled"), "true")
        self.assertEqual(queue["MessageRetentionPeriod"], "1209600")
        mappings = [m for m in client("lambda").list_event_source_mappings()["EventSourceMappings"]
                    if m["FunctionArn"].endswith(":function:books-test-projector:live")]
        self.assertEqual([m["DestinationConfig"]["OnFailure"]["Destination"] for m in mappings], [queue["QueueArn"]])

    # --- functions -----------------------------------------------------------------------------

    def test_functions_run_their_handler_from_an_arm64_image_by_digest(self):
        images = {}
        for role, handler in HANDLERS.items():
            config = self.function(role)
            self.assertEqual(config["PackageType"], "Image")
            self.assertEqual(config["Architectures"], ["arm64"])
            self.assertEqual(config["ImageConfigResponse"]["ImageConfig"]["Command"], [handler])
            self.assertEqual(config["TracingConfig"]["Mode"], "Active")
            image = self.lambda_.get_function(FunctionName=config["FunctionName"])["Code"]["ImageUri"]
            repository, digest = image.split("@")
            self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")
            self.assertEqual(repository, self.outputs["repository_urls"][IMAGE_KIND[role]])
            images[role] = image
        self.assertEqual(images["projector"], images["query"], "the projector runs the query image")

    def test_functions_get_exactly_their_environment(self):
        for role, names in ENVIRONMENT.items():
            env = self.function(role)["Environment"]["Variables"]
            self.assertEqual(set(env), names, role)
            self.assertEqual(env["BOOKS_SERVICE"], role)
            self.assertEqual(env["BOOKS_LOG"], LOG_LEVEL)
            self.assertEqual(env["BOOKS_TELEMETRY_NAMESPACE"], "Books")
            self.assertEqual(env["BOOKS_TELEMETRY_SERVICE"], role)
            self.assertEqual(env["BOOKS_TELEMETRY_LOG_GROUP"], self.outputs["log_groups"][role])
            self.assertEqual(env["BOOKS_TELEMETRY_LOG_GROUP"], f"/books/test/{role}")
            for key, table in (("BOOKS_TABLE", "books"), ("BOOKS_VIEW_TABLE", "books_view")):
                if key in env:
                    self.assertEqual(env[key], self.outputs["table_names"][table])

    def test_the_cursor_key_is_a_secret_only_the_query_function_reads(self):
        self.assertEqual(code_calls.secrets_needs("command"), set())
        self.assertEqual(code_calls.secrets_needs("projector"), set())
        self.assertEqual(code_calls.secrets_needs("query"), {"secretsmanager:GetSecretValue"})
        arn = self.function("query")["Environment"]["Variables"]["BOOKS_CURSOR_KEY_SECRET"]
        secrets = client("secretsmanager")
        self.assertEqual(secrets.describe_secret(SecretId=arn)["Name"], "books-test-cursor-key")
        current = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        self.assertRegex(current, r"^[A-Za-z0-9]{64}$")
        CURSOR_KEY.append(current)
        with open(STATE) as f:
            self.assertNotIn(current, f.read(), "the state keeps the cursor key")
        self.assertFalse(any(current in text for text in PRINTED), "terraform printed the cursor key")

    def test_the_projector_mapping_reports_partial_failures(self):
        # moto's FunctionName filter does not match; filter on the ARN ourselves.
        name = self.outputs["function_names"]["projector"]
        mappings = [m for m in self.lambda_.list_event_source_mappings()["EventSourceMappings"]
                    if m["FunctionArn"].split(":")[6] == name]
        self.assertEqual(len(mappings), 1)
        self.assertTrue(mappings[0]["FunctionArn"].endswith(f":function:{name}:live"), mappings[0]["FunctionArn"])
        mapping = mappings[0]
        self.assertEqual(mapping["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertTrue(mapping["BisectBatchOnFunctionError"])
        self.assertEqual(mapping["StartingPosition"], "TRIM_HORIZON")
        self.assertEqual(mapping["BatchSize"], 100)
        self.assertEqual(mapping["MaximumRetryAttempts"], 10)
        self.assertEqual(mapping["MaximumRecordAgeInSeconds"], 21600)
        self.assertEqual(mapping["EventSourceArn"], self.table("books")["LatestStreamArn"])

    def test_each_function_s_alias_names_the_version_this_apply_published(self):
        versions = self.outputs["function_versions"]
        self.assertEqual(set(versions), {"command", "query", "projector"})
        for role, published in versions.items():
            self.assertEqual(published["alias"], "live")
            self.assertRegex(published["version"], r"^[0-9]+$", "a published version, not $LATEST")
            alias = self.lambda_.get_alias(FunctionName=published["name"], Name="live")
            self.assertEqual(alias["FunctionVersion"], published["version"])
            latest = self.lambda_.get_function(FunctionName=published["name"])
            version = self.lambda_.get_function(FunctionName=published["name"], Qualifier=published["version"])
            self.assertEqual(version["Code"]["ImageUri"], latest["Code"]["ImageUri"])
            self.assertEqual(version["Configuration"]["Environment"], latest["Configuration"]["Environment"])

    # --- data and images -------------------------------------------------------------------------

    def test_tables_match_tables_json(self):
        with open(os.path.join(ROOT, "terraform", "tables.json")) as f:
            schema = json.load(f)
        self.assertEqual(set(self.outputs["table_names"]), set(schema))
        for name, spec in schema.items():
            table = self.table(name)
            keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
            self.assertEqual(keys.get("HASH"), spec["hash_key"])
            self.assertEqual(keys.get("RANGE"), spec["range_key"])
            self.assertEqual({a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}, spec["attributes"])
            indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
            self.assertEqual(set(indexes), {g["name"] for g in spec["global_secondary_indexes"]})
            for gsi in spec["global_secondary_indexes"]:
                got = {k["KeyType"]: k["AttributeName"] for k in indexes[gsi["name"]]["KeySchema"]}
                self.assertEqual(got, {"HASH": gsi["hash_key"], "RANGE": gsi["range_key"]})
                self.assertEqual(indexes[gsi["name"]]["Projection"]["ProjectionType"], gsi["projection_type"])
            stream = table.get("StreamSpecification", {})
            if spec["stream_view_type"]:
                self.assertEqual((stream.get("StreamEnabled"), stream.get("StreamViewType")), (True, spec["stream_view_type"]))
            else:
                self.assertFalse(stream.get("StreamEnabled", False))
            ttl = self.dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
            self.assertEqual((ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")), ("ENABLED", spec["ttl_attribute"]))
            backups = self.dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
            self.assertEqual(backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"], "ENABLED")
            self.assertEqual(table["SSEDescription"]["Status"], "ENABLED")
            self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")

    def test_repositories_scan_on_push_keep_tags_and_expire_images(self):
        for kind, url in self.outputs["repository_urls"].items():
            name = url.split("/", 1)[1]
            self.assertEqual(name, f"books-test-{kind}")
            repo = self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
            self.assertEqual(repo["imageTagMutability"], "IMMUTABLE")
            self.assertTrue(repo["imageScanningConfiguration"]["scanOnPush"])
            rules = json.loads(self.ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])["rules"]
            rules.sort(key=lambda r: r["rulePriority"])
            self.assertEqual([r["action"]["type"] for r in rules], ["expire", "expire", "expire"])
            # Deployed images are selected first (so no later rule can expire them), and only
            # beyond the newest deployments; the catch-all comes last, as ECR requires.
            first, last = rules[0]["selection"], rules[-1]["selection"]
            self.assertEqual((first["tagStatus"], first["tagPrefixList"]), ("tagged", ["deployed-"]))
            self.assertEqual(first["countType"], "imageCountMoreThan")
            self.assertGreaterEqual(first["countNumber"], 1)
            self.assertEqual(last["tagStatus"], "any")

    # --- logs and alarms -------------------------------------------------------------------------

    def test_every_log_group_has_retention(self):
        expected = set(self.outputs["log_groups"].values()) | set(self.outputs["platform_log_groups"].values())
        self.assertEqual(len(expected), 7)
        groups = {g["logGroupName"]: g for g in self.logs.describe_log_groups()["logGroups"]}
        for name in expected:
            self.assertEqual(groups[name].get("retentionInDays"), 30, name)

    def test_alarms_cover_the_standard_metrics_and_notify_the_topic(self):
        alarms = {a["AlarmName"]: a for a in self.cloudwatch.describe_alarms(AlarmNamePrefix="books-test-")["MetricAlarms"]}
        expected = {f"books-test-{role}-{kind}" for role in HANDLERS for kind in ("errors", "throttles", "duration-p99")}
        expected |= {"books-test-projector-iterator-age", "books-test-api-5xx", "books-test-api-latency-p99"}
        expected |= {"books-test-projector-discarded-batches", "books-test-projection-failures"}
        expected |= {f"books-test-{t}-{m}throttleevents" for t in ("books", "books_view") for m in ("read", "write")}
        # On our own EMF metrics.
        expected |= {"books-test-projection-lag", "books-test-conflict-rate"}
        expected |= {f"books-test-{role}-{kind}" for role in HANDLERS
                     for kind in ("logs-dropped", "cold-start-ratio", "telemetry-silence")}
        self.assertEqual(set(alarms), expected)
        for alarm in alarms.values():
            self.assertEqual(alarm["AlarmActions"], [self.outputs["alarm_topic_arn"]])
        projector_timeout_ms = self.function("projector")["Timeout"] * 1000
        self.assertEqual(alarms["books-test-projector-duration-p99"]["ExtendedStatistic"], "p99")
        self.assertEqual(alarms["books-test-projector-duration-p99"]["Threshold"], projector_timeout_ms * 0.8)
        self.assertEqual({d["Name"]: d["Value"] for d in alarms["books-test-api-5xx"]["Dimensions"]},
                         {"ApiName": "books-test-api", "Stage": "v1"})
        topics = [t["TopicArn"] for t in self.sns.list_topics()["Topics"]]
        self.assertIn(self.outputs["alarm_topic_arn"], topics)
        lag = alarms["books-test-projection-lag"]
        self.assertEqual((lag["Namespace"], lag["MetricName"], lag["Statistic"]), ("Books", "ProjectionLag", "Maximum"))
        self.assertEqual(lag["Dimensions"], [{"Name": "Service", "Value": "projector"}])
        cold = alarms["books-test-query-cold-start-ratio"]
        self.assertEqual((cold["MetricName"], cold["Statistic"], cold["Threshold"]), ("ColdStart", "Average", 0.5))
        discarded = alarms["books-test-projector-discarded-batches"]
        self.assertEqual((discarded["Namespace"], discarded["MetricName"], discarded["Threshold"]),
                         ("AWS/SQS", "ApproximateNumberOfMessagesVisible", 0))
        self.assertEqual(discarded["Dimensions"], [{"Name": "QueueName", "Value": "books-test-projector-failures"}])
        failures = alarms["books-test-projection-failures"]
        self.assertEqual((failures["MetricName"], failures["Statistic"], failures["Dimensions"]),
                         ("ProjectionFailures", "Sum", [{"Name": "Service", "Value": "projector"}]))
        silence = alarms["books-test-query-telemetry-silence"]
        queries = {q["Id"]: q for q in silence["Metrics"]}
        self.assertEqual(queries["share"]["Expression"], "(FILL(reported, 0) + 2) / invocations")
        self.assertEqual(queries["invocations"]["MetricStat"]["Metric"]["Dimensions"],
                         [{"Name": "FunctionName", "Value": "books-test-query"}])
        self.assertEqual((silence["ComparisonOperator"], silence["Threshold"]), ("LessThanThreshold", 0.5))
        self.assertEqual({q["MetricStat"]["Period"] for q in silence["Metrics"] if "MetricStat" in q}, {300},
                         "five-minute periods unless telemetry_silence_period_s says otherwise")
        self.assertEqual((silence["EvaluationPeriods"], silence["DatapointsToAlarm"]), (2, 2))
        rate = alarms["books-test-conflict-rate"]
        queried = {q["Id"]: q for q in rate["Metrics"]}
        self.assertEqual(queried["rate"]["Expression"], "conflicts / (conflicts + replaced + deleted)")
        self.assertEqual(queried["conflicts"]["MetricStat"]["Metric"]["MetricName"], "ConcurrencyConflicts")

    def test_the_service_dashboard_is_rendered_with_this_deployment(self):
        self.assertEqual(self.outputs["dashboards"], {"service": "books-test-service"})
        body = json.loads(self.cloudwatch.get_dashboard(DashboardName="books-test-service")["DashboardBody"])
        text = json.dumps(body)
        self.assertNotIn("${", text, "every template placeholder is filled")
        metrics = [row for w in body["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]]
        self.assertTrue(all(row[0] in ("Books", "AWS/ApiGateway", "AWS/SQS") for row in metrics))
        self.assertIn(["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "books-test-projector-failures"],
                      [r[:4] for r in metrics])
        self.assertIn(["AWS/ApiGateway", "5XXError", "ApiName", "books-test-api", "Stage", "v1"], [r[:6] for r in metrics])
        queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
        self.assertTrue(queries and all(f"SOURCE '/books/test/{role}'" in q for q in queries for role in HANDLERS))


class WithoutPlatformLogs(unittest.TestCase):
    """The same deployment re-applied with keep_platform_logs = false (the default)."""

    outputs = {}

    def test_no_aws_lambda_log_group_exists_and_no_role_may_write_to_one(self):
        self.assertEqual(self.outputs["platform_log_groups"], {})
        logs, lambda_, iam = client("logs"), client("lambda"), client("iam")
        groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]]
        self.assertEqual(groups, [])
        for role, name in self.outputs["function_names"].items():
            role_name = lambda_.get_function(FunctionName=name)["Configuration"]["Role"].split("/")[-1]
            policy_name = iam.list_role_policies(RoleName=role_name)["PolicyNames"][0]
            document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            sids = {s["Sid"] for s in document["Statement"]}
            self.assertNotIn("PlatformLogs", sids, role)
            resources = [r for s in document["Statement"] for r in as_list(s["Resource"])]
            self.assertEqual([r for r in resources if "/aws/lambda/" in r], [], role)
            logs_resources = {r for s in document["Statement"] for r in as_list(s["Resource"])
                              if any(a.startswith("logs:") for a in as_list(s["Action"]))}
            self.assertEqual(len(logs_resources), 1, role)
            self.assertIn(f":log-group:{self.outputs['log_groups'][role]}:*", logs_resources.pop())


# The perimeter variables (null by default), set: a source allow-list, a WAF web ACL (made here
# first, as an account would have it), a custom domain under TLS 1.2.
ALLOWED_SOURCES = ["203.0.113.0/24", "198.51.100.7/32"]
DOMAIN = "api.books.example"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f6a1c2e-1111-4222-8333-944455556666"


# Clients in tiers: the default tier as before, a partner tier of its own, and a partner client
# in the middle of a key rotation (two generations, both valid).
PARTNER_TIER = {"throttle": {"rate_limit": 3, "burst_limit": 6}, "quota": {"limit": 777, "period": "MONTH"}}
TIERS = {"default": {"throttle": {"rate_limit": THROTTLE["rateLimit"], "burst_limit": THROTTLE["burstLimit"]},
                     "quota": {"limit": QUOTA["limit"], "period": QUOTA["period"]}},
         "partner": PARTNER_TIER}
CLIENTS = {"default": {"tier": "default", "keys": ["1"]}, "acme": {"tier": "partner", "keys": ["2026-11", "2026-12"]}}


class WithAPerimeter(NoKeyInTheEnvironmentsState, unittest.TestCase):
    """The same deployment re-applied with allowed_source_cidrs, web_acl_arn and custom_domain,
    with API clients in two tiers, and with the cursor key's second generation."""

    outputs = {}
    keys = {}
    web_acl_arn = None
    deployment_before = None
    key_before = None

    def setUp(self):
        self.apigw = client("apigateway")
        self.api = self.outputs["rest_api_id"]

    def test_a_resource_policy_denies_every_other_source_and_is_deployed(self):
        policy = json.loads(self.apigw.get_rest_api(restApiId=self.api)["policy"].replace('\\"', '"'))
        denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
        self.assertEqual(len(denies), 1, policy)
        self.assertEqual(as_list(denies[0]["Action"]), ["execute-api:Invoke"])
        self.assertEqual(sorted(as_list(denies[0]["Condition"]["NotIpAddress"]["aws:SourceIp"])), sorted(ALLOWED_SOURCES))
        # API Gateway applies a resource policy with the next deployment: the stage runs a new one.
        stage = self.apigw.get_stage(restApiId=self.api, stageName="v1")
        self.assertNotEqual(stage["deploymentId"], self.deployment_before, "the stage was redeployed with the policy")

    def test_a_new_cursor_key_generation_rotates_the_key_and_keeps_the_previous_one(self):
        arn = client("lambda").get_function_configuration(
            FunctionName=self.outputs["function_names"]["query"])["Environment"]["Variables"]["BOOKS_CURSOR_KEY_SECRET"]
        secrets = client("secretsmanager")
        current = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        previous = secrets.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["SecretString"]
        self.assertEqual(previous, CURSOR_KEY[0], "the first generation verifies during the rotation")
        self.assertNotEqual(current, previous)
        self.assertRegex(current, r"^[A-Za-z0-9]{64}$")
        CURSOR_KEY.append(current)
        with open(STATE) as f:
            self.assertNotIn(current, f.read(), "the state keeps the cursor key")

    def test_the_web_acl_guards_the_stage(self):
        stage_arn = f"arn:aws:apigateway:{client('apigateway').meta.region_name}::/restapis/{self.api}/stages/v1"
        acl = client("wafv2").get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]
        self.assertEqual(acl["ARN"], self.web_acl_arn)

    def test_the_custom_domain_serves_the_stage_under_tls_1_2_and_is_the_only_way_in(self):
        domain = self.apigw.get_domain_name(domainName=DOMAIN)
        self.assertEqual(domain["securityPolicy"], "TLS_1_2")
        self.assertEqual(domain["regionalCertificateArn"], CERTIFICATE)
        mappings = self.apigw.get_base_path_mappings(domainName=DOMAIN)["items"]
        self.assertEqual([(m["basePath"], m["restApiId"], m["stage"]) for m in mappings], [("v1", self.api, "v1")])
        self.assertTrue(self.apigw.get_rest_api(restApiId=self.api)["disableExecuteApiEndpoint"])
        self.assertEqual(self.outputs["invoke_url"], f"https://{DOMAIN}/v1")
        self.assertEqual(self.outputs["custom_domain_target"], domain["regionalDomainName"])


    def test_each_client_s_keys_sit_in_its_tier_s_plan_and_a_rotation_keeps_both(self):
        plans = self.outputs["usage_plan_ids"]
        self.assertEqual(set(plans), {"default", "partner"})
        partner = self.apigw.get_usage_plan(usagePlanId=plans["partner"])
        self.assertEqual(partner["name"], "books-test-api-partner")
        self.assertEqual((partner["throttle"]["rateLimit"], partner["throttle"]["burstLimit"]), (3.0, 6))
        self.assertEqual((partner["quota"]["limit"], partner["quota"]["period"]), (777, "MONTH"))
        clients = self.keys["client_keys"]
        self.assertEqual({c: v["tier"] for c, v in clients.items()}, {"default": "default", "acme": "partner"})
        self.assertEqual([k["generation"] for k in clients["acme"]["keys"]], ["2026-11", "2026-12"])
        for tier, client in (("partner", "acme"), ("default", "default")):
            in_plan = {k["id"] for k in self.apigw.get_usage_plan_keys(usagePlanId=plans[tier])["items"]}
            self.assertEqual(in_plan, {k["id"] for k in clients[client]["keys"]}, tier)
            for key in clients[client]["keys"]:
                self.assertTrue(self.apigw.get_api_key(apiKey=key["id"])["enabled"])
        # The default key is the one the deployment had before: its value did not change.
        self.assertEqual(self.keys["api_key_id"], self.key_before)
        self.assertEqual(set(self.keys["client_key_values"]), {"default", "acme"})
        self.assertEqual(self.keys["client_key_values"]["default"], self.keys["api_key_value"])
        acme_newest = clients["acme"]["keys"][-1]["id"]
        self.assertEqual(self.apigw.get_api_key(apiKey=acme_newest, includeValue=True)["value"],
                         self.keys["client_key_values"]["acme"])
        self.assertEqual(self.apigw.get_api_key(apiKey=acme_newest)["name"], "books-test-api-acme-2026-12")


def nothing_left():
    """After destroy: no table, function, API, role or repository of the deployment remains."""
    leftovers = {
        "tables": [t for t in client("dynamodb").list_tables()["TableNames"] if t.startswith("books-test-")],
        "functions": [f["FunctionName"] for f in client("lambda").list_functions()["Functions"]],
        "apis": [a["name"] for a in client("apigateway").get_rest_apis()["items"]],
        "roles": [r["RoleName"] for r in client("iam").list_roles()["Roles"] if r["RoleName"].startswith("books-test-")],
        "repositories": [r["repositoryName"] for r in client("ecr").describe_repositories()["repositories"]],
        "alarms": [a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]],
        "log groups": [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]],
        "secrets": [s["Name"] for s in client("secretsmanager").list_secrets()["SecretList"]],
        "api keys": [k["name"] for k in client("apigateway").get_api_keys()["items"]],
        "usage plans": [p["name"] for p in client("apigateway").get_usage_plans()["items"]],
    }
    return {kind: names for kind, names in leftovers.items() if names}


def apply_and_replan(*extra, keys=False, state=STATE, plan_file=PLAN):
    """Apply, then re-plan (saved to plan_file) expecting no changes; the outputs, sensitive ones
    included (the tests never print them)."""
    terraform("apply", "-auto-approve", "-no-color", f"-state={state}", *extra, keys=keys)
    print(f"==> plan{' (keys)' if keys else ''} (expecting no changes)", flush=True)
    plan = terraform("plan", "-detailed-exitcode", "-no-color", f"-state={state}", f"-out={plan_file}", *extra,
                     check=False, keys=keys)
    if plan.returncode != 0:
        sys.stderr.write(plan.stdout[-20000:] + plan.stderr[-5000:])
        raise SystemExit(f"re-plan after apply is not empty (exit {plan.returncode})")
    raw = terraform("output", "-json", f"-state={state}", keys=keys).stdout
    return {k: v["value"] for k, v in json.loads(raw).items()}


def apply_both(main_extra=(), keys_extra=()):
    """The environment's root module, then the keys root with its usage plans: the outputs of
    each."""
    outputs = apply_and_replan(*VARS, *main_extra)
    USAGE_PLANS.clear()
    USAGE_PLANS.update(outputs["usage_plan_ids"])
    print("==> apply the keys root with the environment's usage plans", flush=True)
    keys = apply_keys(*keys_extra)
    return outputs, keys


def apply_keys(*extra):
    keys = apply_and_replan(*KEYS_VARS, "-var", f"usage_plans={json.dumps(USAGE_PLANS)}", *extra,
                            keys=True, state=KEYS_STATE, plan_file=PLAN + ".keys")
    API_KEYS.add(keys["api_key_value"])
    API_KEYS.update(keys["client_key_values"].values())
    return keys


def run_checks(case, outputs, keys=None):
    print(f"==> checks through the AWS API: {case.__name__}", flush=True)
    case.outputs = outputs
    case.keys = keys or {}
    result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    if not result.wasSuccessful():
        raise SystemExit(f"{case.__name__} checks failed")


def destroy_both():
    """The keys first (they sit in the environment's usage plans), then the environment; both are
    attempted whatever the first one's fate."""
    try:
        if USAGE_PLANS:
            print("==> destroy the keys root", flush=True)
            terraform("destroy", "-auto-approve", "-no-color", f"-state={KEYS_STATE}", *KEYS_VARS,
                      "-var", f"usage_plans={json.dumps(USAGE_PLANS)}", keys=True)
    finally:
        print("==> destroy", flush=True)
        terraform("destroy", "-auto-approve", "-no-color", f"-state={STATE}", *VARS)


def main():
    try:
        print("==> apply (tests/local.tfvars: the local cloud's settings, platform log copies kept)", flush=True)
        run_checks(Footprint, *apply_both())
        print("==> apply again with keep_platform_logs = false (the default)", flush=True)
        without, keys = apply_both(("-var", "keep_platform_logs=false"))
        run_checks(WithoutPlatformLogs, without, keys)
        WithAPerimeter.deployment_before = client("apigateway").get_stage(
            restApiId=without["rest_api_id"], stageName="v1")["deploymentId"]
        WithAPerimeter.key_before = keys["api_key_id"]
        print("==> apply again with the perimeter variables set (a WAF web ACL made first)", flush=True)
        WithAPerimeter.web_acl_arn = client("wafv2").create_web_acl(
            Name="books-test-acl", Scope="REGIONAL", DefaultAction={"Allow": {}},
            VisibilityConfig={"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False,
                              "MetricName": "books-test-acl"})["Summary"]["ARN"]
        run_checks(WithAPerimeter, *apply_both((
            "-var", "keep_platform_logs=false",
            "-var", f"allowed_source_cidrs={json.dumps(ALLOWED_SOURCES)}",
            "-var", f"web_acl_arn={WithAPerimeter.web_acl_arn}",
            "-var", f'custom_domain={{name="{DOMAIN}",certificate_arn="{CERTIFICATE}"}}',
            "-var", f"api_tiers={json.dumps(TIERS)}",
            "-var", "cursor_key_generation=2"),
            ("-var", f"api_clients={json.dumps(CLIENTS)}")))
    finally:
        destroy_both()
        for plan in (PLAN, PLAN + ".keys"):  # the keys root's holds the keys' values
            if os.path.exists(plan):
                os.remove(plan)
    for key in CURSOR_KEY:
        for number, text in enumerate(PRINTED):
            where = [line.replace(key, "<the key>") for line in text.splitlines() if key in line]
            if where:  # the lines, never the value itself
                raise SystemExit(f"terraform run {number} printed a cursor key: {where[:3]}")
    left = nothing_left()
    if left:
        raise SystemExit(f"destroy left resources behind: {left}")
    print("==> destroy left nothing behind", flush=True)


if __name__ == "__main__":
    main()
