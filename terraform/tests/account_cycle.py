"""Apply the account-wide stack (terraform/account) with CI's roles against the local AWS endpoint
(moto), re-plan expecting no changes, read back what an attacker would look for first (who may
assume each role, and what each may do), and always destroy it again.

Run by `make test-terraform-account` inside `books-local endpoint`. Environment: TERRAFORM, TF_DATA_DIR,
TF_TEST_STATE (a state file of its own).
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.parse

import boto3

import iam_analysis

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
TERRAFORM = os.environ.get("TERRAFORM", "terraform")
TF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "account")
STATE = os.environ["TF_TEST_STATE"]
REGION = "eu-central-1"
REPOSITORY = "example-org/books"
VARS = ["-var", f"region={REGION}", "-var", f"aws_endpoint_url={ENDPOINT}", "-var", f"github_repository={REPOSITORY}"]

# Who may assume each role: exactly these OIDC subjects, nothing broader.
SUBJECTS = {
    ("dev", "plan"): {f"repo:{REPOSITORY}:environment:dev-plan"},
    ("dev", "deploy"): {f"repo:{REPOSITORY}:environment:dev", f"repo:{REPOSITORY}:ref:refs/heads/main"},
    ("staging", "plan"): {f"repo:{REPOSITORY}:environment:staging-plan"},
    ("staging", "deploy"): {f"repo:{REPOSITORY}:environment:staging"},
    ("prod", "plan"): {f"repo:{REPOSITORY}:environment:prod-plan"},
    ("prod", "deploy"): {f"repo:{REPOSITORY}:environment:prod"},
}
PROMOTED_FROM = {"dev": None, "staging": "dev", "prod": "staging"}
# The only actions AWS grants on nothing narrower than "*".
UNSCOPED = {"ecr:GetAuthorizationToken", "logs:DescribeLogGroups", "secretsmanager:GetRandomPassword",
            "sns:GetSubscriptionAttributes", "sns:Unsubscribe"}
# What a role that plans (before any review) must never be able to do.
DEPLOY_ONLY = {
    "lambda:UpdateFunctionCode", "lambda:CreateFunction", "lambda:DeleteFunction", "dynamodb:DeleteTable",
    "dynamodb:CreateTable", "iam:PassRole", "iam:PutRolePolicy", "iam:CreateRole", "ecr:DeleteRepository",
    "ecr:BatchDeleteImage", "apigateway:POST", "apigateway:DELETE", "apigateway:PATCH", "apigateway:PUT",
    "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes",
    "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret", "secretsmanager:UpdateSecretVersionStage",
    "sns:Subscribe", "sns:Unsubscribe",
}


def terraform(*args, check=True):
    started = time.monotonic()
    result = subprocess.run([TERRAFORM, f"-chdir={TF_DIR}", *args], text=True, capture_output=True)
    print(f"    terraform {args[0]}: exit {result.returncode} in {time.monotonic() - started:.1f}s", flush=True)
    if check and result.returncode not in (0, 2):
        sys.stderr.write(result.stdout[-20000:] + result.stderr[-20000:])
        raise SystemExit(f"terraform {args[0]} failed")
    return result


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION)


def as_list(value):
    return value if isinstance(value, list) else [value]


def environment_key(condition: dict, env: str) -> bool:
    """Whether a condition holds a KMS statement to the environment's own key (its Environment tag),
    used only through the services the stack encrypts with it."""
    match = condition.get("StringEquals") or {}
    services = as_list(match.get("kms:ViaService") or [])
    return list(condition) == ["StringEquals"] and match.get("aws:ResourceTag/Environment") == env and bool(services) \
        and all(re.fullmatch(rf"(dynamodb|ecr|lambda|secretsmanager)\.{REGION}\.amazonaws\.com", s) for s in services)


class CiRoles(unittest.TestCase):
    iam = client("iam")

    def role(self, env, kind):
        return self.iam.get_role(RoleName=f"github-{kind}-books-{env}-{REGION}")["Role"]

    def statements(self, env, kind):
        name = f"github-{kind}-books-{env}-{REGION}"
        policies = self.iam.list_role_policies(RoleName=name)["PolicyNames"]
        self.assertEqual(len(policies), 1, policies)
        self.assertEqual(self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"], [])
        document = self.iam.get_role_policy(RoleName=name, PolicyName=policies[0])["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(urllib.parse.unquote(document))
        return document["Statement"]

    def test_each_role_trusts_only_its_repository_and_environment(self):
        provider = [p["Arn"] for p in self.iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
        self.assertEqual(len(provider), 1)
        details = self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider[0])
        self.assertEqual(details["Url"].removeprefix("https://"), "token.actions.githubusercontent.com")
        self.assertEqual(details["ClientIDList"], ["sts.amazonaws.com"])
        for (env, kind), subjects in SUBJECTS.items():
            with self.subTest(env=env, kind=kind):
                trust = self.role(env, kind)["AssumeRolePolicyDocument"]
                if isinstance(trust, str):
                    trust = json.loads(urllib.parse.unquote(trust))
                (statement,) = trust["Statement"]
                self.assertEqual(statement["Effect"], "Allow")
                self.assertEqual(as_list(statement["Action"]), ["sts:AssumeRoleWithWebIdentity"])
                self.assertEqual(statement["Principal"], {"Federated": provider[0]})
                # Exact matches only: no StringLike, no wildcard in any subject.
                self.assertEqual(set(statement["Condition"]), {"StringEquals"})
                condition = statement["Condition"]["StringEquals"]
                self.assertEqual(as_list(condition["token.actions.githubusercontent.com:aud"]), ["sts.amazonaws.com"])
                self.assertEqual(set(as_list(condition["token.actions.githubusercontent.com:sub"])), subjects)

    def allows(self, env, kind):
        return [s for s in self.statements(env, kind) if s["Effect"] == "Allow"]

    def test_no_policy_names_a_wildcard_action_or_another_environments_resources(self):
        for (env, kind) in SUBJECTS:
            with self.subTest(env=env, kind=kind):
                source = PROMOTED_FROM[env]
                for statement in self.allows(env, kind):
                    self.assertNotIn("NotAction", statement)
                    self.assertNotIn("NotResource", statement)
                    actions = set(as_list(statement["Action"]))
                    for action in actions:
                        self.assertRegex(action, r"^[a-z0-9-]+:[A-Za-z]+$", f"wildcard action {action}")
                    for resource in as_list(statement["Resource"]):
                        if resource == "*":
                            # Actions that take no resource; CreateEventSourceMapping held to the
                            # environment's functions by the key it takes.
                            held = statement.get("Condition") == {"ArnLike": {
                                "lambda:FunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:books-{env}-*"}}
                            self.assertLessEqual(actions, UNSCOPED | ({"lambda:CreateEventSourceMapping"} if held else set()),
                                                 statement)
                            continue
                        mine = re.search(rf"books-{env}-|/books/{env}/|:apigateway:{REGION}::/", resource)
                        promoted = source and resource.endswith(f":repository/books-{source}-*")
                        # Resources without the environment's name, narrowed to it by a condition.
                        condition = statement.get("Condition", {})
                        mappings = resource.endswith(":event-source-mapping:*") and condition in (
                            {"ArnLike": {"lambda:FunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:books-{env}-*"}},
                            {"StringEquals": {"aws:ResourceTag/Environment": env}},
                            {"StringEquals": {"aws:RequestTag/Environment": env}},
                        )
                        bucket = resource == f"arn:aws:s3:::books-tfstate-123456789012-{REGION}" and condition == {
                            "StringLike": {"s3:prefix": f"books/{env}/*"}
                        }
                        # Key metadata only (the tables' AWS-managed key, read when the provider reads them).
                        keys = resource == f"arn:aws:kms:{REGION}:123456789012:key/*" and actions == {"kms:DescribeKey"}
                        # The environment's customer-managed key: by its tag, through the stack's services.
                        own_key = resource == f"arn:aws:kms:{REGION}:123456789012:key/*" and environment_key(condition, env)
                        # The account's web ACLs, which WAF checks besides the stage: whose stage it
                        # is, apigateway:SetWebACL decides, by the stage's tag (the test below).
                        web_acls = resource == f"arn:aws:wafv2:{REGION}:123456789012:regional/webacl/*/*" and actions <= {
                            "wafv2:GetWebACLForResource", "wafv2:GetWebACL", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"}
                        self.assertTrue(mine or promoted or mappings or bucket or keys or own_key or web_acls,
                                        f"{resource} is not {env}'s ({condition})")
                        if promoted:
                            self.assertFalse(actions - {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability", "ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:ListTagsForResource", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:ListImages"}, "only reads from the environment it is promoted from")

    def test_plan_roles_cannot_change_what_runs(self):
        for env in PROMOTED_FROM:
            with self.subTest(env=env):
                granted = {a for s in self.allows(env, "plan") for a in as_list(s["Action"])}
                self.assertFalse(granted & DEPLOY_ONLY, granted & DEPLOY_ONLY)
                self.assertIn("ecr:PutImage", granted)  # promotion copies images before a review
                deploy = {a for s in self.allows(env, "deploy") for a in as_list(s["Action"])}
                self.assertLessEqual(DEPLOY_ONLY, deploy)

    def test_promotion_reads_the_images_of_the_environment_before(self):
        for env, source in PROMOTED_FROM.items():
            resources = {r for s in self.statements(env, "plan") for r in as_list(s["Resource"])}
            sources = {r for r in resources if ":repository/" in r and f"books-{env}-" not in r}
            self.assertEqual(sources, {f"arn:aws:ecr:{REGION}:123456789012:repository/books-{source}-*"} if source else set())

    # --- no escalation, isolation, the boundary (issue: the pipeline cannot be turned against the
    # account). Read back as applied; moto evaluates none of it, so the statements themselves are
    # what is checked here, and the third-party analysers judge them whole.

    def test_every_policy_passes_the_third_party_analysis(self):
        policies = iam_analysis.policies_on_endpoint(self.iam, ("github-", "books-"))
        self.assertTrue(any(name.startswith("github-deploy-") for name in policies), sorted(policies))
        self.assertTrue(any("-boundary-" in name for name in policies), sorted(policies))
        problems = iam_analysis.check(policies)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def boundary(self, env):
        return f"arn:aws:iam::123456789012:policy/books-{env}-boundary-{REGION}"

    def test_deploy_roles_change_roles_only_within_their_environments_boundary(self):
        bounded = {"iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"}
        never = {"iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary",
                 "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:CreatePolicy"}
        for env in PROMOTED_FROM:
            with self.subTest(env=env):
                statements = self.statements(env, "deploy")
                granting = [s for s in statements if s["Effect"] == "Allow" and set(as_list(s["Action"])) & bounded]
                self.assertTrue(granting)
                for statement in granting:
                    self.assertEqual(statement.get("Condition"),
                                     {"StringEquals": {"iam:PermissionsBoundary": self.boundary(env)}}, statement)
                allowed = {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}
                self.assertFalse(allowed & never, allowed & never)
                denied = {a for s in statements if s["Effect"] == "Deny" for a in as_list(s["Action"])}
                self.assertLessEqual(never - {"iam:CreatePolicy"}, denied)

    def test_each_environments_boundary_allows_only_its_functions_their_own_data(self):
        for env in PROMOTED_FROM:
            with self.subTest(env=env):
                policy = self.iam.get_policy(PolicyArn=self.boundary(env))["Policy"]
                document = self.iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
                statements = document["PolicyVersion"]["Document"]["Statement"]
                (deny,) = [s for s in statements if s["Effect"] == "Deny"]
                self.assertEqual(deny["Condition"], {"ArnNotLike": {
                    "lambda:SourceFunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:books-{env}-*"}})
                self.assertEqual(as_list(deny["Resource"]), ["*"])
                for statement in statements:
                    actions = set(as_list(statement.get("Action", [])))
                    self.assertFalse({a for a in actions if a.startswith(("iam:", "sts:"))}, statement)
                    for resource in as_list(statement["Resource"]):
                        self.assertTrue(resource == "*" or f"books-{env}-" in resource or f"/books/{env}/" in resource
                                        or (resource.endswith(":key/*") and "kms:ViaService" in str(statement)),
                                        statement)

    def test_api_gateway_is_reached_only_through_the_environments_tag(self):
        for (env, kind) in SUBJECTS:
            with self.subTest(env=env, kind=kind):
                statements = self.statements(env, kind)
                for statement in statements:
                    if statement["Effect"] != "Allow" or not any(a.startswith("apigateway:") for a in as_list(statement["Action"])):
                        continue
                    paths = {r.split("::", 1)[1] for r in as_list(statement["Resource"])}
                    if paths <= {"/account"} or paths <= {"/tags/*"}:
                        continue
                    tag = {"StringEquals": {"aws:ResourceTag/Environment": env}}
                    request = {"StringEquals": {"aws:RequestTag/Environment": env}}
                    self.assertIn(statement.get("Condition"), (tag, request), statement)
                retagging = [s for s in statements if s["Effect"] == "Deny" and s.get("Condition") == {
                    "ForAnyValue:StringEquals": {"aws:TagKeys": "Environment"}}]
                self.assertTrue(retagging, "no role may change a resource's Environment tag")

    def test_plan_roles_read_no_api_key_and_write_only_the_lock_and_their_plans(self):
        for env in PROMOTED_FROM:
            with self.subTest(env=env):
                statements = self.statements(env, "plan")
                denied = {r.split("::", 1)[1] for s in statements if s["Effect"] == "Deny"
                          and "apigateway:GET" in as_list(s["Action"]) for r in as_list(s["Resource"])}
                self.assertLessEqual({"/apikeys", "/apikeys/*", "/usageplans/*/keys", "/usageplans/*/keys/*"}, denied)
                for statement in statements:
                    actions = set(as_list(statement["Action"]))
                    if statement["Effect"] != "Allow" or not actions & {"s3:PutObject", "s3:DeleteObject", "s3:GetObject"}:
                        continue
                    bucket = f"arn:aws:s3:::books-tfstate-123456789012-{REGION}/books/{env}/"
                    if "s3:GetObject" in actions:
                        self.assertIn(as_list(statement["Resource"]),
                                      ([bucket + "terraform.tfstate"], [bucket + "terraform.tfstate.tflock"]))
                    else:
                        self.assertEqual(set(as_list(statement["Resource"])),
                                         {bucket + "terraform.tfstate.tflock", bucket + "plans/*"})

    def test_the_state_bucket_is_versioned_encrypted_and_private(self):
        s3 = client("s3")
        bucket = f"books-tfstate-123456789012-{REGION}"
        self.assertEqual(s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Enabled")
        self.assertTrue(s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"])
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        self.assertTrue(all(block.values()), block)

    def test_the_api_gateway_logging_role_is_set(self):
        self.assertTrue(client("apigateway").get_account().get("cloudwatchRoleArn", "").endswith(f"books-apigateway-cloudwatch-{REGION}"))


def main():
    print(f"==> terraform/account with CI for {REPOSITORY} in {REGION} against {ENDPOINT}")
    terraform("init", "-input=false", "-no-color", f"-backend-config=path={STATE}")
    status = 1
    try:
        terraform("apply", "-input=false", "-no-color", "-auto-approve", *VARS)
        replan = terraform("plan", "-input=false", "-no-color", "-detailed-exitcode", *VARS)
        if replan.returncode != 0:
            sys.stderr.write(replan.stdout[-10000:])
            raise SystemExit("the re-plan is not empty")
        print("    re-plan: no changes")
        result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.loadTestsFromTestCase(CiRoles))
        status = 0 if result.wasSuccessful() else 1
    finally:
        print("==> destroy")
        terraform("destroy", "-input=false", "-no-color", "-auto-approve", *VARS)
    left = [r["RoleName"] for r in client("iam").list_roles()["Roles"] if r["RoleName"].startswith("github-")]
    left += client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
    left += [p["PolicyName"] for p in client("iam").list_policies(Scope="Local")["Policies"]]
    if left:
        raise SystemExit(f"left after destroy: {left}")
    print("    nothing left")
    sys.exit(status)


if __name__ == "__main__":
    main()
