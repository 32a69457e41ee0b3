"""Releasing what provisioning published: each function's alias `live` (what the API's
integrations and the projector's stream mapping invoke) moved to the version Terraform's apply
published. Terraform creates the alias and then leaves where it points to this step
(terraform/modules/function), so a release and a rollback are one Lambda call each, never a plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One function's alias and the version this provisioning published for it."""

    role: str
    name: str
    alias: str
    version: str

    @classmethod
    def all(cls, function_versions: dict) -> list[Published]:
        """From Terraform's `function_versions` output, in a stable order."""
        return [cls(role, v["name"], v["alias"], str(v["version"])) for role, v in sorted(function_versions.items())]


def route_of(alias: dict) -> tuple[str, dict[str, float]]:
    """The version an alias (GetAlias's answer) names and the weights of any other it routes to."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return alias["FunctionVersion"], dict(weights)


def at_once(lambda_client, published: list[Published]) -> list[str]:
    """Every function's alias to its published version, all of the traffic at once: what moved,
    one line each (a function already there is said so)."""
    said = []
    for function in published:
        before, weights = route_of(lambda_client.get_alias(FunctionName=function.name, Name=function.alias))
        if before == function.version and not weights:
            said.append(f"{function.name}:{function.alias} already runs version {function.version}")
            continue
        lambda_client.update_alias(FunctionName=function.name, Name=function.alias, FunctionVersion=function.version,
                                   RoutingConfig={"AdditionalVersionWeights": {}})
        said.append(f"{function.name}:{function.alias} now runs version {function.version} (was {before})")
    return said
