"""Third-party analysis of every IAM policy the stacks create, read back from the endpoint they
were applied to: cloudsplaining (privilege escalation, resource exposure, data exfiltration,
credentials exposure, infrastructure modification; with ARN-scoped statements flagged too) and
parliament (malformed statements, unknown actions and conditions, mismatched resources, and its
community auditors).

Two rules on top of what they report:

- No escalation of the kinds where a role grants itself or another role new permissions or new
  trust (PutRolePolicy, AttachRolePolicy, UpdateRolePolicyToAssumeIt, CreateNewPolicyVersion,
  SetExistingDefaultPolicyVersion), ever. The tools' own tables pair each with sts:AssumeRole, the
  attacker assuming the role; a role that can also create a role, or set one's trust, needs no
  such permission (the trust it writes lets a principal of its choice assume it), so each is also
  checked with iam:CreateRole and with iam:UpdateAssumeRolePolicy in its place. A grant made only
  on the condition that the role carries a given permissions boundary (iam:PermissionsBoundary,
  AWS's pattern for delegating role creation) cannot raise anyone above that boundary and is left
  out of this count; every other condition counts as granted (cloudsplaining with ARN-scoped
  statements flagged counts conditional grants of resource-scoped actions, and so do we).
- Every other finding is either fixed or allowed in terraform/iam-findings.yml, each allowance
  with its reason; an allowance nothing needs is an error too.

    iam_analysis.py POLICIES.json      (name -> policy document), against the allowances file
"""

from __future__ import annotations

import fnmatch
import json
import pathlib
import sys
from dataclasses import dataclass

import yaml
from cloudsplaining.scan.policy_document import PolicyDocument
from cloudsplaining.shared.constants import PRIVILEGE_ESCALATION_METHODS
from cloudsplaining.shared.exclusions import DEFAULT_EXCLUSIONS_CONFIG, Exclusions

ALLOWANCES = pathlib.Path(__file__).resolve().parent.parent / "iam-findings.yml"
# Granting permissions or trust: never allowed, in any combination.
FORBIDDEN = {"PutRolePolicy", "AttachRolePolicy", "UpdateRolePolicyToAssumeIt", "CreateNewPolicyVersion",
             "SetExistingDefaultPolicyVersion", "PutUserPolicy", "AttachUserPolicy", "PutGroupPolicy",
             "AttachGroupPolicy"}
# The categories of cloudsplaining's report besides escalation.
CATEGORIES = ("ResourceExposure", "DataExfiltration", "CredentialsExposure", "InfrastructureModification",
              "ServiceWildcard")


def escalation_methods() -> dict[str, set[str]]:
    """cloudsplaining's table (Rhino Security Labs' methods), and each method that ends in the
    attacker assuming the role also with the trust written instead (see the module's doc)."""
    methods = {name: set(actions) for name, actions in PRIVILEGE_ESCALATION_METHODS.items()}
    for name, actions in list(methods.items()):
        if "sts:assumerole" in actions:
            for trust in ("iam:createrole", "iam:updateassumerolepolicy"):
                methods[f"{name}ByTrust({trust.split(':')[1]})"] = (actions - {"sts:assumerole"}) | {trust}
    return methods


@dataclass(frozen=True)
class Finding:
    tool: str
    kind: str
    policy: str
    detail: str

    def __str__(self) -> str:
        return f"{self.policy}: {self.tool} {self.kind}: {self.detail}"


def bounded(statement: dict) -> bool:
    """An Allow that holds only for a role carrying one given permissions boundary."""
    condition = statement.get("Condition") or {}
    return (statement.get("Effect") == "Allow" and list(condition) == ["StringEquals"]
            and list(condition["StringEquals"]) == ["iam:PermissionsBoundary"])


def analysed(document: dict) -> PolicyDocument:
    return PolicyDocument(document, exclusions=Exclusions(DEFAULT_EXCLUSIONS_CONFIG),
                          flag_conditional_statements=False, flag_resource_arn_statements=True)


def cloudsplaining_findings(name: str, document: dict) -> list[Finding]:
    policy = analysed(document)
    statements = document.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    unbounded = analysed({**document, "Statement": [s for s in statements if not bounded(s)]})
    findings = []
    granted = {action.lower() for action in unbounded.all_allowed_unrestricted_actions}
    granted |= {action.lower() for action in unbounded.all_allowed_unrestrictable_actions}
    for method, actions in escalation_methods().items():
        if actions <= granted:
            findings.append(Finding("cloudsplaining", f"PrivilegeEscalation:{method}", name, ", ".join(sorted(actions))))
    reports = {
        "ResourceExposure": policy.permissions_management_without_constraints,
        "DataExfiltration": policy.allows_data_exfiltration_actions,
        "CredentialsExposure": policy.credentials_exposure,
        "InfrastructureModification": policy.infrastructure_modification,
        "ServiceWildcard": policy.service_wildcard,
    }
    for category, actions in reports.items():
        if actions:
            findings.append(Finding("cloudsplaining", category, name, ", ".join(sorted(set(actions)))))
    return findings


def parliament_findings(name: str, document: dict) -> list[Finding]:
    import os

    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config

    override_config(os.path.join(os.path.dirname(parliament.__file__), "community_auditors", "config_override.yaml"))
    result = analyze_policy_string(json.dumps(document), include_community_auditors=True, config=parliament.config)
    findings = []
    for finding in result.findings:
        finding = enhance_finding(finding)
        findings.append(Finding("parliament", finding.issue, name, str(finding.detail)[:300]))
    return findings


def findings_of(policies: dict[str, dict]) -> list[Finding]:
    found = []
    for name, document in sorted(policies.items()):
        document = json.loads(document) if isinstance(document, str) else document
        found += cloudsplaining_findings(name, document) + parliament_findings(name, document)
    return found


def forbidden(finding: Finding) -> bool:
    return finding.kind.startswith("PrivilegeEscalation:") and finding.kind.split(":", 1)[1].split("ByTrust")[0] in FORBIDDEN


def judge(findings: list[Finding], allowances: list[dict]) -> tuple[list[str], list[dict]]:
    """(what is wrong: forbidden or unexplained findings, one line each; the allowances that
    matched nothing)."""
    wrong, used = [], set()
    for finding in findings:
        if forbidden(finding):
            wrong.append(f"escalation (never allowed): {finding}")
            continue
        matches = [i for i, allowance in enumerate(allowances)
                   if allowance["tool"] == finding.tool and fnmatch.fnmatchcase(finding.kind, allowance["kind"])
                   and any(fnmatch.fnmatchcase(finding.policy, pattern) for pattern in allowance["policies"])
                   and fnmatch.fnmatchcase(finding.detail, allowance.get("detail", "*"))]
        if matches:
            used.update(matches)
        else:
            wrong.append(f"not fixed nor allowed in {ALLOWANCES.name}: {finding}")
    return wrong, [allowance for i, allowance in enumerate(allowances) if i not in used]


def load_allowances(path: pathlib.Path = ALLOWANCES) -> list[dict]:
    allowances = yaml.safe_load(path.read_text())["allowed"]
    for allowance in allowances:
        missing = {"tool", "kind", "policies", "reason"} - set(allowance)
        if missing or not str(allowance.get("reason", "")).strip():
            raise SystemExit(f"{path.name}: an allowance without {sorted(missing) or ['a reason']}: {allowance}")
        if allowance["kind"].startswith("PrivilegeEscalation:") and any(
                kind in allowance["kind"] for kind in FORBIDDEN):
            raise SystemExit(f"{path.name}: {allowance['kind']} can never be allowed")
    return allowances


def check(policies: dict[str, dict], allowances: list[dict] | None = None) -> list[str]:
    """Every problem of these policies, one line each (empty: they pass): a forbidden escalation,
    a finding no allowance explains, or an allowance for these policies that nothing needs."""
    allowances = load_allowances() if allowances is None else allowances
    wrong, unused = judge(findings_of(policies), allowances)
    for allowance in unused:
        if any(fnmatch.fnmatchcase(name, pattern) for name in policies for pattern in allowance["policies"]):
            wrong.append(f"allowance matched by no finding (remove it): {allowance['tool']} {allowance['kind']} "
                         f"on {allowance['policies']}")
    return wrong


def policies_on_endpoint(iam, prefixes: tuple[str, ...]) -> dict[str, dict]:
    """Every inline policy of the roles whose names start with one of `prefixes`, and every
    customer-managed policy so named (attached, or a permissions boundary), read back. Trust
    policies are not permission policies (both tools read them as malformed ones): the stacks'
    tests check every role's trust exactly."""
    policies = {}
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if not role["RoleName"].startswith(prefixes):
                continue
            for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                policies[f"{role['RoleName']}/{name}"] = iam.get_role_policy(
                    RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            if policy["PolicyName"].startswith(prefixes):
                version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
                policies[policy["PolicyName"]] = version["PolicyVersion"]["Document"]
    return policies


def main() -> None:
    policies = json.loads(pathlib.Path(sys.argv[1]).read_text())
    problems = check(policies)
    print("\n".join(problems) or f"{len(policies)} policies: no finding unexplained")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
