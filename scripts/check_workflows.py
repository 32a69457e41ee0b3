#!/usr/bin/env python3
"""What actionlint does not know about this project's workflows (.github/workflows/*.yml):

- every `make` a `run:` step calls names targets the Makefile has;
- ci runs `make test`, the README's test command, as it is;
- every action is pinned by a full commit hash;
- the workflow grants nothing by default (`permissions: {}`) and every job says what it needs;
- a job that may assume an AWS role (`id-token: write`) runs under a GitHub environment and in a
  concurrency group that never cancels a deployment half-way, and assumes the role its
  environment is for (github-plan-… under `<env>-plan`, github-deploy-… under `<env>`).

    check_workflows.py [--workflows DIR] [--makefile-dir DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shlex
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def make_targets(directory: pathlib.Path) -> set[str]:
    """Every target make knows in `directory` (its database, without running a recipe)."""
    database = subprocess.run(
        ["make", "-pRrq", "-C", str(directory), "--no-print-directory"], capture_output=True, text=True
    ).stdout
    targets = set()
    for line in database.splitlines():
        match = re.match(r"^([A-Za-z0-9][^$#/\t=:]*):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def make_goals(script: str) -> list[list[str]]:
    """The goals of each `make` command in a run: script (options and VAR=value left out)."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part, comments=True) if part.strip() else []
            if not words or words[0] != "make":
                continue
            goals, skip = [], False
            for word in words[1:]:
                if skip:
                    skip = False
                elif word in ("-C", "-f", "-j", "-o", "-W"):
                    skip = True
                elif word.startswith("-") or "=" in word:
                    continue
                else:
                    goals.append(word)
            commands.append(goals)
    return commands


def check(workflows: pathlib.Path, makefile_dir: pathlib.Path) -> list[str]:
    targets = make_targets(makefile_dir)
    problems = []
    files = sorted(workflows.glob("*.yml")) + sorted(workflows.glob("*.yaml"))
    if not files:
        return [f"no workflows in {workflows}"]
    ran_make_test = False
    for path in files:
        name = path.relative_to(makefile_dir) if path.is_relative_to(makefile_dir) else path
        workflow = yaml.safe_load(path.read_text())
        if workflow.get("permissions") != {}:
            problems.append(f"{name}: top-level `permissions: {{}}` missing (each job grants what it needs)")
        for job_name, job in (workflow.get("jobs") or {}).items():
            where = f"{name}: job {job_name}"
            permissions = job.get("permissions")
            if not isinstance(permissions, dict):
                problems.append(f"{where}: no `permissions:` of its own")
                permissions = {}
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses and not uses.startswith("./") and not PINNED.match(uses):
                    problems.append(f"{where}: {uses} is not pinned by a full commit hash")
                for goals in make_goals(step.get("run", "")):
                    if goals == ["test"] and name.name.startswith("ci."):
                        ran_make_test = True
                    for goal in goals or ["<default goal>"]:
                        if goal not in targets:
                            problems.append(f"{where}: `make {goal}` names no target of the Makefile")
            if permissions.get("id-token") == "write":
                environment = job.get("environment")
                environment = environment.get("name") if isinstance(environment, dict) else environment
                concurrency = job.get("concurrency") or {}
                if not environment:
                    problems.append(f"{where}: assumes an AWS role outside a GitHub environment")
                if not isinstance(concurrency, dict) or not concurrency.get("group"):
                    problems.append(f"{where}: deploys without a concurrency group")
                elif concurrency.get("cancel-in-progress") is not False:
                    problems.append(f"{where}: its concurrency group may cancel a deployment half-way")
                roles = [
                    step.get("with", {}).get("role-to-assume", "")
                    for step in job.get("steps", [])
                    if "configure-aws-credentials" in (step.get("uses") or "")
                ]
                for role in roles:
                    kind = "plan" if str(environment).endswith("-plan") else "deploy"
                    if f":role/github-{kind}-" not in role:
                        problems.append(f"{where}: environment {environment} assumes {role}, not a github-{kind}- role")
    if not ran_make_test:
        problems.append("ci: no step runs `make test` (the README's test command)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=pathlib.Path, default=ROOT / ".github" / "workflows")
    parser.add_argument("--makefile-dir", type=pathlib.Path, default=ROOT)
    args = parser.parse_args()
    problems = check(args.workflows.resolve(), args.makefile_dir.resolve())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"==> workflows: every make target exists, actions pinned, permissions and environments in place")


if __name__ == "__main__":
    main()
