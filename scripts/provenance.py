"""Which commit a run is of: the reliability runs record it when they start, and their report
names it per part (a tree changed meanwhile would otherwise be reported as the one at the end)."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def commit(root=ROOT):
    """HEAD's short hash, and whether tracked files had changes besides (the reports the runs
    write, under reliability/ and .build/, are not the code that ran)."""
    def git(*args):
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None
    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!reliability")
    return head + (" with uncommitted changes" if changed else "")
