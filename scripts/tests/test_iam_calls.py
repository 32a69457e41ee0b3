"""terraform/tests/iam_calls.py: recorded calls of each protocol mapped to their operation, IAM
actions and resources; IAM's evaluation of one identity's policies; and, end to end, the endpoint
recording the calls of a role it handed out (behaviour 17) and the check flagging exactly those
the role's policy does not allow, and the grant no call needed."""

import io
import json
import os
import pathlib
import sys
import tempfile
import time
import unittest
import unittest.mock
import uuid
from contextlib import redirect_stdout

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "terraform" / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

import boto3  # noqa: E402

import iam_calls  # noqa: E402
from local_endpoint import call_recorder  # noqa: E402
from support import serve_endpoint  # noqa: E402

ACCOUNT, REGION = "123456789012", "eu-west-1"
ARN = f"arn:aws:{{}}:{REGION}:{ACCOUNT}"


def recorded(service, method="POST", path="/", query="", target=None, body=None, content_type="", **more):
    """A call as the endpoint records it, signed by an assumed role."""
    return {"time": "2025-01-01T00:00:00.000+00:00",
            "caller": {"access_key_id": "ASIAEXAMPLE", "service": service, "region": REGION,
                       "role_arn": f"arn:aws:iam::{ACCOUNT}:role/reader", "session_arn": None},
            "method": method, "host": "127.0.0.1:5000", "path": path, "query": query, "target": target,
            "amz_headers": [], "content_type": content_type, "body": body, "status": 200, **more}


def mapped(call):
    operation = iam_calls.operation_of(call)
    actions = iam_calls.actions_of(*operation, call)
    return operation, actions.required, iam_calls.resource_of(*operation, call, ACCOUNT, REGION)


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


class Protocols(unittest.TestCase):
    def test_a_json_call_is_its_target(self):
        call = recorded("dynamodb", target="DynamoDB_20120810.DescribeTable", body='{"TableName": "books-dev-books"}',
                        content_type="application/x-amz-json-1.0")
        self.assertEqual(mapped(call), (("dynamodb", "DescribeTable"), ("dynamodb:DescribeTable",),
                                        [ARN.format("dynamodb") + ":table/books-dev-books"]))

    def test_a_dynamodb_stream_read_is_a_dynamodb_action(self):
        call = recorded("dynamodb", target="DynamoDBStreams_20120810.DescribeStream", content_type="application/x-amz-json-1.0",
                        body=json.dumps({"StreamArn": ARN.format("dynamodb") + ":table/t/stream/1"}))
        self.assertEqual(mapped(call)[:2], (("dynamodb", "DescribeStream"), ("dynamodb:DescribeStream",)))

    def test_a_query_call_is_its_action(self):
        call = recorded("monitoring", content_type="application/x-www-form-urlencoded",
                        body="Action=DeleteAlarms&Version=2010-08-01&AlarmNames.member.1=a1&AlarmNames.member.2=a2")
        self.assertEqual(mapped(call), (("cloudwatch", "DeleteAlarms"), ("cloudwatch:DeleteAlarms",),
                                        [ARN.format("cloudwatch") + ":alarm:a1", ARN.format("cloudwatch") + ":alarm:a2"]))

    def test_a_lambda_rest_call_is_its_method_and_path(self):
        arn = ARN.format("lambda") + ":function:books-dev-api"
        call = recorded("lambda", method="GET", path="/2015-03-31/functions/" + arn.replace(":", "%3A") + "/configuration")
        self.assertEqual(mapped(call), (("lambda", "GetFunctionConfiguration"), ("lambda:GetFunctionConfiguration",), [arn]))
        invoke = recorded("lambda", path="/2015-03-31/functions/books-dev-api/invocations")
        self.assertEqual(mapped(invoke), (("lambda", "Invoke"), ("lambda:InvokeFunction",), [arn]))

    def test_creating_a_function_passes_its_role(self):
        call = recorded("lambda", path="/2015-03-31/functions", content_type="application/json",
                        body=json.dumps({"FunctionName": "f", "Role": f"arn:aws:iam::{ACCOUNT}:role/books-dev-f"}))
        actions = iam_calls.actions_of("lambda", "CreateFunction", call)
        self.assertEqual((actions.required, actions.dependent), (("lambda:CreateFunction",), ("iam:PassRole",)))
        self.assertEqual(iam_calls.passed_role("lambda", "CreateFunction", call, actions), f"arn:aws:iam::{ACCOUNT}:role/books-dev-f")

    def test_an_api_gateway_call_is_its_verb_on_its_path(self):
        call = recorded("apigateway", method="GET", path="/restapis/a1b2/resources/c3/methods/GET")
        self.assertEqual(mapped(call), (("apigateway", "GetMethod"), ("apigateway:GET",),
                                        [f"arn:aws:apigateway:{REGION}::/restapis/a1b2/resources/c3/methods/GET"]))

    def test_creating_an_api_with_a_resource_policy_also_needs_update_rest_api_policy(self):
        call = recorded("apigateway", path="/restapis", content_type="application/json",
                        body=json.dumps({"name": "books", "policy": "{}", "tags": {"Environment": "dev"}}))
        self.assertEqual(mapped(call)[1], ("apigateway:POST", "apigateway:UpdateRestApiPolicy"))
        context = iam_calls.context_of("apigateway", "CreateRestApi", call, ACCOUNT, REGION)
        self.assertEqual((context["aws:TagKeys"], context["aws:RequestTag/Environment"]), (["Environment"], "dev"))

    def test_associating_a_web_acl_needs_the_stage_s_setter_on_the_stage_alone(self):
        acl = ARN.format("wafv2") + ":regional/webacl/edge/1a2b"
        stage = f"arn:aws:apigateway:{REGION}::/restapis/a1b2/stages/v1"
        call = recorded("wafv2", target="AWSWAF_20190729.AssociateWebACL", content_type="application/x-amz-json-1.1",
                        body=json.dumps({"WebACLArn": acl, "ResourceArn": stage}))
        self.assertEqual(mapped(call), (("wafv2", "AssociateWebACL"), ("wafv2:AssociateWebACL",), [acl, stage]))
        waf_only = policy({"Effect": "Allow", "Action": "wafv2:AssociateWebACL", "Resource": [acl, stage]})
        checked, failures = iam_calls._checked(call, "deploy", [waf_only], ACCOUNT, REGION, None)
        self.assertEqual(failures, [f"role deploy must be granted apigateway:SetWebACL on {stage} "
                                    "for WAFV2.AssociateWebACL"])
        setter_on_stages = policy({"Effect": "Allow", "Action": "apigateway:SetWebACL",
                                   "Resource": f"arn:aws:apigateway:{REGION}::/restapis/*/stages/*"})
        checked, failures = iam_calls._checked(call, "deploy", [waf_only, setter_on_stages], ACCOUNT, REGION, None)
        self.assertEqual((failures, checked.decision), ([], "Allow"))
        self.assertIn("apigateway:SetWebACL", checked.actions)

    def test_an_s3_path_style_call_with_a_subresource(self):
        call = recorded("s3", method="GET", path="/state", query="publicAccessBlock")
        self.assertEqual(mapped(call), (("s3", "GetPublicAccessBlock"), ("s3:GetBucketPublicAccessBlock",),
                                        ["arn:aws:s3:::state"]))
        listing = recorded("s3", method="GET", path="/state", query="list-type=2&prefix=books%2Fdev%2F")
        self.assertEqual(mapped(listing)[:2], (("s3", "ListObjectsV2"), ("s3:ListBucket",)))
        self.assertEqual(iam_calls.context_of("s3", "ListObjectsV2", listing, ACCOUNT, REGION)["s3:prefix"], "books/dev/")

    def test_s3_objects_by_their_key(self):
        head = recorded("s3", method="HEAD", path="/state/books/dev/terraform.tfstate")
        self.assertEqual(mapped(head), (("s3", "HeadObject"), ("s3:GetObject",), ["arn:aws:s3:::state/books/dev/terraform.tfstate"]))
        part = recorded("s3", method="PUT", path="/state/k", query="partNumber=1&uploadId=u")
        self.assertEqual(mapped(part)[:2], (("s3", "UploadPart"), ("s3:PutObject",)))
        hosted = recorded("s3", method="GET", path="/", query="encryption", host="state.localhost:5000")
        self.assertEqual(mapped(hosted), (("s3", "GetBucketEncryption"), ("s3:GetEncryptionConfiguration",), ["arn:aws:s3:::state"]))

    def test_a_create_that_carries_tags_also_needs_the_tagging_action(self):
        """Tag on create: a log group created with tags needs logs:TagResource too."""
        call = recorded("logs", target="Logs_20140328.CreateLogGroup", content_type="application/x-amz-json-1.1",
                        body=json.dumps({"logGroupName": "/books/dev/query", "tags": {"Environment": "dev"}}))
        self.assertEqual(mapped(call)[1], ("logs:CreateLogGroup", "logs:TagResource"))
        untagged = recorded("logs", target="Logs_20140328.CreateLogGroup", content_type="application/x-amz-json-1.1",
                            body=json.dumps({"logGroupName": "/books/dev/query"}))
        self.assertEqual(mapped(untagged)[1], ("logs:CreateLogGroup",))

    def test_get_caller_identity_needs_no_permission(self):
        call = recorded("sts", content_type="application/x-www-form-urlencoded", body="Action=GetCallerIdentity&Version=2011-06-15")
        self.assertEqual(mapped(call), (("sts", "GetCallerIdentity"), (), None))

    def test_every_exception_is_an_action_of_the_reference(self):
        named = [a for actions in iam_calls.EXCEPTIONS.values() for a in actions]
        named += list(iam_calls.S3_VERSIONED.values()) + list(iam_calls.TRANSACTION_ITEMS.values())
        self.assertEqual([a for a in named if iam_calls.sar_action(*a.split(":")) != a], [])


class Evaluation(unittest.TestCase):
    TABLE = ARN.format("dynamodb") + ":table/books-dev-books"

    def test_an_explicit_deny_wins(self):
        document = policy({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
                          {"Sid": "No", "Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": self.TABLE})
        self.assertEqual(iam_calls.allowed(document, "dynamodb:DeleteTable", self.TABLE, {}).decision, "Deny")
        self.assertEqual(iam_calls.allowed(document, "dynamodb:DescribeTable", self.TABLE, {}).decision, "Allow")

    def test_actions_match_without_case_and_resources_with_it(self):
        document = policy({"Effect": "Allow", "Action": "DynamoDB:describe*", "Resource": ARN.format("dynamodb") + ":table/books-???-*"})
        self.assertEqual(iam_calls.allowed(document, "dynamodb:DescribeTable", self.TABLE, {}).decision, "Allow")
        self.assertEqual(iam_calls.allowed(document, "dynamodb:DescribeTable", self.TABLE.upper(), {}).decision, "ImplicitDeny")
        self.assertEqual(iam_calls.allowed(document, "dynamodb:DescribeTable", self.TABLE.replace("dev", "prod"), {}).decision,
                         "ImplicitDeny")

    def test_not_action_and_not_resource(self):
        document = policy({"Effect": "Allow", "NotAction": "dynamodb:Delete*", "NotResource": ARN.format("dynamodb") + ":table/secret"})
        self.assertEqual(iam_calls.allowed(document, "dynamodb:PutItem", self.TABLE, {}).decision, "Allow")
        self.assertEqual(iam_calls.allowed(document, "dynamodb:DeleteItem", self.TABLE, {}).decision, "ImplicitDeny")
        self.assertEqual(iam_calls.allowed(document, "dynamodb:PutItem", ARN.format("dynamodb") + ":table/secret", {}).decision,
                         "ImplicitDeny")

    def test_an_action_without_resource_types_is_granted_only_on_star(self):
        self.assertTrue(iam_calls.unscoped("ecr:GetAuthorizationToken"))
        scoped = policy({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": ARN.format("ecr") + ":repository/*"})
        self.assertEqual(iam_calls.allowed(scoped, "ecr:GetAuthorizationToken", "*", {}).decision, "ImplicitDeny")

    def test_string_conditions(self):
        state = policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::state",
                        "Condition": {"StringLike": {"s3:prefix": "books/dev/*"}}})
        self.assertEqual(iam_calls.allowed(state, "s3:ListBucket", "arn:aws:s3:::state", {"s3:prefix": "books/dev/x"}).decision, "Allow")
        self.assertEqual(iam_calls.allowed(state, "s3:ListBucket", "arn:aws:s3:::state", {"s3:prefix": "books/prod/"}).decision,
                         "ImplicitDeny")
        unmet = iam_calls.allowed(state, "s3:ListBucket", "arn:aws:s3:::state", {"s3:prefix": None})
        self.assertEqual((unmet.decision, [keys for _, keys in unmet.unmet]), ("ImplicitDeny", [("s3:prefix",)]))
        bounded = policy({"Effect": "Allow", "Action": "iam:CreateRole", "Resource": "*",
                          "Condition": {"StringEquals": {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/b"}}})
        self.assertEqual(iam_calls.allowed(bounded, "iam:CreateRole", "r", {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/b"}).decision,
                         "Allow")
        self.assertEqual(iam_calls.allowed(bounded, "iam:CreateRole", "r", {"iam:PermissionsBoundary": None}).decision, "ImplicitDeny")

    def test_a_negated_operator_on_an_absent_key_holds(self):
        # The boundary's deny of every call not made by one of the environment's functions.
        boundary = policy({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                          {"Effect": "Deny", "NotAction": ["sqs:SendMessage"], "Resource": "*",
                           "Condition": {"ArnNotLike": {"lambda:SourceFunctionArn": ARN.format("lambda") + ":function:books-dev-*"}}})
        absent = {"lambda:SourceFunctionArn": None}
        self.assertEqual(iam_calls.allowed(boundary, "sqs:DeleteQueue", "q", absent).decision, "Deny")
        self.assertEqual(iam_calls.allowed(boundary, "sqs:SendMessage", "q", absent).decision, "Allow")
        ours = {"lambda:SourceFunctionArn": ARN.format("lambda") + ":function:books-dev-api"}
        self.assertEqual(iam_calls.allowed(boundary, "sqs:DeleteQueue", "q", ours).decision, "Allow")
        theirs = {"lambda:SourceFunctionArn": ARN.format("lambda") + ":function:books-prod-api"}
        self.assertEqual(iam_calls.allowed(boundary, "sqs:DeleteQueue", "q", theirs).decision, "Deny")

    def test_for_any_value_on_the_tag_keys(self):
        # ci.tf's NoEnvironmentRetagging, against API Gateway untag calls.
        document = policy({"Effect": "Allow", "Action": "apigateway:DELETE", "Resource": f"arn:aws:apigateway:{REGION}::/tags/*"},
                          {"Effect": "Deny", "Action": "apigateway:DELETE", "Resource": f"arn:aws:apigateway:{REGION}::/tags/*",
                           "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["Environment"]}}})
        resource = f"arn:aws:apigateway:{REGION}::/tags/arn%3Aaws%3Aapigateway%3A{REGION}%3A%3A%2Frestapis%2Fa1"
        for keys, decision in ((["Owner", "Environment"], "Deny"), (["Owner"], "Allow"), (None, "Allow")):
            self.assertEqual(iam_calls.allowed(document, "apigateway:DELETE", resource, {"aws:TagKeys": keys}).decision, decision, keys)
        call = recorded("apigateway", method="DELETE", path=resource.split("::")[1], query="tagKeys=Environment")
        context = iam_calls.context_of("apigateway", "UntagResource", call, ACCOUNT, REGION)
        self.assertEqual(iam_calls.allowed(document, "apigateway:DELETE", resource, context).decision, "Deny")

    def test_arn_like_and_bool(self):
        document = policy({"Effect": "Allow", "Action": "lambda:GetEventSourceMapping", "Resource": "*",
                           "Condition": {"ArnLike": {"lambda:FunctionArn": ARN.format("lambda") + ":function:books-dev-*"},
                                         "Bool": {"aws:SecureTransport": "true"}}})
        function = ARN.format("lambda") + ":function:books-dev-api"
        self.assertEqual(iam_calls.allowed(document, "lambda:GetEventSourceMapping", "m",
                                           {"lambda:FunctionArn": function, "aws:SecureTransport": True}).decision, "Allow")
        self.assertEqual(iam_calls.allowed(document, "lambda:GetEventSourceMapping", "m",
                                           {"lambda:FunctionArn": function, "aws:SecureTransport": False}).decision, "ImplicitDeny")
        self.assertEqual(iam_calls.allowed(document, "lambda:GetEventSourceMapping", "m",
                                           {"lambda:FunctionArn": function.replace(REGION, "us-east-1"),
                                            "aws:SecureTransport": True}).decision, "ImplicitDeny")

    def test_an_unknown_key_is_reported_not_failed(self):
        document = policy({"Effect": "Allow", "Action": "apigateway:GET", "Resource": "*",
                           "Condition": {"StringEquals": {"aws:ResourceTag/Environment": "dev"}}},
                          {"Effect": "Deny", "Action": "apigateway:GET", "Resource": "*",
                           "Condition": {"StringEquals": {"aws:PrincipalTag/Team": "other"}}})
        verdict = iam_calls.allowed(document, "apigateway:GET", "arn:aws:apigateway:eu-west-1::/restapis/a1", {})
        self.assertEqual((verdict.decision, verdict.unknown), ("Allow", ("aws:PrincipalTag/Team", "aws:ResourceTag/Environment")))
        unnamed = iam_calls.allowed(policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}),
                                    "s3:GetObject", None, {})
        self.assertEqual((unnamed.decision, unnamed.unknown), ("Allow", ("Resource",)))


class Recording(unittest.TestCase):
    def test_the_caller_of_a_presigned_url(self):
        query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20250101%2Feu-west-1%2Fs3%2Faws4_request"
        caller = call_recorder._caller("", query)
        self.assertEqual((caller["access_key_id"], caller["service"], caller["region"], caller["role_arn"]),
                         ("AKIDEXAMPLE", "s3", "eu-west-1", None))
        self.assertIsNone(call_recorder._caller("", ""))

    def test_secrets_are_not_recorded(self):
        recorder = call_recorder.CallRecorder(None, None)
        self.assertEqual(json.loads(recorder._redacted('{"SecretId": "k", "SecretString": "s3cr3t"}')),
                         {"SecretId": "k", "SecretString": "<redacted>"})
        self.assertIsNone(recorder._redacted("Action=PutSecretValue&SecretString=s3cr3t"))

    def test_a_recording_started_and_stopped_while_the_endpoint_runs_holds_that_window_only(self):
        import urllib.request
        url = serve_endpoint(self.addCleanup)
        calls_file = pathlib.Path(tempfile.mkdtemp()) / "window.jsonl"
        self.addCleanup(calls_file.unlink, missing_ok=True)

        def control(method, document=None):
            data = None if document is None else json.dumps(document).encode()
            with urllib.request.urlopen(urllib.request.Request(f"{url}/_books/calls", data=data, method=method)) as answer:
                return json.load(answer)

        logs = boto3.client("logs", region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                            aws_secret_access_key="testing")
        logs.create_log_group(logGroupName="before")
        self.assertEqual(control("PUT", {"file": str(calls_file)}), {"file": str(calls_file)})
        logs.create_log_group(logGroupName="during")
        self.assertEqual(control("DELETE"), {"file": None})
        logs.create_log_group(logGroupName="after")
        calls = [json.loads(line) for line in calls_file.read_text().splitlines()]
        self.assertEqual([json.loads(call["body"])["logGroupName"] for call in calls], ["during"])
        self.assertEqual(calls[0]["target"], "Logs_20140328.CreateLogGroup")
        with self.assertRaises(urllib.error.HTTPError) as refused:
            control("PUT", {"file": "/nonexistent/dir/calls.jsonl"})
        self.assertEqual(refused.exception.code, 400)
        # A window may keep bodies past the default 64 KiB (whole PutLogEvents batches), and only it.
        big = "x" * (100 * 1024)
        logs.create_log_stream(logGroupName="during", logStreamName="s")
        events = [{"timestamp": int(time.time() * 1000), "message": big}]
        control("PUT", {"file": str(calls_file), "body_limit": 1024 * 1024})
        logs.put_log_events(logGroupName="during", logStreamName="s", logEvents=events)
        control("DELETE")
        control("PUT", {"file": str(calls_file)})
        logs.put_log_events(logGroupName="during", logStreamName="s", logEvents=events)
        control("DELETE")
        puts = [json.loads(line) for line in calls_file.read_text().splitlines()][1:]
        self.assertEqual([big in (call["body"] or "") for call in puts], [True, False])


class EndToEnd(unittest.TestCase):
    """The endpoint records the calls made under a role it handed out; the check flags exactly the
    two the role's policy does not allow, and the grant no call needed."""

    def test_calls_outside_the_policy_are_flagged_with_their_action_and_resource(self):
        calls_file = pathlib.Path(tempfile.mkdtemp()) / "calls.jsonl"
        self.addCleanup(calls_file.unlink, missing_ok=True)
        url = serve_endpoint(self.addCleanup, {"BOOKS_RECORD_CALLS": str(calls_file)})
        admin = dict(region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing")
        suffix = uuid.uuid4().hex[:8]
        allowed_table, other_table, role = f"books-{suffix}-a", f"books-{suffix}-b", f"iam-calls-{suffix}"
        dynamodb = boto3.client("dynamodb", **admin)
        for table in (allowed_table, other_table):
            dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                  KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                  AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        table_arn = f"{ARN.format('dynamodb')}:table/{allowed_table}"
        iam = boto3.client("iam", **admin)
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(policy(
            {"Effect": "Allow", "Principal": {"Federated": "token.actions.githubusercontent.com"},
             "Action": "sts:AssumeRoleWithWebIdentity"})))
        iam.put_role_policy(RoleName=role, PolicyName="reader", PolicyDocument=json.dumps(policy(
            {"Sid": "Describe", "Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": table_arn},
            {"Sid": "NeverCalled", "Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": table_arn})))
        credentials = boto3.client("sts", **admin).assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="ci", WebIdentityToken="a-token")["Credentials"]
        as_role = boto3.client("dynamodb", region_name=REGION, endpoint_url=url,
                               aws_access_key_id=credentials["AccessKeyId"],
                               aws_secret_access_key=credentials["SecretAccessKey"],
                               aws_session_token=credentials["SessionToken"])
        as_role.describe_table(TableName=allowed_table)
        as_role.describe_table(TableName=other_table)  # moto allows it: AWS would not
        as_role.list_tables()

        calls = iam_calls.load(calls_file)
        of_role = [c for c in calls if (c["caller"] or {}).get("role_arn") == f"arn:aws:iam::{ACCOUNT}:role/{role}"]
        self.assertEqual([(c["target"], c["status"], c["caller"]["service"]) for c in of_role],
                         [("DynamoDB_20120810.DescribeTable", 200, "dynamodb")] * 2 + [("DynamoDB_20120810.ListTables", 200, "dynamodb")])
        self.assertEqual(json.loads(of_role[1]["body"]), {"TableName": other_table})

        report = iam_calls.check(calls, iam_calls.policies_of_roles(iam, role), ACCOUNT, REGION, justified={})
        self.assertEqual(report.disallowed, [
            f"role {role} must be granted dynamodb:DescribeTable on {ARN.format('dynamodb')}:table/{other_table} "
            "for DynamoDB.DescribeTable",
            f"role {role} must be granted dynamodb:ListTables on * for DynamoDB.ListTables"])
        self.assertEqual(report.unused, {role: {"dynamodb:DeleteTable": None}})
        self.assertEqual([c.decision for c in report.calls[role]], ["Allow", "ImplicitDeny", "ImplicitDeny"])

        justified = calls_file.with_name("justified.yml")
        justified.write_text(f"{role}:\n  dynamodb:DeleteTable: the test's grant no call needs\n"
                             f"  dynamodb:UpdateTable: granted by nothing\n"
                             f"  dynamodb:DescribeTable: needed after all\n")
        out = io.StringIO()
        with unittest.mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                                                   "AWS_SECRET_ACCESS_KEY": "testing"}), redirect_stdout(out):
            status = iam_calls.main(["--calls", str(calls_file), "--account", ACCOUNT, "--region", REGION,
                                     "--roles", role, "--justified", str(justified)])
        self.assertEqual(status, 1)
        self.assertIn(f"{role}: dynamodb:UpdateTable (no longer granted)", out.getvalue())  # stale
        self.assertIn(f"{role}: dynamodb:DescribeTable (a recorded call needs it", out.getvalue())
        self.assertIn("dynamodb:DeleteTable (the test's grant no call needs)", out.getvalue())

    def test_a_refusal_the_caller_expects_is_listed_not_failed(self):
        role = "github-plan-books-dev-eu-west-1"
        call = recorded("iam", body="Action=GetUser&Version=2010-05-08",
                        content_type="application/x-www-form-urlencoded")
        call["caller"]["role_arn"] = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        allow_nothing = [policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"})]
        flagged = iam_calls.check([call], {role: allow_nothing}, ACCOUNT, REGION, {"plan": {"s3:ListBucket": "r"}})
        self.assertTrue(any("iam:GetUser" in line for line in flagged.disallowed), flagged.disallowed)
        tolerated = iam_calls.check([call], {role: allow_nothing}, ACCOUNT, REGION,
                                    {"plan": {"s3:ListBucket": "r"}, "refused": {"iam:GetUser": "probing"}})
        self.assertEqual(tolerated.disallowed, [])
        self.assertTrue(any("iam:GetUser" in line and "probing" in line for line in tolerated.refused), tolerated.refused)

    def test_the_committed_justifications_load(self):
        self.assertEqual(set(iam_calls.load_justified()), {"plan", "deploy", "refused"})


if __name__ == "__main__":
    unittest.main()
