#!/usr/bin/env python3
"""No secret in what the workflows upload, nor in a log: every file the workflows'
upload-artifact steps name (.github/workflows/*.yml), as a rehearsal of the deployment produced
it under DEPLOY_DIR, and every log given, searched for every API key value and every cursor key
value the endpoint holds (API Gateway's keys, Secrets Manager's current and previous versions).
A saved plan or a state named by an upload fails whatever it holds: it never leaves the account.

    check_artifacts.py --deploy-dir DIR [--environment ENV ...] [--log FILE ...]

The secrets are read from the endpoint the environment's AWS_ENDPOINT_URL names (scripts/rehearsal
runs it while the environments are deployed); nothing found is printed, only where.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
NEVER_UPLOADED = re.compile(r"\.tfplan$|\.tfstate(\.|$)|/keys/")


def uploaded_paths(workflows: pathlib.Path, environments: list[str]) -> list[str]:
    """The paths upload-artifact steps name, with the environment's expressions filled in."""
    paths = []
    for file in sorted(workflows.glob("*.yml")):
        for job in (yaml.safe_load(file.read_text()).get("jobs") or {}).values():
            for step in job.get("steps", []):
                if not str(step.get("uses", "")).startswith("actions/upload-artifact@"):
                    continue
                for path in str((step.get("with") or {}).get("path", "")).split():
                    if "${{" in path:
                        paths += [re.sub(r"\$\{\{\s*inputs\.environment\s*\}\}", env, path) for env in environments]
                    else:
                        paths.append(path)
    return sorted(set(paths))


def secrets(prefix: str) -> dict[str, str]:
    """Every secret value of the environments whose names start with `prefix`, by a name for it."""
    found = {}
    apigateway = boto3.client("apigateway")
    for page in apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
        for key in page["items"]:
            if key["name"].startswith(prefix):
                found[f"API key {key['name']}"] = key["value"]
    manager = boto3.client("secretsmanager")
    for page in manager.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            if not secret["Name"].startswith(prefix):
                continue
            for stage in ("AWSCURRENT", "AWSPREVIOUS"):
                try:
                    value = manager.get_secret_value(SecretId=secret["ARN"], VersionStage=stage)
                except manager.exceptions.ResourceNotFoundException:
                    continue
                found[f"secret {secret['Name']} ({stage})"] = value.get("SecretString") or value["SecretBinary"].decode()
    return found


def files_under(path: pathlib.Path) -> list[pathlib.Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def problems(deploy_dir: pathlib.Path, environments: list[str], logs: list[pathlib.Path], values: dict[str, str],
             workflows: pathlib.Path) -> tuple[list[str], int]:
    """(what is wrong, one line each; how many files were searched)."""
    wrong, searched = [], []
    for path in uploaded_paths(workflows, environments):
        if NEVER_UPLOADED.search(path):
            wrong.append(f"an upload names {path}: a saved plan or a state never leaves the account")
        if path.startswith(".deploy/"):
            searched += files_under(deploy_dir / path.removeprefix(".deploy/"))
    searched += [log for log in logs if log.is_file()]
    for file in searched:
        content = file.read_bytes()
        for name, value in values.items():
            if value and value.encode() in content:
                wrong.append(f"{file} holds the value of {name}")
    return wrong, len(searched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deploy-dir", type=pathlib.Path, required=True)
    parser.add_argument("--environment", action="append", default=[])
    parser.add_argument("--log", type=pathlib.Path, action="append", default=[])
    parser.add_argument("--prefix", default="books-")
    parser.add_argument("--workflows", type=pathlib.Path, default=ROOT / ".github" / "workflows")
    arguments = parser.parse_args()
    values = secrets(arguments.prefix)
    if not any(name.startswith("API key") for name in values) or not any(name.startswith("secret") for name in values):
        sys.exit(f"error: no API key or cursor key to look for on the endpoint ({sorted(values)}): "
                 "run this while the environments are deployed")
    wrong, count = problems(arguments.deploy_dir, arguments.environment, arguments.log, values, arguments.workflows)
    for line in wrong:
        print(f"error: {line}", file=sys.stderr)
    if wrong:
        sys.exit(1)
    print(f"==> {count} uploaded files and logs hold none of {len(values)} secret values "
          f"({sum(n.startswith('API key') for n in values)} API keys, {sum(n.startswith('secret') for n in values)} "
          "cursor key versions); no saved plan or state is uploaded")


if __name__ == "__main__":
    main()
