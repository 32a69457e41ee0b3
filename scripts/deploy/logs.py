"""`make aws-lambda-logs`: an environment's function lines, readable, from CloudWatch Logs.

The groups are the ones Terraform made (its `log_groups` and `platform_log_groups` outputs):
each function's telemetry group, where books-telemetry ships the function's lines, the
platform's reports and its own lines (`source: extension`); Lambda's own group of the function
when the environment keeps it (an extension that cannot ship writes its errors there); the
stage's access log for FUNCTION=api. ENV=local reads the local cloud `make run` serves, through
its ready file and its Terraform state, so the same command works before any deployment.

A line prints as `time  level  request id  message  key=value…` (JSON=1: the events as
stored). Metric documents (EMF) are left out: they are read as metrics. FOLLOW=1 polls every
two seconds and prints what arrives, late batches included (an extension ships after the
invocation), each event once.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

import boto3

from .errors import Refusal

LOCAL = "local"
ROLES = ("command", "query", "projector")
POLL_SECONDS = 2.0
# How far back a poll looks again for events stored late (an extension's flush after the
# invocation, a retried batch): comfortably more than books-telemetry's flush interval.
LATE_MS = 120_000
# The fields every line carries, shown in their own columns or not at all.
STANDARD_FIELDS = {"timestamp", "level", "message", "request_id", "function_name", "function_version",
                   "cold_start", "trace_id", "service", "target", "source"}
COLOURS = {"ERROR": "31", "WARN": "33", "WARNING": "33", "REPORT": "36", "START": "2", "INIT": "36"}


@dataclass(frozen=True)
class Request:
    """What the user asked to read."""

    function: str | None
    start_ms: int
    pattern: str | None
    follow: bool
    raw: bool


def since_ms(text: str | None, now_ms: int) -> int:
    """SINCE: `90s`, `10m`, `2h`, `3d` ago, or a UTC time (`2026-12-07T08:00:00Z`)."""
    text = (text or "10m").strip()
    found = re.fullmatch(r"(\d+)\s*([smhd])", text)
    if found:
        seconds = int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
        return now_ms - seconds * 1000
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Refusal(f"SINCE={text}: a duration (90s, 10m, 2h, 3d) or a UTC time (2026-12-07T08:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


def groups(outputs: dict, function: str | None) -> dict[str, str]:
    """Log group by the name its lines are shown under, from the environment's outputs."""
    telemetry = outputs["log_groups"]["value"]
    platform = (outputs.get("platform_log_groups") or {}).get("value") or {}
    if function == "api":
        return {"api": telemetry["api_access"]}
    if function is not None and function not in ROLES:
        raise Refusal(f"FUNCTION={function}: one of {', '.join(ROLES)}, or api (the stage's access log)")
    chosen = [function] if function else list(ROLES)
    found = {role: telemetry[role] for role in chosen}
    found.update({f"{role} (Lambda)": platform[role] for role in chosen if role in platform})
    return found


# --- rendering -----------------------------------------------------------------------------------

def _time(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return json.dumps(text) if (not text or any(c.isspace() for c in text)) else text


def _platform(kind: str, record: Any) -> tuple[str, str]:
    """A platform event's level column and message."""
    record = record if isinstance(record, dict) else {"record": record}
    metrics = record.get("metrics") or {}
    if kind == "platform.report":
        parts = [f"{metrics.get('durationMs', '?')} ms (billed {metrics.get('billedDurationMs', '?')} ms)",
                 f"{metrics.get('maxMemoryUsedMB', '?')} of {metrics.get('memorySizeMB', '?')} MB"]
        if "initDurationMs" in metrics:
            parts.append(f"init {metrics['initDurationMs']} ms")
        parts.append(record.get("status", "?"))
        if record.get("errorType"):
            parts.append(record["errorType"])
        return "REPORT", ", ".join(parts)
    if kind == "platform.start":
        return "START", f"version {record.get('version', '?')}"
    if kind in ("platform.initReport", "platform.initStart", "platform.initRuntimeDone"):
        return "INIT", f"{kind.split('.', 1)[1]} {_value(record.get('status') or record.get('initializationType') or '')}" \
            + (f", {metrics['durationMs']} ms" if "durationMs" in metrics else "")
    fields = " ".join(f"{key}={_value(value)}" for key, value in record.items() if key != "requestId")
    return "PLATFORM", f"{kind.split('.', 1)[-1]} {fields}".strip()


def _access(line: dict) -> tuple[str, str, str, str]:
    """A line of the stage's access log (terraform/modules/api: its format)."""
    text = f"{line['httpMethod']} {line.get('resourcePath', '')} {line['status']} {line.get('latencyMs', '?')} ms"
    shown = ("apiKeyId", "ip", "errorType", "integrationError")
    extra = " ".join(f"{key}={_value(line[key])}" for key in shown if line.get(key) not in (None, "", "-"))
    return "ACCESS", str(line.get("requestId", "")), text, extra


def render(message: str, ms: int, group_label: str | None, colour: bool) -> str | None:
    """One stored event as a readable line; None for a metric document (EMF)."""
    try:
        line = json.loads(message)
    except ValueError:
        line = None
    if not isinstance(line, dict):
        level, request_id, text, extra = "", "", message.rstrip("\n"), ""
    elif "_aws" in line:
        return None
    elif str(line.get("type", "")).startswith("platform."):
        level, text = _platform(line["type"], line.get("record"))
        record = line.get("record")
        request_id = line.get("request_id") or (record.get("requestId", "") if isinstance(record, dict) else "")
        extra = ""
    elif "httpMethod" in line and "status" in line:
        level, request_id, text, extra = _access(line)
    else:
        level = str(line.get("level", ""))
        request_id = line.get("request_id", "")
        text = str(line.get("message", ""))
        if line.get("source") == "extension":
            text = f"[extension] {text}"
        extra = " ".join(f"{key}={_value(value)}" for key, value in line.items() if key not in STANDARD_FIELDS)
    level_column = f"{level:<8}"
    if colour and level.upper() in COLOURS:
        level_column = f"\033[{COLOURS[level.upper()]}m{level_column}\033[0m"
    columns = [_time(ms), *([f"{group_label:<9}"] if group_label else []), level_column, f"{request_id or '-':<36}",
               text + (f"  {extra}" if extra else "")]
    return "  ".join(columns)


# --- reading -------------------------------------------------------------------------------------

def events(client, group: str, start_ms: int, pattern: str | None) -> Iterable[dict]:
    """Every event of the group from start_ms on that matches the pattern (CloudWatch's syntax)."""
    arguments = {"logGroupName": group, "startTime": start_ms}
    if pattern:
        arguments["filterPattern"] = pattern
    for page in client.get_paginator("filter_log_events").paginate(**arguments):
        yield from page["events"]


def tail(client, by_label: dict[str, str], request: Request, out: TextIO,
         now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Prints the events once each, oldest first; with follow, then polls until interrupted.
    Returns how many were printed."""
    seen: dict[str, int] = {}
    start, printed = request.start_ms, 0
    colour = out.isatty() and not request.raw
    label = len(by_label) > 1
    while True:
        polled_at = now_ms()
        fresh = []
        for name, group in by_label.items():
            try:
                found = list(events(client, group, start, request.pattern))
            except client.exceptions.ResourceNotFoundException:
                raise Refusal(f"log group {group} ({name}) does not exist: is the environment provisioned?") from None
            fresh += [(event["timestamp"], name, event) for event in found if event["eventId"] not in seen]
        for timestamp, name, event in sorted(fresh, key=lambda item: (item[0], item[2]["eventId"])):
            seen[event["eventId"]] = timestamp
            line = event["message"].rstrip("\n") if request.raw else render(
                event["message"], timestamp, name if label else None, colour)
            if line is not None:
                print(line, file=out, flush=True)
                printed += 1
        if not request.follow:
            return printed
        start = max(request.start_ms, polled_at - LATE_MS)
        seen = {event_id: ms for event_id, ms in seen.items() if ms >= start}
        sleep(POLL_SECONDS)


# --- where the environment is --------------------------------------------------------------------

@dataclass(frozen=True)
class LocalCloud:
    """The local cloud `make run` serves: its ready file and Terraform state."""

    ready: Path
    tfstate: Path

    def open(self) -> tuple[Any, dict]:
        if not self.ready.exists():
            raise Refusal(f"no local cloud is serving ({self.ready} is missing): start one with make run")
        ready = json.loads(self.ready.read_text())
        if ready.get("pid") and not Path(f"/proc/{ready['pid']}").exists():
            raise Refusal(f"the local cloud that wrote {self.ready} (pid {ready['pid']}) is not running: start it with make run")
        if not self.tfstate.exists():
            raise Refusal(f"{self.tfstate} is missing: the local cloud's Terraform state (make run writes it)")
        outputs = json.loads(self.tfstate.read_text())["outputs"]
        client = boto3.client("logs", endpoint_url=ready["aws_endpoint_url"], region_name=ready["region"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        return client, outputs


def print_logs(client, outputs: dict, request: Request, out: TextIO = sys.stdout) -> int:
    by_label = groups(outputs, request.function)
    where = ", ".join(by_label.values())
    print(f"==> {where} since {_time(request.start_ms)} UTC"
          + (f", matching {request.pattern}" if request.pattern else "")
          + (" (following: Ctrl-C stops)" if request.follow else ""), file=sys.stderr, flush=True)
    try:
        return tail(client, by_label, request, out)
    except KeyboardInterrupt:
        return 0
