"""scripts/phase, which `make test` runs every phase through: a phase's CPU time counts the
processes it started (a child's child too), its status is kept, and the table shows both."""

import os
import pathlib
import subprocess
import tempfile
import unittest

PHASE = pathlib.Path(__file__).resolve().parent.parent / "phase"
# A child's child that spends CPU until a CPU clock (not the wall's) has gone this far.
BURN = "import time\nwhile time.process_time() < 0.4: pass"


class Phase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.env = dict(os.environ, PHASES_DIR=self.dir)

    def phase(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(PHASE), *args], env=self.env, capture_output=True, text=True, timeout=120)

    def test_cpu_of_the_phase_processes_is_recorded_and_shown(self):
        self.phase("reset")
        burn = self.phase("run", "burn", "--", "sh", "-c", f"python3 -c '{BURN}'")
        self.assertEqual(burn.returncode, 0, burn.stderr)
        failing = self.phase("run", "failing", "--", "sh", "-c", "exit 3")
        self.assertEqual(failing.returncode, 3)
        self.assertIn("FAILED (exit 3)", failing.stderr)

        fields = (pathlib.Path(self.dir) / "burn.time").read_text().split()
        self.assertEqual(fields[2], "0")
        self.assertGreaterEqual(float(fields[3]), 0.4)

        table = self.phase("table").stdout
        self.assertIn("cpu", table.splitlines()[2])
        rows = {line.split()[0]: line.split() for line in table.splitlines()[3:] if line.strip()}
        self.assertEqual(rows["burn"][4], "ok")
        self.assertEqual(rows["failing"][4:], ["FAILED", "(exit", "3)"])
        self.assertIn("sums of phases", table)


if __name__ == "__main__":
    unittest.main()
