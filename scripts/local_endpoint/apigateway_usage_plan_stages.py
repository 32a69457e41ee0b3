"""Removing a stage a usage plan no longer holds changes nothing.

Removing a stage from a usage plan that no longer holds it fails with a 500 (a Python
ValueError) in moto. Terraform's provider removes the plan's stages before deleting it and
retries a 500; when a loaded machine made the first PATCH look lost and it was sent again, the
destroy retried for twenty minutes. Here removing an absent stage changes nothing. (The
lost answer itself is now handled once for every operation by 8; this stays because a 500
for a stage that is already gone is moto's bug whoever sends the PATCH.)

AWS documentation followed:
- https://docs.aws.amazon.com/apigateway/latest/api/API_UpdateUsagePlan.html
"""

from moto.apigateway.models import UsagePlan

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


_apply_patch_operations = UsagePlan.apply_patch_operations


def _remove_absent_stages_as_nothing(self, patch_operations):
    held = {f"{stage['apiId']}:{stage['stage']}" for stage in self.api_stages}
    kept = [op for op in patch_operations
            if not (op.get("op") == "remove" and op.get("path") == "/apiStages" and op.get("value") not in held)]
    return _apply_patch_operations(self, kept)


def apply():
    UsagePlan.apply_patch_operations = _remove_absent_stages_as_nothing
