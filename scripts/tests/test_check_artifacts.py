"""scripts/check_artifacts.py on files of its own: what the committed workflows upload is found
under a deploy folder and searched; a secret in an uploaded file or a log is reported by where
it is (never printed); an upload naming a saved plan fails whatever it holds."""

import pathlib
import shutil
import sys
import tempfile
import unittest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

import check_artifacts  # noqa: E402

KEY = "k3yV4lu3-0f-th3-d3f4ult-cli3nt"
VALUES = {"API key books-prod-api-default-1": KEY, "secret books-prod-cursor-key (AWSCURRENT)": "curs0r-s3cr3t"}


class Artifacts(unittest.TestCase):
    def setUp(self):
        self.folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.folder)
        self.deploy = self.folder / "deploy"
        for env in ("dev", "staging", "prod"):
            (self.deploy / env).mkdir(parents=True)
            (self.deploy / env / "delivery.json").write_text('{"images": {}}')
            (self.deploy / env / "plan.log").write_text("Plan: 3 to add\n  + value = (sensitive value)\n")
        self.workflows = self.folder / "workflows"
        shutil.copytree(ROOT / ".github" / "workflows", self.workflows)

    def check(self, logs=()):
        return check_artifacts.problems(self.deploy, ["dev", "staging", "prod"], list(logs), VALUES, self.workflows)

    def test_the_committed_workflows_upload_nothing_secret(self):
        wrong, searched = self.check()
        self.assertEqual(wrong, [])
        self.assertGreaterEqual(searched, 6)

    def test_a_key_in_an_uploaded_file_is_found_and_not_printed(self):
        (self.deploy / "prod" / "plan.log").write_text(f"api_key_value = {KEY}\n")
        wrong, _ = self.check()
        self.assertEqual(len(wrong), 1, wrong)
        self.assertIn("prod/plan.log holds the value of API key books-prod-api-default-1", wrong[0])
        self.assertNotIn(KEY, wrong[0])

    def test_a_key_in_a_log_is_found(self):
        log = self.folder / "job.log"
        log.write_text("curl -H x-api-key: " + KEY)
        wrong, _ = self.check([log])
        self.assertTrue(any("job.log holds the value of API key" in line for line in wrong), wrong)

    def test_an_uploaded_saved_plan_fails_whatever_it_holds(self):
        """The issue's mutation: the plan uploaded as an artifact again."""
        deliver = self.workflows / "deliver.yml"
        text = deliver.read_text()
        anchor = "            .deploy/prod/plan.log\n"
        self.assertIn(anchor, text)
        deliver.write_text(text.replace(anchor, anchor + "            .deploy/prod/plan.tfplan\n", 1))
        (self.deploy / "prod" / "plan.tfplan").write_bytes(b"PK\x03\x04 a zip with no secret in it")
        wrong, _ = self.check()
        self.assertTrue(any(".deploy/prod/plan.tfplan: a saved plan or a state never leaves the account" in line
                            for line in wrong), wrong)


if __name__ == "__main__":
    unittest.main()
