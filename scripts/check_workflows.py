#!/usr/bin/env python3
"""What actionlint does not know about this project's workflows (.github/workflows/*.yml):

- every `make` a `run:` step calls names targets the Makefile has;
- ci runs `make test`, the README's test command, as it is;
- every action is pinned by a full commit hash;
- the workflow grants nothing by default (`permissions: {}`) and every job says what it needs;
- a job that may assume an AWS role (`id-token: write`) runs under a GitHub environment and in a
  concurrency group that never cancels a deployment half-way, and assumes the role its
  environment is for (github-plan-… under `<env>-plan`, github-deploy-… under `<env>`);
- the job that runs `make test` installs, before it, every Rust toolchain the Makefile names
  (FUZZ_TOOLCHAIN, as make's database of the Makefile has it: a runner has only stable);
- every Terraform version the workflows set up satisfies the `required_version` of every
  Terraform module under terraform/ (the environment's root and the account's);
- deliver runs only for a commit whose ci passed on a push to main of this repository: started
  by ci's completion on main and nothing else, every job guarded (or needing a guarded job), and
  every job checks out the commit ci tested;
- no artifact holds a saved plan or a state (a saved plan holds the state: it stays in the
  account), and every artifact says how long it is kept (90 days at most);
- an artifact of another run (download-artifact's run-id) is read only after a step of the same
  job had GitHub confirm that run is a successful deliver run on main of this repository
  (`make aws-lambda-provenance RUN_ID=…` of that run).

    check_workflows.py [--workflows DIR] [--makefile-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shlex
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# The Makefile's variables that name a Rust toolchain besides the default (stable) one.
TOOLCHAIN_VARIABLES = ("FUZZ_TOOLCHAIN",)
# What deliver's guard must require of the ci run that started it (each a conjunct of the `if:`).
DELIVER_GUARDS = {
    "ci passed": ("github.event.workflow_run.conclusion", "'success'"),
    "ci ran for a push": ("github.event.workflow_run.event", "'push'"),
    "the commit is this repository's": ("github.event.workflow_run.head_repository.full_name", "github.repository"),
}
CI_COMMIT = "${{ github.event.workflow_run.head_sha }}"


def make_database(directory: pathlib.Path) -> str:
    """make's database of the Makefile in `directory` (`make -pRrq`: no recipe runs), with the
    variables as the Makefile sets them: without the overrides of the shell or the make this runs
    under (`make lint-workflows FUZZ_TOOLCHAIN=…` hands its VAR=value on in MAKEFLAGS)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL", *TOOLCHAIN_VARIABLES)
    }
    return subprocess.run(
        ["make", "-pRrq", "-C", str(directory), "--no-print-directory"], capture_output=True, text=True, env=environment
    ).stdout


def make_variables(database: str) -> dict[str, str]:
    """The variables the makefiles set (not make's own nor the environment's), unexpanded."""
    variables, origin = {}, ""
    for line in database.splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*) :?:?= ?(.*)$", line)
        if match and origin.startswith("# makefile"):
            variables[match.group(1)] = match.group(2)
        origin = line
    return variables


def expand(value: str, variables: dict[str, str]) -> str | None:
    """`value` with its plain references ($(NAME), ${NAME}) expanded; None when it calls a make
    function (only make can say what that gives)."""
    reference = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_.-]*)[)}]")
    for _ in range(20):
        if not reference.search(value):
            break
        value = reference.sub(lambda m: variables.get(m.group(1), ""), value)
    return None if "$" in value else value.strip()


def makefile_toolchains(database: str) -> dict[str, str | None]:
    """The Rust toolchain each of TOOLCHAIN_VARIABLES names (None: not set, or not readable)."""
    variables = make_variables(database)
    return {name: expand(variables[name], variables) if name in variables else None for name in TOOLCHAIN_VARIABLES}


def make_targets(database: str) -> set[str]:
    """Every target in make's database."""
    targets = set()
    for line in database.splitlines():
        match = re.match(r"^([A-Za-z0-9][^$#/\t=:]*):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def commands(script: str) -> list[list[str]]:
    """The words of each command in a run: script (lines joined at a trailing backslash, split
    at && || ; and |)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part, comments=True) if part.strip() else []
            if words:
                found.append(words)
    return found


def arguments(words: list[str], with_value: tuple[str, ...]) -> list[str]:
    """The operands among a command's words: options, their values and VAR=value left out."""
    operands, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in with_value:
            skip = True
        elif not word.startswith("-") and "=" not in word:
            operands.append(word)
    return operands


def make_goals(script: str) -> list[list[str]]:
    """The goals of each `make` command in a run: script."""
    return [arguments(words[1:], ("-C", "-f", "-j", "-o", "-W")) for words in commands(script) if words[0] == "make"]


def rustup_installs(script: str) -> set[str]:
    """The toolchains each `rustup toolchain install` (or `rustup install`) of a run: script names."""
    toolchains = set()
    for words in commands(script):
        if words[:3] == ["rustup", "toolchain", "install"]:
            words = ["rustup", *words[2:]]
        if words[:2] == ["rustup", "install"]:
            toolchains.update(arguments(words[2:], ("--profile", "-c", "--component", "-t", "--target")))
    return toolchains


def toolchains_installed(steps: list[dict]) -> set[str]:
    """The Rust toolchains these steps install: by rustup in a run: step, or by an action's
    `toolchain:` input (a toolchain action such as dtolnay/rust-toolchain; a list allowed)."""
    toolchains = set()
    for step in steps:
        toolchains |= rustup_installs(step.get("run", ""))
        if step.get("uses") and "toolchain" in (step.get("with") or {}):
            toolchains.update(re.split(r"[\s,]+", str(step["with"]["toolchain"]).strip()))
    return toolchains


# --- Terraform versions -------------------------------------------------------------------------

def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def satisfies(candidate: str, constraints: str) -> bool | None:
    """Whether version `candidate` (x.y.z) meets Terraform's `required_version` constraints
    (comma-separated; =, !=, >, >=, <, <=, ~>); None when a constraint cannot be read."""
    have = version(candidate)
    for constraint in constraints.split(","):
        match = re.fullmatch(r"\s*(>=|<=|~>|!=|=|>|<)?\s*v?(\d+(?:\.\d+){0,2})\s*", constraint)
        if not match:
            return None
        operator, wanted = match.group(1) or "=", version(match.group(2))
        padded = wanted + (0,) * (3 - len(wanted))
        if operator == "~>":
            # ~> 1.11 is >= 1.11, < 2.0; ~> 1.11.4 is >= 1.11.4, < 1.12.0: the last part given may grow.
            bumped = wanted[:-2] + (wanted[-2] + 1,) if len(wanted) > 1 else (wanted[0] + 1,)
            upper = bumped + (0,) * (3 - len(bumped))
            ok = padded <= have < upper
        else:
            ok = {
                "=": have == padded, "!=": have != padded, ">": have > padded,
                ">=": have >= padded, "<": have < padded, "<=": have <= padded,
            }[operator]
        if not ok:
            return False
    return True


def required_versions(terraform: pathlib.Path) -> dict[pathlib.Path, str]:
    """Each Terraform file under `terraform` that sets required_version, and its constraints."""
    found = {}
    for path in sorted(terraform.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        match = re.search(r'^\s*required_version\s*=\s*"([^"]*)"', path.read_text(), re.MULTILINE)
        if match:
            found[path] = match.group(1)
    return found


def terraform_problems(where: str, step: dict, constraints: dict[pathlib.Path, str], root: pathlib.Path) -> list[str]:
    wanted = str((step.get("with") or {}).get("terraform_version", "")).strip()
    if not re.fullmatch(r"\d+\.\d+\.\d+", wanted):
        wanted = wanted or "not set (the latest)"
        return [f"{where}: setup-terraform's terraform_version is {wanted}, not an exact x.y.z"]
    problems = []
    for path, constraint in constraints.items():
        name = path.relative_to(root) if path.is_relative_to(root) else path
        verdict = satisfies(wanted, constraint)
        if verdict is None:
            problems.append(f"{name}: cannot read required_version \"{constraint}\" (check_workflows.py "
                            f"reads =, !=, <, <=, >, >=, ~>)")
        elif not verdict:
            problems.append(f"{where}: Terraform {wanted} does not satisfy required_version \"{constraint}\" of {name}")
    return problems


# --- deliver: only what ci passed ---------------------------------------------------------------

def conjuncts(expression: str) -> set[str]:
    """The terms an `if:` expression requires all of (its top-level `&&` operands, parentheses
    opened), normalised; empty when it has a top-level `||` (then no term is required)."""
    expression = expression.strip()
    if expression.startswith("${{") and expression.endswith("}}"):
        expression = expression[3:-2].strip()
    while expression.startswith("(") and closing(expression, 0) == len(expression) - 1:
        expression = expression[1:-1].strip()
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(expression):
        char = expression[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and expression.startswith("||", i):
            return set()
        elif not quoted and depth == 0 and expression.startswith("&&", i):
            parts.append(expression[start:i])
            start, i = i + 2, i + 1
        i += 1
    parts.append(expression[start:])
    if len(parts) == 1:
        return {" ".join(parts[0].lower().split())}
    return set().union(*(conjuncts(part) for part in parts))


def closing(expression: str, opening: int) -> int:
    """Where the parenthesis opened at `opening` closes (-1: never)."""
    depth, quoted = 0, False
    for i in range(opening, len(expression)):
        char = expression[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def missing_guards(condition: str) -> list[str]:
    """The DELIVER_GUARDS an `if:` does not require."""
    comparisons = set()
    for term in conjuncts(condition):
        sides = term.split("==")
        if len(sides) == 2:
            comparisons.add(frozenset(side.strip() for side in sides))
    return [name for name, sides in DELIVER_GUARDS.items() if frozenset(sides) not in comparisons]


def deliver_problems(name: str, workflow: dict, ci_name: str) -> list[str]:
    problems = []
    triggers = workflow.get("on", workflow.get(True)) or {}
    triggers = {triggers: None} if isinstance(triggers, str) else triggers
    triggers = dict.fromkeys(triggers) if isinstance(triggers, list) else triggers
    for trigger in triggers:
        if trigger != "workflow_run":
            problems.append(f"{name}: `on: {trigger}` may deliver a commit ci has not passed (only ci's completion "
                            f"starts deliver; re-run a deliver run to deliver again)")
    run = triggers.get("workflow_run") or {}
    if "workflow_run" not in triggers:
        problems.append(f"{name}: not started by ci's completion (`on: workflow_run`)")
    elif run.get("workflows") != [ci_name] or run.get("types") != ["completed"] or run.get("branches") != ["main"]:
        problems.append(f"{name}: `on: workflow_run` must be workflows: [{ci_name}], types: [completed], "
                        f"branches: [main] (it is {run})")
    jobs = workflow.get("jobs") or {}
    guarded: set[str] = set()
    for _ in jobs:  # a job inherits the guard of a job it needs: settle in at most len(jobs) rounds
        for job_name, job in jobs.items():
            condition = str(job.get("if", ""))
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            # A status function (always(), failure(), cancelled()) runs a job whose needs were skipped.
            runs_anyway = re.search(r"\b(always|failure|cancelled)\s*\(", condition)
            if not missing_guards(condition) or (not runs_anyway and guarded & set(needs)):
                guarded.add(job_name)
    for job_name, job in jobs.items():
        where = f"{name}: job {job_name}"
        if job_name not in guarded:
            missing = ", ".join(missing_guards(str(job.get("if", ""))))
            problems.append(f"{where}: may run for a ci run that is not a passed push to main of this repository "
                            f"(its `if:` does not require: {missing}; nor does it need a job that does)")
        checkouts = [step for step in job.get("steps", []) if (step.get("uses") or "").startswith("actions/checkout@")]
        if not checkouts:
            problems.append(f"{where}: checks out nothing (every job works on the commit ci tested)")
        for step in checkouts:
            ref = " ".join(str((step.get("with") or {}).get("ref", "")).split())
            if ref != CI_COMMIT:
                ref = ref or "the default branch"
                problems.append(f"{where}: checks out {ref}, not {CI_COMMIT} (the commit ci tested)")
    return problems


# What an artifact must never hold, and how long one may be kept.
NEVER_UPLOADED = re.compile(r"\.tfplan$|\.tfstate(\.|$)|/keys/")
RETENTION_DAYS = 90


def artifact_problems(where: str, steps: list[dict], index: int) -> list[str]:
    """What is wrong with steps[index], an upload or a download of an artifact."""
    step, problems = steps[index], []
    uses, inputs = step.get("uses") or "", step.get("with") or {}
    if uses.startswith("actions/upload-artifact@"):
        for path in str(inputs.get("path", "")).split():
            if NEVER_UPLOADED.search(path):
                problems.append(f"{where}: uploads {path}: a saved plan or a state never leaves the account "
                                f"(it holds the state; PLAN_ID keeps a plan in the state bucket)")
        days = inputs.get("retention-days")
        if not isinstance(days, int) or not 1 <= days <= RETENTION_DAYS:
            problems.append(f"{where}: artifact {inputs.get('name')} has no retention-days of 1 to {RETENTION_DAYS}")
    if uses.startswith("actions/download-artifact@") and "run-id" in inputs:
        run_id = str(inputs["run-id"])
        checked = False
        for earlier in steps[:index]:
            if any(goals == ["aws-lambda-provenance"] for goals in make_goals(earlier.get("run", ""))):
                script = earlier.get("run", "") + " " + " ".join(map(str, (earlier.get("env") or {}).values()))
                checked = checked or run_id in script
        if not checked:
            problems.append(f"{where}: reads an artifact of run {run_id} without `make aws-lambda-provenance` of that "
                            f"run before it (any run's artifact could be deployed: a pull request's ci may upload "
                            f"one of the same name)")
    return problems


def check(workflows: pathlib.Path, makefile_dir: pathlib.Path) -> list[str]:
    database = make_database(makefile_dir)
    targets = make_targets(database)
    toolchains = makefile_toolchains(database)
    constraints = required_versions(makefile_dir / "terraform")
    problems = []
    files = sorted(workflows.glob("*.yml")) + sorted(workflows.glob("*.yaml"))
    if not files:
        return [f"no workflows in {workflows}"]
    for variable, toolchain in toolchains.items():
        if not toolchain:
            problems.append(f"Makefile: {variable} is not set to a toolchain name make's database shows plainly")
    if not constraints:
        problems.append(f"{makefile_dir / 'terraform'}: no required_version found")
    ran_make_test = False
    loaded = {path: yaml.safe_load(path.read_text()) for path in files}
    ci = [workflow for path, workflow in loaded.items() if path.name.startswith("ci.")]
    ci_name = ci[0].get("name", "ci") if ci else "ci"
    delivers = 0
    for path, workflow in loaded.items():
        name = path.relative_to(makefile_dir) if path.is_relative_to(makefile_dir) else path
        if workflow.get("name", path.stem) == "deliver":
            delivers += 1
            problems += deliver_problems(str(name), workflow, ci_name)
        if workflow.get("permissions") != {}:
            problems.append(f"{name}: top-level `permissions: {{}}` missing (each job grants what it needs)")
        for job_name, job in (workflow.get("jobs") or {}).items():
            where = f"{name}: job {job_name}"
            permissions = job.get("permissions")
            if not isinstance(permissions, dict):
                problems.append(f"{where}: no `permissions:` of its own")
                permissions = {}
            steps = job.get("steps", [])
            for index, step in enumerate(steps):
                uses = step.get("uses")
                if uses and not uses.startswith("./") and not PINNED.match(uses):
                    problems.append(f"{where}: {uses} is not pinned by a full commit hash")
                if uses and uses.startswith("hashicorp/setup-terraform@"):
                    problems += terraform_problems(where, step, constraints, makefile_dir)
                problems += artifact_problems(where, steps, index)
                for goals in make_goals(step.get("run", "")):
                    if goals == ["test"] and name.name.startswith("ci."):
                        ran_make_test = True
                        installed = toolchains_installed(steps[:index])
                        for variable, toolchain in toolchains.items():
                            if toolchain and toolchain not in installed:
                                problems.append(
                                    f"{where}: installs no Rust {toolchain} ({variable} of the Makefile) before "
                                    f"`make test`; a runner has only stable. Fix: a step before it that runs "
                                    f"`rustup toolchain install {toolchain} --profile minimal`"
                                )
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
    if delivers != 1:
        problems.append(f"{workflows}: {delivers} workflows named deliver, not one")
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
    print("==> workflows: every make target exists, actions pinned, permissions and environments in place, "
          "the Makefile's toolchains and a Terraform the modules accept installed, deliver only after ci passed")


if __name__ == "__main__":
    main()
