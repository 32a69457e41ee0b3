"""Tests of the AWS path's decisions that need no AWS (scripts/deploy): running under aws-vault,
the environment, which state and what is refused, Terraform's working directory, the images'
tag and media types, the delivery record. The path itself is rehearsed whole against the local
endpoint and an ECR-like registry by scripts/rehearsal (make test-deploy)."""

import json
import os
import pathlib
import stat
import subprocess
import sys
import tempfile
import unittest
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "aws-lambda"
sys.path.insert(0, str(ROOT / "scripts"))

from deploy import images, registry, release, settings, steps, terraform  # noqa: E402
from deploy.errors import Refusal  # noqa: E402

# Stands in for aws-vault: records how it was called and with which AWS_VAULT, then runs the
# command after `--` with credentials in its environment, as aws-vault exec does.
FAKE_AWS_VAULT = """#!/usr/bin/env bash
echo "argv: $*" >> "$FAKE_LOG"
echo "AWS_VAULT before: ${AWS_VAULT:-<unset>}" >> "$FAKE_LOG"
[ -z "${AWS_VAULT:-}" ] || { echo "aws-vault: error: running in an existing aws-vault subshell" >&2; exit 1; }
while [ "$1" != "--" ]; do shift; done
shift
export AWS_VAULT=$PROFILE_GIVEN AWS_ACCESS_KEY_ID=ASIAFAKE AWS_SECRET_ACCESS_KEY=fake AWS_SESSION_TOKEN=fake
exec "$@"
"""


def run(args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(env)
    return subprocess.run([str(SCRIPT), *args], env=base, capture_output=True, text=True, timeout=120)


def executable(folder: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = folder / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


class AwsVault(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        executable(pathlib.Path(self.dir.name), "aws-vault", FAKE_AWS_VAULT)
        self.log = pathlib.Path(self.dir.name) / "calls.log"
        self.path = f"{self.dir.name}:{os.environ['PATH']}"

    def test_every_step_runs_once_under_aws_vault_exec_profile(self):
        result = run(["no-such-step"], AWS_VAULT="books-dev", PATH=self.path, FAKE_LOG=str(self.log),
                     PROFILE_GIVEN="books-dev")
        # The step itself ran (its usage error) inside aws-vault, and aws-vault was called once.
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("usage: scripts/aws-lambda", result.stderr)
        calls = self.log.read_text()
        self.assertEqual(calls.count("argv:"), 1, calls)
        self.assertIn("argv: exec books-dev -- ", calls)
        self.assertIn("AWS_VAULT before: <unset>", calls)

    def test_credentials_already_exported_by_aws_vault_are_used_as_they_are(self):
        result = run(["no-such-step"], AWS_VAULT="books-dev", AWS_ACCESS_KEY_ID="ASIAX", PATH=self.path,
                     FAKE_LOG=str(self.log))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertFalse(self.log.exists(), "aws-vault was called again inside aws-vault")

    def test_missing_aws_vault_names_the_fix(self):
        result = run(["plan"], AWS_VAULT="books-dev", PATH="/usr/bin:/bin")
        self.assertEqual(result.returncode, 1)
        self.assertIn("aws-vault is not installed", result.stderr)


class Environments(unittest.TestCase):
    def test_an_unknown_environment_lists_the_known_ones(self):
        result = run(["plan"], ENV="qa", PATH=os.environ["PATH"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("no terraform/environments/qa.tfvars", result.stderr)
        for known in ("dev", "staging", "prod"):
            self.assertIn(known, result.stderr)

    def test_an_invalid_environment_name_is_refused(self):
        result = run(["plan"], ENV="Prod_1", PATH=os.environ["PATH"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("ENV=Prod_1", result.stderr)


class WhichState(unittest.TestCase):
    """settings.choose_backend: BACKEND, else what this checkout remembers, else S3 for an
    environment that declares it, else local; never local for one that declares S3."""

    def test_a_new_environment_starts_on_local_state(self):
        self.assertEqual(settings.choose_backend("dev", None, False, None), "local")

    def test_an_environment_keeps_the_state_it_was_last_given(self):
        self.assertEqual(settings.choose_backend("dev", None, False, "s3"), "s3")

    def test_backend_overrides_what_is_remembered(self):
        self.assertEqual(settings.choose_backend("dev", "s3", False, "local"), "s3")

    def test_an_environment_that_declares_s3_uses_it_without_being_told(self):
        self.assertEqual(settings.choose_backend("prod", None, True, None), "s3")
        self.assertEqual(settings.choose_backend("prod", None, True, "local"), "s3")

    def test_local_state_for_an_environment_that_declares_s3_is_refused(self):
        with self.assertRaisesRegex(Refusal, "prod keeps its state in S3.*empty state"):
            settings.choose_backend("prod", "local", True, None)

    def test_prod_declares_remote_state_in_the_checkout(self):
        prod = settings.Settings.from_environ({"ENV": "prod"}, ROOT)
        self.assertTrue(prod.declared_backend_file.exists())
        dev = settings.Settings.from_environ({"ENV": "dev"}, ROOT)
        self.assertFalse(dev.declared_backend_file.exists())

    def test_prod_on_local_state_is_refused_before_anything_runs(self):
        deploy_dir = tempfile.mkdtemp()
        self.addCleanup(subprocess.run, ["rm", "-rf", deploy_dir])
        for step in ("plan", "provision", "promote", "destroy", "delivery"):
            result = run([step], ENV="prod", BACKEND="local", PATH=os.environ["PATH"], DEPLOY_DIR=deploy_dir,
                         FROM="staging")
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
            self.assertIn("prod keeps its state in S3", result.stderr)
            self.assertNotIn("AWS account", result.stdout, "AWS was asked before the refusal")


class S3BackendSettings(unittest.TestCase):
    def test_what_the_file_leaves_out_is_filled_in(self):
        declared = (ROOT / "terraform" / "environments" / "prod.backend.hcl").read_text()
        defaults = settings.s3_backend_defaults(declared, "books/prod/terraform.tfstate", "123456789012",
                                                "eu-west-1", None)
        self.assertIn('bucket = "books-tfstate-123456789012-eu-west-1"', defaults)
        self.assertIn('region = "eu-west-1"', defaults)
        for given in ("key", "encrypt", "use_lockfile"):
            self.assertNotIn(f"{given} =", defaults)

    def test_a_bucket_of_ones_own_is_kept(self):
        defaults = settings.s3_backend_defaults('bucket = "mine"\n# region = "x"\n', "k", "1", "eu-west-1", None)
        self.assertNotIn("bucket", defaults)
        self.assertIn('region = "eu-west-1"', defaults)

    def test_a_local_endpoint_aims_the_backend_at_it(self):
        defaults = settings.s3_backend_defaults("", "k", "1", "eu-west-1", "http://127.0.0.1:5000")
        self.assertIn('s3 = "http://127.0.0.1:5000"', defaults)
        self.assertIn("use_path_style = true", defaults)


class Prerequisites(unittest.TestCase):
    def fake_terraform(self, version):
        folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(folder)])
        return str(executable(folder, "terraform",
                              f"#!/bin/sh\necho '{{\"terraform_version\": \"{version}\"}}'\n"))

    def test_an_old_terraform_is_refused_with_the_fix(self):
        with self.assertRaisesRegex(Refusal, r"Terraform 1\.9\.8 is older than 1\.11.*install Terraform"):
            settings.check_terraform(self.fake_terraform("1.9.8"))

    def test_a_current_terraform_passes(self):
        settings.check_terraform(self.fake_terraform("1.11.4"))
        settings.check_terraform(self.fake_terraform("1.14.0"))

    def test_a_missing_terraform_names_where_to_get_it(self):
        with self.assertRaisesRegex(Refusal, "terraform not found: https://"):
            settings.check_terraform("/nonexistent/terraform")


class WorkingDirectory(unittest.TestCase):
    """terraform.Stack: the configuration is copied, never linked; what Terraform rewrites in the
    working directory stays there."""

    def setUp(self):
        self.folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.folder)])
        self.stack = terraform.Stack("terraform", ROOT / "terraform", self.folder / "stack", "test")
        self.stack.run = lambda *a, **k: subprocess.CompletedProcess(a, 0, "", "")

    def test_the_working_directory_holds_copies_of_the_root_module_and_its_lock_file(self):
        self.stack.prepare(terraform.Backend("local"))
        stack = self.folder / "stack"
        links = [p for p in stack.rglob("*") if p.is_symlink()]
        self.assertEqual(links, [])
        self.assertEqual((stack / ".terraform.lock.hcl").read_text(),
                         (ROOT / "terraform" / ".terraform.lock.hcl").read_text())
        self.assertTrue((stack / "modules" / "registry" / "main.tf").is_file())
        self.assertTrue((stack / "dashboards").is_dir())
        self.assertFalse((stack / "tests").exists())
        self.assertFalse((stack / "environments").exists())
        self.assertIn('path = "../terraform.tfstate"', (stack / "backend.tf").read_text())

    def test_a_rewritten_lock_file_changes_nothing_of_the_checkout_and_is_renewed(self):
        committed = (ROOT / "terraform" / ".terraform.lock.hcl").read_text()
        self.stack.prepare(terraform.Backend("local"))
        lock = self.folder / "stack" / ".terraform.lock.hcl"
        lock.unlink()
        lock.write_text(committed + "# rewritten by a registry install\n")
        self.stack.prepare(terraform.Backend("local"))
        self.assertEqual(lock.read_text(), committed)
        self.assertEqual((ROOT / "terraform" / ".terraform.lock.hcl").read_text(), committed)

    def test_s3_state_is_a_partial_backend_completed_at_init(self):
        config = self.folder / "backend.hcl"
        backend = terraform.Backend("s3", config_files=(config,))
        self.stack.prepare(backend)
        self.assertIn('backend "s3" {}', (self.folder / "stack" / "backend.tf").read_text())
        self.assertEqual(backend.init_arguments(), [f"-backend-config={config}"])

    def test_the_account_stacks_local_backend_is_replaced_for_s3_by_an_override(self):
        account = terraform.Stack("terraform", ROOT / "terraform" / "account", self.folder / "account", "account")
        account.run = self.stack.run
        account.prepare(terraform.Backend("s3", config_files=(self.folder / "b.hcl",), declared_local=True))
        self.assertTrue((self.folder / "account" / "backend_override.tf").exists())
        local = terraform.Backend("local", declared_local=True)
        account.prepare(local)
        self.assertFalse((self.folder / "account" / "backend_override.tf").exists())
        self.assertIn("-backend-config=path=../terraform.tfstate", local.init_arguments())


class MediaTypes(unittest.TestCase):
    def test_single_image_manifests_pass(self):
        for media_type in registry.IMAGE_MANIFESTS:
            registry.refuse_unless_single_image("r:t", registry.Manifest("sha256:1", media_type))

    def test_an_index_is_refused_naming_the_fix(self):
        for media_type in registry.INDEXES:
            with self.assertRaisesRegex(Refusal, "an image index.*--provenance=false"):
                registry.refuse_unless_single_image("r:t", registry.Manifest("sha256:1", media_type))

    def test_a_manifest_without_its_optional_media_type_is_known_by_its_shape(self):
        self.assertEqual(registry.media_type({"manifests": []}), "application/vnd.oci.image.index.v1+json")
        self.assertEqual(registry.media_type({"config": {}, "layers": []}), "application/vnd.oci.image.manifest.v1+json")

    def test_an_ecr_uri_maps_onto_the_standin(self):
        uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/books-dev-command"
        self.assertEqual(registry.standin(uri, "127.0.0.1:5000"), "127.0.0.1:5000/books-dev-command")
        self.assertEqual(registry.standin(uri, None), uri)


class ImageTag(unittest.TestCase):
    def setUp(self):
        self.repo = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.repo)])
        git = ["git", "-C", str(self.repo), "-c", "user.email=t@t", "-c", "user.name=t"]
        subprocess.run([*git, "init", "-q"], check=True)
        (self.repo / "a").write_text("a")
        subprocess.run([*git, "add", "a"], check=True)
        subprocess.run([*git, "commit", "-qm", "a"], check=True)
        self.revision = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                       text=True).stdout.strip()

    def test_a_clean_tree_is_tagged_with_its_revision(self):
        self.assertEqual(images.image_tag(self.repo), self.revision)

    def test_changes_give_a_tag_of_their_own_and_the_same_changes_the_same_tag(self):
        (self.repo / "b").write_text("untracked")
        first = images.image_tag(self.repo)
        self.assertRegex(first, rf"^{self.revision}-dirty-[0-9a-f]{{12}}$")
        self.assertEqual(images.image_tag(self.repo), first)
        (self.repo / "b").write_text("other")
        self.assertNotEqual(images.image_tag(self.repo), first)


class DeliveryRecords(unittest.TestCase):
    def setUp(self):
        self.folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.folder)])
        self.digests = {"command": "sha256:" + "c" * 64, "query": "sha256:" + "a" * 64}
        self.record = steps.DeliveryRecord(
            environment="dev", region="eu-west-1", account="1", architecture="arm64", tag="abc",
            images={kind: {"digest": self.digests[kind], "repository": f"r/{kind}"} for kind in images.KINDS})

    def test_a_record_round_trips_and_hands_terraform_digests_only(self):
        path = self.folder / "delivery.json"
        self.record.save(path)
        self.assertEqual(steps.DeliveryRecord.load(path), self.record)
        self.assertNotIn("promoted_from", json.loads(path.read_text()))
        self.assertEqual(self.record.digests(), {kind: {"digest": self.digests[kind]} for kind in images.KINDS})

    def test_anything_but_a_delivery_record_is_refused(self):
        path = self.folder / "delivery.json"
        for planted in ({"images": {"command": {"digest": "latest"}, "query": {"digest": "sha256:" + "a" * 64}}},
                        {"environment": "Prod; rm -rf /"}, {"architecture": "s390x"}, {"images": {}}):
            with self.subTest(planted=planted):
                document = json.loads(json.dumps(self.record.__dict__))
                document.update(planted)
                path.write_text(json.dumps(document))
                with self.assertRaisesRegex(Refusal, "is not a delivery record"):
                    steps.DeliveryRecord.load(path)
        path.write_text("not json")
        with self.assertRaisesRegex(Refusal, "is not a delivery record"):
            steps.DeliveryRecord.load(path)


class Provenance(unittest.TestCase):
    """Only a successful deliver run on main of this repository may supply a delivery record: asked
    of GitHub (a stand-in serving its documented run object), never read from the record."""

    REPOSITORY = "example-org/books"

    def run_object(self, **changes):
        run = {"id": 42, "path": ".github/workflows/deliver.yml", "event": "workflow_run", "head_branch": "main",
               "status": "completed", "conclusion": "success", "head_sha": "a" * 40,
               "repository": {"full_name": self.REPOSITORY}, "head_repository": {"full_name": self.REPOSITORY}}
        run.update(changes)
        return run

    def test_a_deliver_run_on_main_of_this_repository_passes(self):
        self.assertEqual(steps.run_problems(self.run_object(), self.REPOSITORY), [])

    def test_every_other_run_is_refused_with_its_reason(self):
        for changes, reason in [
            ({"path": ".github/workflows/ci.yml", "event": "pull_request"}, "path"),
            ({"head_branch": "feature"}, "head_branch"),
            ({"conclusion": "failure"}, "conclusion"),
            ({"head_repository": {"full_name": "attacker/books"}}, "head_repository"),
            ({"repository": {"full_name": "attacker/books"}}, "repository"),
        ]:
            with self.subTest(changes=changes):
                problems = steps.run_problems(self.run_object(**changes), self.REPOSITORY)
                self.assertTrue(any(reason in problem for problem in problems), problems)

    def serve(self, run):
        import http.server
        import threading

        seen = []

        class GitHub(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                seen.append((self.path, self.headers.get("Authorization")))
                body = json.dumps(run).encode()
                self.send_response(200 if self.path.endswith("/actions/runs/42") else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GitHub)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{server.server_port}", seen

    def test_the_step_asks_github_and_refuses_a_pull_requests_run(self):
        url, seen = self.serve(self.run_object(path=".github/workflows/ci.yml", event="pull_request"))
        result = run(["provenance"], RUN_ID="42", GITHUB_REPOSITORY=self.REPOSITORY, GITHUB_API_URL=url,
                     GITHUB_TOKEN="ghs_secret", PATH=os.environ["PATH"])
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("is not a successful deliver run on main", result.stderr)
        self.assertEqual(seen, [(f"/repos/{self.REPOSITORY}/actions/runs/42", "Bearer ghs_secret")])
        self.assertNotIn("ghs_secret", result.stdout + result.stderr)

    def test_the_step_accepts_a_deliver_run(self):
        url, _ = self.serve(self.run_object())
        result = run(["provenance"], RUN_ID="42", GITHUB_REPOSITORY=self.REPOSITORY, GITHUB_API_URL=url,
                     PATH=os.environ["PATH"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("run 42: deliver on main", result.stdout)

    def test_a_run_id_that_is_not_one_is_refused_before_anything_is_asked(self):
        result = run(["provenance"], RUN_ID="42; curl evil", GITHUB_REPOSITORY=self.REPOSITORY, PATH=os.environ["PATH"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("provenance needs RUN_ID", result.stderr)


if __name__ == "__main__":
    unittest.main()


class Release(unittest.TestCase):
    """scripts/deploy/release.py against the local endpoint's Lambda (behaviour 23's versions)."""

    @classmethod
    def setUpClass(cls):
        import boto3
        from support import serve_endpoint
        options = dict(region_name="eu-west-1", endpoint_url=serve_endpoint(cls.addClassCleanup),
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        cls.lambda_ = boto3.client("lambda", **options)
        cls.cloudwatch = boto3.client("cloudwatch", **options)
        cls.role = boto3.client("iam", **options).create_role(
            RoleName="release", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def setUp(self):
        # Names of their own: the endpoint's backends outlive each test.
        self.env = uuid.uuid4().hex[:8]
        image = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/books-{self.env}-query@sha256:"
        for role_name in ("query", "projector"):
            name = f"books-{self.env}-{role_name}"
            self.lambda_.create_function(FunctionName=name, Role=self.role, PackageType="Image", Publish=True,
                                         Code={"ImageUri": image + "1" * 64})
            self.lambda_.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        # A new release of the query function only (the projector's apply published nothing).
        self.query = f"books-{self.env}-query"
        self.lambda_.update_function_code(FunctionName=self.query, ImageUri=image + "2" * 64)
        self.lambda_.publish_version(FunctionName=self.query)
        self.published = release.Published.all({
            "query": {"name": self.query, "alias": "live", "version": "2"},
            "projector": {"name": f"books-{self.env}-projector", "alias": "live", "version": "1"},
        })

    def test_each_alias_moves_to_its_published_version_at_once(self):
        said = []
        release.at_once(self.lambda_, self.published, said=said.append)
        self.assertEqual(said, [f"books-{self.env}-projector:live already runs version 1",
                                f"{self.query}:live now runs version 2 (was 1)"])
        alias = self.lambda_.get_alias(FunctionName=self.query, Name="live")
        self.assertEqual(release.route_of(alias), ("2", {}))

    def test_a_canary_share_left_on_the_alias_is_taken_off(self):
        self.lambda_.update_alias(FunctionName=self.query, Name="live", FunctionVersion="1",
                                  RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
        release.at_once(self.lambda_, self.published, said=lambda _: None)
        alias = self.lambda_.get_alias(FunctionName=self.query, Name="live")
        self.assertEqual(release.route_of(alias), ("2", {}))

    def alarm(self, name, state, reason="tested"):
        self.cloudwatch.put_metric_alarm(AlarmName=name, Namespace="Books", MetricName="Errors", Statistic="Sum",
                                         Period=60, EvaluationPeriods=1, Threshold=1,
                                         ComparisonOperator="GreaterThanOrEqualToThreshold")
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)

    def canary(self, alarm_after_s=None, minutes=1):
        """A canary on a fake clock: `alarm_after_s` of watching, an alarm goes to ALARM."""
        now, said = [0.0], []

        def sleep(seconds):
            now[0] += seconds
            if alarm_after_s is not None and now[0] >= alarm_after_s:
                self.alarm(f"books-{self.env}-query-errors", "ALARM", "Threshold Crossed: 1 datapoint [3.0]")
            weights = release.route_of(self.lambda_.get_alias(FunctionName=self.query, Name="live"))
            said.append(("routing", weights))

        release.canary(self.lambda_, self.cloudwatch, f"books-{self.env}", self.published,
                       release.Strategy("canary", 25, minutes), said=said.append, clock=lambda: now[0], sleep=sleep)
        return said

    def test_a_canary_without_an_alarm_ends_with_all_of_the_traffic(self):
        self.alarm(f"books-{self.env}-query-errors", "OK")  # watched, and not in ALARM
        said = self.canary()
        self.assertIn(("routing", ("1", {"2": 0.25})), said, "a quarter to version 2 while watched")
        self.assertEqual(release.route_of(self.lambda_.get_alias(FunctionName=self.query, Name="live")), ("2", {}))
        self.assertIn(f"{self.query}:live now runs version 2 (was 1)", said)
        # The projector had nothing new: never routed.
        self.assertIn(f"books-{self.env}-projector:live already runs version 1", said)

    def test_an_alarm_during_the_canary_rolls_every_alias_back_and_names_it(self):
        with self.assertRaisesRegex(Refusal, rf"canary rolled back: alarm books-{self.env}-query-errors is in ALARM "
                                             r"\(Threshold Crossed: 1 datapoint \[3.0\]\)"):
            self.canary(alarm_after_s=20)
        self.assertEqual(release.route_of(self.lambda_.get_alias(FunctionName=self.query, Name="live")), ("1", {}))

    def test_a_canary_does_not_start_under_an_alarm(self):
        self.alarm(f"books-{self.env}-api-5xx", "ALARM")
        with self.assertRaisesRegex(Refusal, "in ALARM before the release"):
            self.canary()
        self.assertEqual(release.route_of(self.lambda_.get_alias(FunctionName=self.query, Name="live")), ("1", {}))

    def test_a_rollback_goes_back_to_the_previous_version_and_a_second_forward(self):
        functions = self.published
        release.at_once(self.lambda_, functions, said=lambda _: None)
        said = []
        release.rollback(self.lambda_, [functions[1]], said=said.append)
        self.assertEqual(said, [f"{self.query}:live now runs version 1 (was 2)"])
        self.assertEqual(release.route_of(self.lambda_.get_alias(FunctionName=self.query, Name="live")), ("1", {}))
        release.rollback(self.lambda_, [functions[1]], said=said.append)
        self.assertEqual(release.route_of(self.lambda_.get_alias(FunctionName=self.query, Name="live")), ("2", {}))

    def test_a_rollback_during_a_canary_takes_its_share_off(self):
        self.lambda_.update_alias(FunctionName=self.query, Name="live", FunctionVersion="1",
                                  RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
                                  Description="canary of version 2; previous version 7")
        said = []
        release.rollback(self.lambda_, [self.published[1]], said=said.append)
        self.assertEqual(said, [f"{self.query}:live now runs version 1 (the canary of version 2 stopped)"])
        alias = self.lambda_.get_alias(FunctionName=self.query, Name="live")
        self.assertEqual((release.route_of(alias), alias["Description"]), (("1", {}), "previous version 7"))

    def test_a_rollback_with_no_previous_version_moves_nothing(self):
        with self.assertRaisesRegex(Refusal, "records no previous version"):
            release.rollback(self.lambda_, self.published)
