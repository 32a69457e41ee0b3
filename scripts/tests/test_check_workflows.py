"""Tests of scripts/check_workflows.py, and of actionlint on our workflows: the committed workflows
pass, and each planted mistake is reported (a workflow calling a make target that does not
exist, an action on a moving tag, a deploy job without environment or concurrency, a job
assuming the deploy role from a plan environment, ci without the Makefile's pinned nightly, a
Terraform older than the modules require, a deliver that could run for a commit ci did not pass
or check out another, a syntax error actionlint must catch)."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
import check_workflows  # noqa: E402

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / ".venv" / "bin" / "actionlint"


class Workflows(unittest.TestCase):
    def planted(self, file: str, old: str, new: str, *more: tuple[str, str]) -> list[str]:
        """The problems found once `old` is replaced by `new` (then each further pair in turn) in
        a copy of `file`."""
        with tempfile.TemporaryDirectory() as directory:
            copy = pathlib.Path(directory) / "workflows"
            shutil.copytree(WORKFLOWS, copy)
            text = (copy / file).read_text()
            for anchor, replacement in [(old, new), *more]:
                self.assertIn(anchor, text, "the mutation's anchor is gone: update the test")
                text = text.replace(anchor, replacement, 1)
            (copy / file).write_text(text)
            return check_workflows.check(copy, ROOT)

    def assertReported(self, problems: list[str], *fragments: str):
        """Some problem names all of `fragments`."""
        self.assertTrue(any(all(f in p for f in fragments) for p in problems), problems)

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

    # --- artifacts: no saved plan, a retention, another run's only after its provenance ----------

    def test_a_saved_plan_uploaded_as_an_artifact(self):
        """A saved plan holds the state: it stays in the account (the issue's mutation)."""
        problems = self.planted("deliver.yml", "            .deploy/prod/plan.log\n",
                                "            .deploy/prod/plan.log\n            .deploy/prod/plan.tfplan\n")
        self.assertReported(problems, "job prod-plan", "uploads .deploy/prod/plan.tfplan", "never leaves the account")

    def test_an_artifact_kept_for_the_repositorys_default(self):
        problems = self.planted("deliver.yml", "          retention-days: 7\n", "", ("          retention-days: 90\n", "          retention-days: 400\n"))
        self.assertReported(problems, "has no retention-days of 1 to 90")

    def test_rollback_from_an_arbitrary_run(self):
        """Without GitHub's word on the run, a pull request's ci run could supply the record
        (the issue's mutation)."""
        problems = self.planted("rollback.yml", '        run: make aws-lambda-provenance RUN_ID="$RUN_ID"\n',
                                "        run: echo trusting the artifact\n")
        self.assertReported(problems, "job plan", "reads an artifact of run ${{ inputs.run_id }}", "aws-lambda-provenance")

    def test_the_provenance_of_another_run_does_not_count(self):
        problems = self.planted("rollback.yml", "          RUN_ID: ${{ inputs.run_id }}\n", "          RUN_ID: ${{ github.run_id }}\n")
        self.assertReported(problems, "reads an artifact of run ${{ inputs.run_id }}")

    # --- the Makefile's toolchains are installed where make test runs ---------------------------

    def test_ci_without_the_nightly_install_step(self):
        """The issue's mutation: make test's fuzz phase would find no nightly on a runner."""
        problems = self.planted("ci.yml", nightly_step(), "")
        self.assertReported(problems, "job test", f"installs no Rust {pinned_nightly()}", "FUZZ_TOOLCHAIN")

    def test_an_unpinned_nightly_is_not_the_pinned_one(self):
        problems = self.planted("ci.yml", f"install {pinned_nightly()} ", "install nightly ")
        self.assertReported(problems, f"installs no Rust {pinned_nightly()}")

    def test_the_nightly_installed_after_make_test_is_too_late(self):
        after = "      - name: Keep the phases' logs\n"
        problems = self.planted("ci.yml", nightly_step(), "", (after, nightly_step() + after))
        self.assertReported(problems, f"installs no Rust {pinned_nightly()}")

    def test_a_toolchain_action_counts_as_an_install(self):
        action = (
            "      - uses: dtolnay/rust-toolchain@" + "0" * 40 + "\n"
            "        with:\n"
            f"          toolchain: stable, {pinned_nightly()}\n"
        )
        self.assertEqual(self.planted("ci.yml", nightly_step(), action), [])

    def test_the_makefiles_own_value_not_an_override(self):
        """make lint-workflows FUZZ_TOOLCHAIN=nightly hands the override to every sub-make; the
        check still reads the Makefile's pin (and so still passes the committed workflows)."""
        overrides = {"FUZZ_TOOLCHAIN": "nightly", "MAKEFLAGS": "FUZZ_TOOLCHAIN=nightly"}
        with mock.patch.dict(os.environ, overrides):
            self.assertEqual(check_workflows.check(WORKFLOWS, ROOT), [])

    # --- Terraform: a version both modules accept --------------------------------------------

    def test_a_terraform_older_than_both_modules_require(self):
        problems = self.planted("ci.yml", "terraform_version: 1.11.4", "terraform_version: 1.9.8")
        self.assertReported(problems, "ci.yml: job test", "1.9.8", "terraform/versions.tf")
        self.assertReported(problems, "ci.yml: job test", "1.9.8", "terraform/account/providers.tf")

    def test_a_terraform_the_account_accepts_but_the_environment_does_not(self):
        problems = self.planted("rollback.yml", "terraform_version: 1.11.4", "terraform_version: 1.10.5")
        self.assertReported(problems, "rollback.yml: job plan", "1.10.5", "terraform/versions.tf")
        self.assertFalse(any("account/providers.tf" in p for p in problems), problems)

    def test_a_terraform_version_left_to_the_latest(self):
        problems = self.planted("deliver.yml", "          terraform_version: 1.11.4\n", "")
        self.assertReported(problems, "deliver.yml: job dev", "not an exact x.y.z")

    def test_required_version_constraints(self):
        for have, constraint, expected in [
            ("1.11.4", ">= 1.11", True),
            ("1.10.9", ">= 1.11", False),
            ("1.11.0", ">= 1.10, < 1.12", True),
            ("1.12.0", ">= 1.10, < 1.12", False),
            ("1.11.4", "~> 1.11", True),
            ("2.0.0", "~> 1.11", False),
            ("1.11.4", "~> 1.11.2", True),
            ("1.12.0", "~> 1.11.2", False),
            ("1.11.4", "1.11.4", True),
            ("1.11.4", "!= 1.11.4", False),
            ("1.11.4", ">= one", None),
        ]:
            with self.subTest(have=have, constraint=constraint):
                self.assertIs(check_workflows.satisfies(have, constraint), expected)

    # --- deliver: only a commit whose ci passed, on a push to main of this repository --------

    def test_deliver_on_a_push_instead_of_cis_completion(self):
        trigger = "  workflow_run:\n    workflows: [ci]\n    types: [completed]\n"
        problems = self.planted("deliver.yml", trigger, "  push:\n")
        self.assertReported(problems, "deliver.yml", "`on: push`")
        self.assertReported(problems, "deliver.yml", "not started by ci's completion")

    def test_deliver_by_hand_as_well(self):
        problems = self.planted("deliver.yml", "    branches: [main]\n", "    branches: [main]\n  workflow_dispatch:\n")
        self.assertReported(problems, "deliver.yml", "`on: workflow_dispatch`")

    def test_deliver_after_another_workflow_or_branch(self):
        self.assertReported(self.planted("deliver.yml", "workflows: [ci]", "workflows: [audit]"), "workflows: [ci]")
        self.assertReported(self.planted("deliver.yml", "    branches: [main]\n", ""), "branches: [main]")
        self.assertReported(
            self.planted("deliver.yml", "types: [completed]", "types: [requested]"), "types: [completed]"
        )

    def test_deliver_after_a_failed_ci(self):
        problems = self.planted("deliver.yml", "      github.event.workflow_run.conclusion == 'success' &&\n", "")
        self.assertReported(problems, "job dev", "ci passed")
        self.assertReported(problems, "job prod", "nor does it need a job that does")

    def test_deliver_for_a_pull_request(self):
        problems = self.planted("deliver.yml", "      github.event.workflow_run.event == 'push' &&\n", "")
        self.assertReported(problems, "job dev", "ci ran for a push")

    def test_deliver_a_forks_branch_named_main(self):
        guard = " &&\n      github.event.workflow_run.head_repository.full_name == github.repository"
        problems = self.planted("deliver.yml", guard, "")
        self.assertReported(problems, "job dev", "the commit is this repository's")

    def test_a_guard_any_one_of_which_will_do(self):
        problems = self.planted("deliver.yml", "'push' &&\n", "'push' ||\n")
        self.assertReported(problems, "job dev", "ci passed", "ci ran for a push")

    def test_a_later_job_that_runs_when_the_guarded_one_was_skipped(self):
        job = "  prod:\n    needs: prod-plan\n"
        problems = self.planted("deliver.yml", job, job + "    if: always()\n")
        self.assertReported(problems, "job prod:", "nor does it need a job that does")
        self.assertFalse(any("job prod-plan:" in p for p in problems), problems)

    def test_deliver_checks_out_mains_tip(self):
        problems = self.planted("deliver.yml", "          ref: ${{ github.event.workflow_run.head_sha }}\n", "")
        self.assertReported(problems, "job dev", "checks out the default branch", "head_sha")

    def test_guard_terms_are_read_as_conjuncts(self):
        required = "github.event.workflow_run.conclusion == 'success'"
        self.assertIn(required, check_workflows.conjuncts(f"${{{{ ({required}) && (a || b) }}}}"))
        self.assertEqual(check_workflows.conjuncts(f"{required} || a"), set())
        self.assertEqual(check_workflows.conjuncts(f"!({required} && a)"), {f"!({required} && a)"})

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


def pinned_nightly() -> str:
    """FUZZ_TOOLCHAIN as the Makefile pins it (what ci.yml must install)."""
    toolchain = check_workflows.makefile_toolchains(check_workflows.make_database(ROOT))["FUZZ_TOOLCHAIN"]
    assert toolchain, "the Makefile pins no FUZZ_TOOLCHAIN"
    return toolchain


def nightly_step() -> str:
    """ci.yml's step that installs the pinned nightly."""
    return (
        "      - name: Rust nightly for cargo fuzz\n"
        f"        run: rustup toolchain install {pinned_nightly()} --profile minimal\n"
    )


if __name__ == "__main__":
    unittest.main()
