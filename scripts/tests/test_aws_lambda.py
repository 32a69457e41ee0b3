"""Tests of scripts/aws-lambda's decisions that need no AWS: running under aws-vault, choosing the
environment, and the image tag of a tree with changes. The AWS path itself is rehearsed whole by
scripts/rehearsal (make test-deploy)."""

import os
import pathlib
import stat
import subprocess
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "aws-lambda"

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


class AwsVault(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        tool = pathlib.Path(self.dir.name) / "aws-vault"
        tool.write_text(FAKE_AWS_VAULT)
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
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


if __name__ == "__main__":
    unittest.main()
