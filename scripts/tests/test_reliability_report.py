"""Tests of scripts/reliability_report.py: a whole report from synthetic summaries, and a loud
failure when a part was never run."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "reliability_report.py"


def write(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


class Report(unittest.TestCase):
    def setUp(self):
        self.folder = pathlib.Path(tempfile.mkdtemp())
        self.build, self.out = self.folder / "build", self.folder / "out"
        write(self.build / "fuzz/summary.json", {"sanitizer": "address", "seconds_per_target": 60, "targets": [
            {"target": "cursor", "executions": 1234, "exec_per_s": 20, "edges": 99, "corpus": 7, "failure": None},
            {"target": "emf", "executions": 10, "exec_per_s": 1, "edges": 5, "corpus": 2, "failure": "boom"}]})
        write(self.build / "consistency/summary.json", {
            "commit": "abc123def456", "seed": 3, "clients": 8, "seconds": 120, "isbns": 160, "operations": 4321,
            "outcomes": {"create 201": 40, "create None": 2},
            "linearizability": {"checker": "stateright LinearizabilityTester", "books": 40, "operations": 300,
                                "indeterminate": 7, "seconds": 0.5},
            "faults": {"kills": 12, "lost-answers": 30, "slow-dynamodb": 4, "gremlins": 1}, "live_books": 16, "converged_s": 1.5, "anomalies": []})
        write(self.build / "soak/summary.json", {
            "seconds": 600, "rate": 20, "answered": {"command": 5}, "shipped": {"command": 5}, "samples": 2,
            "growth": {"books-local": {"rss_early_mb": 30, "rss_late_mb": 31, "noise_mb": 0.1, "bound_mb": 2.0,
                                       "fds_early": 9, "fds_late": 9, "processes_late": 1}},
            "bounds": {"noise_factor": 10, "growth_floor_mb": 2.0, "fd_growth": 8, "fd_growth_share": 0.25},
            "failures": []})
        write(self.build / "soak/samples.json", [
            {"t": 0, "processes": [{"role": "books-local", "pid": 1, "rss_mb": 30, "fds": 9}]},
            {"t": 60, "processes": [{"role": "books-local", "pid": 1, "rss_mb": 31, "fds": 9}]}])

    def run_report(self):
        return subprocess.run([sys.executable, str(SCRIPT), "--out", str(self.out)], capture_output=True, text=True,
                              env=dict(os.environ, BUILD=str(self.build)))

    def test_every_part_is_reported_and_a_failed_target_fails_the_run(self):
        result = self.run_report()
        self.assertEqual(result.returncode, 1, result.stderr)
        report = (self.out / "report.md").read_text()
        self.assertIn("| `cursor` | 1,234 | 20 | 99 | 7 | no failure |", report)
        self.assertIn("| `emf` | 10 | 1 | 5 | 2 | **failed** |", report)
        self.assertIn("4,321 operations, 0 anomalies", report)
        self.assertIn("| kills | 12 |", report)
        self.assertIn("| slow-dynamodb | 4 | a share of the functions' DynamoDB calls held", report)
        self.assertIn("| stream-reordered | 0 |", report)
        self.assertIn("| gremlins | 1 | **not described**", report)
        self.assertIn("| books-local | 30 | 31 | 2.0 | 9 | 9 | 1 |", report)
        self.assertIn("over 160 ISBNs", report)
        self.assertIn("300 writes of 40 books, 7 of them indeterminate (5xx or no answer), linearizable", report)
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
        self.assertRegex(report.splitlines()[2], rf"at commit `{head}( with uncommitted changes)?` .*, on .+ cores, ",
                         "the report names the commit and the machine")
        self.assertIn("At commit `abc123def456`: 8 concurrent clients", report, "each part names its own")
        self.assertIn("At a commit its run did not record: cargo fuzz", report)
        self.assertTrue((self.out / "soak.png").stat().st_size > 0)

    def test_a_part_never_run_is_named_with_the_command_that_runs_it(self):
        (self.build / "soak/summary.json").unlink()
        result = self.run_report()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("make reliability", result.stderr)


if __name__ == "__main__":
    unittest.main()
