#!/usr/bin/env python3
"""Checks a report written by `make bench` (used on the short run of `make test-bench`):
every part is there with its plots, every goal was measured, and no request failed.

    check_bench.py DIR      (DIR holds report.md and its SVG plots)
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import cost  # noqa: E402

PARTS = ["## Goals", "## 1. Cold start", "## 2. Extension cost per invocation", "## 3. Telemetry pipeline throughput",
         "## 4. API throughput", "## 5. Side by side with a peer", "## 6. Data plane as the tables grow",
         "## 7. Our stack alone", "## 8. Other local Lambda emulators, side by side", "## 9. Cost and capacity",
         "## 10. Against the floor"]


def problems(directory):
    with open(os.path.join(directory, "report.md")) as f:
        text = f.read()
    found = [f"missing section {part!r}" for part in PARTS if part not in text]
    for plot in re.findall(r"\]\(([\w.-]+\.svg)\)", text):
        path = os.path.join(directory, plot)
        if not os.path.exists(path) or os.path.getsize(path) < 1000:
            found.append(f"plot {plot} is missing or empty")
    if len(re.findall(r"\]\(([\w.-]+\.svg)\)", text)) < 4:
        found.append("fewer than four plots")
    goals = text.split("## Goals", 1)[-1].split("## 1.", 1)[0]
    for row in goals.splitlines():
        if row.startswith("| ") and ("–" in row or "not measured" in row) and "telemetry pipeline" not in row:
            found.append(f"goal not measured: {row}")
    api = text.split("## 4. API throughput", 1)[-1].split("## 5.", 1)[0]
    rows = [row.split("|")[1:-1] for row in api.splitlines() if row.startswith("| GET") or row.startswith("| POST")]
    for operation in ("GET", "POST"):
        if not any(cells[0].strip() == operation for cells in rows):
            found.append(f"no {operation} run in the API throughput")
    for cells in rows:
        if int(cells[-1]) != 0 or int(cells[-2]) == 0:
            found.append(f"API run with errors or no requests: {'|'.join(cells)}")
    own = text.split("## 7. Our stack alone", 1)[-1].split("\n## ", 1)[0]
    runs = [row.split("|")[1:-1] for row in own.splitlines() if re.match(r"\| \d+ \| (on|off) \|", row)]
    if not runs:
        found.append("no run of our stack alone")
    for cells in runs:
        if int(cells[6]) != 0 or int(cells[5]) == 0:
            found.append(f"own-stack run with errors or no requests: {'|'.join(cells)}")
    if "Profile (`perf record" not in own and "No profile in this run" not in own:
        found.append("the profile of our stack alone is neither there nor said to be left out")
    floor = text.split("## 10. Against the floor", 1)[-1].split("\n## ", 1)[0]
    # The extension table's rows of ours: the ones that end with the reports shipped.
    ours = [row.split("|")[1:-1] for row in floor.splitlines()
            if row.startswith("| books-telemetry, ") and re.search(r"\| (\d+|–) of \d+ \|$", row)]
    if not ours:
        found.append("no books-telemetry run against the floor")
    for cells in ours:
        reports, _, invocations = cells[-1].strip().partition(" of ")
        if not reports.isdigit() or reports != invocations:
            found.append(f"books-telemetry did not ship one report per invocation against the floor: {'|'.join(cells)}")
    found += cost_problems(directory)
    return found


def cost_problems(directory):
    """The cost figures: every function invoked and billed, every kind of request moving
    DynamoDB units, logs shipped both ways, and each environment priced (make cost's report)."""
    path = os.path.join(directory, "cost-figures.json")
    if not os.path.exists(path):
        return ["no cost-figures.json beside the report"]
    with open(path) as f:
        figures = json.load(f)
    found = []
    for role, measured in figures["functions"].items():
        if not measured["invocations"] or not measured["billed_ms_mean"] > 0:
            found.append(f"cost figures: {role} was not invoked or not billed: {measured}")
        for way in ("telemetry_bytes_per_invocation", "default_bytes_per_invocation"):
            if not figures["logs"][way][role] > 0:
                found.append(f"cost figures: no {way.replace('_', ' ')} for {role}")
    expected = {"post": ("command", "write_units"), "get": ("query", "read_units"), "list": ("query", "read_units")}
    for kind, (role, units) in expected.items():
        request = figures["requests"][kind]
        if request["invocations"][role] != 1 or not request["dynamodb"][units] > 0:
            found.append(f"cost figures: a {kind} should be one {role} invocation and move {units}: {request}")
    if not figures["logs"]["access_log_bytes_per_request"] > 0:
        found.append("cost figures: the stage's access log format was not read")
    if not figures["requests"]["post"]["invocations"]["projector"] > 0:
        found.append("cost figures: no projector invocation followed the POSTs")
    with open(os.path.join(ROOT, "bench", "prices.json")) as f:
        prices = json.load(f)
    for env in ("dev", "staging", "prod"):
        text = cost.report(figures, prices, env, 100, 0.9)
        if "| **total** |" not in text or "Capacity at 10,000 requests/s" not in text:
            found.append(f"cost report of {env} incomplete:\n{text}")
    return found


def main():
    found = problems(sys.argv[1])
    for problem in found:
        print(f"bench report: {problem}")
    if not found:
        print("bench report: every part, plot and goal is there; no request failed")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
