"""terraform/tests/iam_analysis.py on policies of its own: the deploy role as it was before the
permissions boundary (read back from an apply of that ci.tf) escalates; a grant held to a boundary
does not, and the same grant without its condition does; an allowance cannot excuse an
escalation, an unexplained finding fails and so does an allowance nothing needs."""

import json
import pathlib
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "terraform" / "tests"))

import iam_analysis  # noqa: E402

BEFORE = json.loads((ROOT / "terraform" / "tests" / "fixtures" / "deploy-role-before-the-boundary.json").read_text())
BOUNDARY = "arn:aws:iam::123456789012:policy/books-dev-boundary-eu-west-1"
ROLES = "arn:aws:iam::123456789012:role/books-dev-*"


def role_management(condition):
    statement = {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:PutRolePolicy"], "Resource": ROLES}
    if condition:
        statement["Condition"] = {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}
    return {"Version": "2012-10-17", "Statement": [statement]}


class Escalation(unittest.TestCase):
    def escalations(self, policies):
        return [line for line in iam_analysis.check(policies, allowances=[]) if line.startswith("escalation")]

    def test_the_deploy_role_before_the_boundary_could_make_itself_admin(self):
        found = self.escalations(BEFORE)
        self.assertTrue(any("PutRolePolicyByTrust(createrole)" in line for line in found), found)
        self.assertTrue(any("UpdateRolePolicyToAssumeIt" in line for line in found), found)

    def test_a_grant_held_to_the_boundary_is_none(self):
        self.assertEqual(self.escalations({"deploy": role_management(condition=True)}), [])

    def test_the_same_grant_without_the_boundary_is_one(self):
        found = self.escalations({"deploy": role_management(condition=False)})
        self.assertTrue(any("PutRolePolicyByTrust(createrole)" in line for line in found), found)

    def test_another_condition_does_not_bound_a_grant(self):
        policy = role_management(condition=True)
        policy["Statement"][0]["Condition"] = {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}
        self.assertTrue(self.escalations({"deploy": policy}))


class Allowances(unittest.TestCase):
    def write(self, text):
        path = pathlib.Path(tempfile.mkdtemp()) / "allowances.yml"
        path.write_text(text)
        return path

    def test_an_escalation_can_never_be_allowed(self):
        path = self.write("allowed:\n  - {tool: cloudsplaining, kind: 'PrivilegeEscalation:PutRolePolicy*', "
                          "policies: ['*'], reason: deploying}\n")
        with self.assertRaisesRegex(SystemExit, "can never be allowed"):
            iam_analysis.load_allowances(path)

    def test_an_allowance_needs_its_reason(self):
        path = self.write("allowed:\n  - {tool: parliament, kind: RESOURCE_STAR, policies: ['*'], reason: ' '}\n")
        with self.assertRaisesRegex(SystemExit, "without"):
            iam_analysis.load_allowances(path)

    def test_an_unexplained_finding_and_an_unneeded_allowance_both_fail(self):
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]}
        allowances = [{"tool": "parliament", "kind": "RESOURCE_MISMATCH", "policies": ["role"], "reason": "r"}]
        problems = iam_analysis.check({"role": policy}, allowances=allowances)
        self.assertTrue(any("not fixed nor allowed" in p and "CredentialsExposure" in p for p in problems), problems)
        self.assertTrue(any("matched by no finding" in p for p in problems), problems)

    def test_the_committed_allowances_load(self):
        self.assertTrue(iam_analysis.load_allowances())


if __name__ == "__main__":
    unittest.main()
