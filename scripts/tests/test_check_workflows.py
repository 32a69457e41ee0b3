"""Tests of scripts/check_workflows.py, and of actionlint on our workflows: the committed workflows
pass, and each planted mistake is reported (a workflow calling a make target that does not
exist, an action on a moving tag, a deploy job without environment or concurrency, a job
assuming the deploy role from a plan environment, a syntax error actionlint must catch)."""

import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
import check_workflows  # noqa: E402

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / ".venv" / "bin" / "actionlint"


class Workflows(unittest.TestCase):
    def planted(self, file: str, old: str, new: str) -> list[str]:
        """The problems found once `old` is replaced by `new` in a copy of `file`."""
        with tempfile.TemporaryDirectory() as directory:
            copy = pathlib.Path(directory) / "workflows"
            shutil.copytree(WORKFLOWS, copy)
            text = (copy / file).read_text()
            self.assertIn(old, text, "the mutation's anchor is gone: update the test")
            (copy / file).write_text(text.replace(old, new, 1))
            return check_workflows.check(copy, ROOT)

    def test_the_committed_workflows_pass(self):
        self.assertEqual(check_workflows.check(WORKFLOWS, ROOT), [])

    def test_a_make_target_that_does_not_exist(self):
        problems = self.planted("deliver.yml", "make aws-lambda-provision ENV=dev", "make aws-lambda-provison ENV=dev")
        self.assertTrue(any("make aws-lambda-provison" in p for p in problems), problems)

    def test_ci_must_run_make_test(self):
        problems = self.planted("ci.yml", "run: make test\n", "run: make check\n")
        self.assertTrue(any("`make test`" in p for p in problems), problems)

    def test_an_action_on_a_moving_tag(self):
        problems = self.planted(
            "ci.yml", "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "actions/checkout@v7"
        )
        self.assertTrue(any("not pinned" in p for p in problems), problems)

    def test_a_deploy_job_without_its_environment_or_concurrency(self):
        problems = self.planted("deliver.yml", "    environment: prod\n    concurrency:\n      group: deploy-prod\n      cancel-in-progress: false\n", "")
        self.assertTrue(any("outside a GitHub environment" in p for p in problems), problems)
        self.assertTrue(any("without a concurrency group" in p for p in problems), problems)

    def test_the_deploy_role_from_a_plan_environment(self):
        problems = self.planted("deliver.yml", "role/github-plan-books-prod-", "role/github-deploy-books-prod-")
        self.assertTrue(any("not a github-plan- role" in p for p in problems), problems)

    def test_default_permissions(self):
        problems = self.planted("rollback.yml", "permissions: {}\n", "")
        self.assertTrue(any("top-level `permissions: {}`" in p for p in problems), problems)

    def test_actionlint_catches_a_broken_expression(self):
        self.assertTrue(ACTIONLINT.exists(), f"{ACTIONLINT} missing: run make venv")
        with tempfile.TemporaryDirectory() as directory:
            copy = pathlib.Path(directory) / ".github" / "workflows"
            shutil.copytree(WORKFLOWS, copy)
            text = (copy / "deliver.yml").read_text()
            (copy / "deliver.yml").write_text(text.replace("needs: staging-plan", "needs: staging-plann", 1))
            files = sorted(str(f) for f in copy.glob("*.yml"))
            result = subprocess.run([str(ACTIONLINT), *files], cwd=directory, capture_output=True, text=True)
            self.assertNotEqual(result.returncode, 0, result.stdout)
            self.assertIn("staging-plann", result.stdout)
            clean = subprocess.run([str(ACTIONLINT)], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(clean.returncode, 0, clean.stdout)


if __name__ == "__main__":
    unittest.main()
