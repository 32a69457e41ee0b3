"""Releasing what provisioning published, and going back: each function's alias `live` (what the
API's integrations and the projector's stream mapping invoke) moved to the version Terraform's
apply published. Terraform creates the alias and then leaves where it points to this module
(terraform/modules/function), so a release and a rollback are Lambda calls, never a plan.

Two ways, per environment (Terraform's `release` variable, read back from its output):
- all at once: every alias to its new version in one call each;
- canary: each alias first sends `canary_percent` of its invocations to the new version (Lambda's
  weighted alias), for `canary_minutes`, while every alarm of the environment is watched; no
  alarm → all of the traffic; an alarm → every alias back where it was, and the release fails
  naming the alarm and its reason.

Lambda's weighted aliases rather than CodeDeploy's Lambda deployments: the same traffic shifting,
with no application, deployment group or service role to provision and grant, and rehearsed
locally (books-local routes by the alias's weights; moto has no CodeDeploy traffic shifting).

Each moved alias's description records the version it ran before (`previous version N`), so that
`make aws-lambda-rollback` finds it from any machine, CI's included, without local state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Refusal

STRATEGIES = ("all_at_once", "canary")
PREVIOUS = re.compile(r"previous version (\d+)")
# How often the alarms are read while a canary runs.
WATCH_EVERY_S = 10


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


@dataclass(frozen=True)
class Strategy:
    """Terraform's `release` output: `all_at_once`, or `canary` with its share and duration."""

    kind: str = "all_at_once"
    canary_percent: float = 10
    canary_minutes: float = 10

    @classmethod
    def of(cls, release: dict | None) -> Strategy:
        release = release or {}
        return cls(release.get("strategy", "all_at_once"), float(release.get("canary_percent") or 10),
                   float(release.get("canary_minutes") or 10))


def route_of(alias: dict) -> tuple[str, dict[str, float]]:
    """The version an alias (GetAlias's answer) names and the weights of any other it routes to."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return alias["FunctionVersion"], dict(weights)


def _point(lambda_client, function: Published, version: str, weights: dict[str, float], description: str) -> None:
    lambda_client.update_alias(FunctionName=function.name, Name=function.alias, FunctionVersion=version,
                               RoutingConfig={"AdditionalVersionWeights": weights}, Description=description)


def _moving(lambda_client, published: list[Published], said: Callable[[str], None]) -> list[tuple[Published, str, str]]:
    """The functions whose alias is not on its published version alone, with the version it runs
    and its description."""
    moving = []
    for function in published:
        alias = lambda_client.get_alias(FunctionName=function.name, Name=function.alias)
        before, weights = route_of(alias)
        if before == function.version and not weights:
            said(f"{function.name}:{function.alias} already runs version {function.version}")
        else:
            moving.append((function, before, alias.get("Description") or ""))
    return moving


def at_once(lambda_client, published: list[Published], said: Callable[[str], None] = print) -> None:
    """Every function's alias to its published version, all of the traffic at once."""
    for function, before, _ in _moving(lambda_client, published, said):
        _point(lambda_client, function, function.version, {}, f"previous version {before}")
        said(f"{function.name}:{function.alias} now runs version {function.version} (was {before})")


def alarms_in_alarm(cloudwatch, prefix: str) -> list[dict]:
    """The environment's alarms (named `<prefix>-…`, as Terraform names them) now in ALARM."""
    found = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"{prefix}-", StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        found += page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
    return found


def canary(lambda_client, cloudwatch, prefix: str, published: list[Published], strategy: Strategy,
           said: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """A share of every moving alias's invocations to its new version while the environment's
    alarms are watched; then all of them, or, on an alarm, every alias back where it was and a
    Refusal naming the alarm."""
    moving = _moving(lambda_client, published, said)
    if not moving:
        return
    already = alarms_in_alarm(cloudwatch, prefix)
    if already:
        raise Refusal(f"alarm {already[0]['AlarmName']} is in ALARM before the release: a canary would be judged by it. "
                      f"Nothing was released (the aliases run what they ran); see to the alarm, then provision again, "
                      f"or release at once (release = {{ strategy = \"all_at_once\" }})")
    share = strategy.canary_percent / 100
    for function, before, description in moving:
        # What the alias recorded stays after the canary's words: a rollback during it finds it.
        _point(lambda_client, function, before, {function.version: share},
               f"canary of version {function.version}; {description}")
        said(f"{function.name}:{function.alias} sends {strategy.canary_percent:g}% of its invocations to version "
             f"{function.version} (the rest to {before})")
    said(f"canary: watching the alarms {prefix}-* for {strategy.canary_minutes:g} minutes")
    deadline = clock() + strategy.canary_minutes * 60
    while True:
        firing = alarms_in_alarm(cloudwatch, prefix)
        if firing:
            for function, before, description in moving:
                _point(lambda_client, function, before, {}, description)
                said(f"{function.name}:{function.alias} back to version {before}")
            alarm = firing[0]
            raise Refusal(f"canary rolled back: alarm {alarm['AlarmName']} is in ALARM ({alarm.get('StateReason', '')}). "
                          f"Every alias runs the version it ran before the release")
        if clock() >= deadline:
            break
        sleep(min(WATCH_EVERY_S, max(0.0, deadline - clock())))
    for function, before, _ in moving:
        _point(lambda_client, function, function.version, {}, f"previous version {before}")
        said(f"{function.name}:{function.alias} now runs version {function.version} (was {before})")


def rollback(lambda_client, functions: list[Published], said: Callable[[str], None] = print) -> None:
    """Every alias back to the version it ran before its last release, in one call each (during a
    canary: the canary's share taken off); refused, before any alias moves, where an alias
    records no previous version. A second rollback goes forward again."""
    targets = []
    for function in functions:
        alias = lambda_client.get_alias(FunctionName=function.name, Name=function.alias)
        current, weights = route_of(alias)
        description = alias.get("Description") or ""
        if weights:
            recorded = description.split("; ", 1)[1] if "; " in description else ""
            targets.append((function, current, recorded, f"the canary of version {next(iter(weights))} stopped"))
            continue
        previous = PREVIOUS.search(description)
        if not previous:
            raise Refusal(f"{function.name}:{function.alias} records no previous version (its description: "
                          f"{description!r}): nothing was rolled back")
        targets.append((function, previous.group(1), f"previous version {current}", f"was {current}"))
    for function, target, description, why in targets:
        _point(lambda_client, function, target, {}, description)
        said(f"{function.name}:{function.alias} now runs version {target} ({why})")
