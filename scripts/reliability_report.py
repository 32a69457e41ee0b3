#!/usr/bin/env python3
"""Writes reliability/report.md and reliability/soak.png from the last runs of the fuzzer
(.build/fuzz/summary.json), the consistency checker (.build/consistency/summary.json) and the
soak run (.build/soak/summary.json, samples.json): `make reliability` runs the three, then this.

    scripts/reliability_report.py [--out reliability]
"""

import argparse
import collections
import json
import os
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench_report import machine  # noqa: E402  (the host, described as the benchmark report does)
from provenance import commit  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("BUILD", ROOT / ".build")).resolve()

FAULTS = {
    "dynamodb-errors": "a share of the functions' DynamoDB reads and writes answered 500 before reaching the "
                       "table (the SDK retries): retries never write twice, errors never reach a client as success",
    "lost-answers": "a share of the command's transactions carried out and their answer lost (the SDK retries "
                    "under the same invocation id, ClientRequestToken on AWS): a write is acknowledged once and "
                    "never refused after it happened",
    "slow-dynamodb": "a share of the functions' DynamoDB calls held past the SDK's attempt timeout (3 s) and then "
                     "carried out, some past the operation's (8 s): a retry races its own first attempt "
                     "(one effect per ClientRequestToken), a write answered 5xx may have happened, none is "
                     "acknowledged without happening",
    "stream-reordered": "stream reads answering their records shuffled, a third twice, plus earlier records late: "
                        "the projector's version conditions keep the newest state whatever the delivery order",
    "projector-failing": "a share of the projector's writes to the read model failing: batches fail and are "
                         "delivered again, partly and out of order; the read model still converges",
    "kills": "function processes SIGKILLed mid-invocation (Runtime.ExitError): answers are indeterminate "
             "(502), nothing acknowledged is lost, the mapping retries a killed batch",
}


def load(path):
    if not path.exists():
        sys.exit(f"no {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: run make reliability "
                 f"(or the part that writes it: make fuzz, make consistency, make soak)")
    return json.loads(path.read_text())


def soak_plot(samples, out):
    roles = sorted({p["role"] for s in samples for p in s["processes"]})
    fig, (rss, fds) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for role in roles:
        times, memory, descriptors = [], [], []
        for sample in samples:
            mine = [p for p in sample["processes"] if p["role"] == role]
            if mine:
                times.append(sample["t"] / 60)
                memory.append(max(p["rss_mb"] for p in mine))
                descriptors.append(max(p["fds"] for p in mine))
        rss.plot(times, memory, label=role)
        fds.plot(times, descriptors, label=role)
    rss.set_ylabel("resident memory, MB\n(largest process of the role)")
    fds.set_ylabel("open descriptors\n(largest process of the role)")
    fds.set_xlabel("minutes")
    rss.legend(fontsize=8, loc="upper left")
    rss.set_title("Soak: every process of the local cloud under steady traffic")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def ran_at(summary):
    """The commit a part ran at, as its run recorded it when it started."""
    return f"At commit `{summary['commit']}`: " if summary.get("commit") else "At a commit its run did not record: "


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "reliability"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fuzz = load(BUILD / "fuzz" / "summary.json")
    consistency = load(BUILD / "consistency" / "summary.json")
    soak = load(BUILD / "soak" / "summary.json")
    soak_plot(load(BUILD / "soak" / "samples.json"), out / "soak.png")
    host = machine()

    lines = [
        "# Reliability report",
        "",
        f"Written by `make reliability` on {host['date']} at commit `{commit()}` (each part below names the "
        f"commit it ran at), on {host['cpu']} "
        f"({host['arch']}, {host['cores']} cores, {host['memory']}, Linux {host['kernel']}, {host['rustc']}): "
        "figures of one real run on this machine. Each part also runs in `make test` in a short form "
        "(10 s per fuzz target, 30 s of checked history over 16 ISBNs, a one-minute soak).",
        "",
        "## Fuzzing (`make fuzz`, `fuzz/README.md`)",
        "",
        f"{ran_at(fuzz)}cargo fuzz (libFuzzer), {fuzz['seconds_per_target']} s per target, sanitizer `{fuzz['sanitizer']}`; "
        "each target checks properties of the contract, not only the absence of a crash.",
        "",
        "| target | executions | exec/s | edges covered | corpus | result |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for t in fuzz["targets"]:
        lines.append(f"| `{t['target']}` | {t['executions'] or 0:,} | {t['exec_per_s'] or 0:,} | {t['edges'] or 0:,} "
                     f"| {t['corpus']:,} | {'**failed**' if t['failure'] else 'no failure'} |")
    total = sum(t["executions"] or 0 for t in fuzz["targets"])
    lines += [
        "",
        f"{total:,} executions in all. What fuzzing found so far is in `fuzz/README.md`; every input it "
        "failed on stays in `fuzz/regressions/`, replayed by `cargo test`.",
        "",
        "## Consistency under faults (`make consistency`, `scripts/consistency.py`)",
        "",
        f"{ran_at(consistency)}{consistency['clients']} concurrent clients, {consistency['seconds']} s of history under faults "
        f"over {consistency['isbns']} ISBNs "
        f"(seed {consistency['seed']}): **{consistency['operations']:,} operations, "
        f"{len(consistency['anomalies'])} anomalies**; {consistency['live_books']} live books at the end; the read "
        + (f"model converged {consistency['converged_s']} s after the faults stopped."
           if consistency["converged_s"] is not None else "model **did not converge**."),
        "",
        "| fault | injected | what it proves when no anomaly is found |",
        "|---|---:|---|",
    ]
    for kind, proves in FAULTS.items():
        lines.append(f"| {kind} | {consistency['faults'].get(kind, 0):,} | {proves} |")
    for kind in sorted(set(consistency["faults"]) - set(FAULTS)):
        lines.append(f"| {kind} | {consistency['faults'][kind]:,} | **not described**: add it to FAULTS in "
                     "scripts/reliability_report.py |")
    outcomes = collections.defaultdict(dict)
    for key, count in consistency["outcomes"].items():
        op, status = key.split(" ")
        outcomes[op][status] = count
    lines += ["", "Outcomes (HTTP status, or `None` for no answer):", ""]
    for op, statuses in sorted(outcomes.items()):
        lines.append(f"- {op}: " + ", ".join(f"{s} × {c}" for s, c in sorted(statuses.items())))
    lines += ["", "Checked after the faults: acknowledged writes present, refused ones absent, one winner per "
              "`If-Match` version, unique ISBNs with one guard per live book, replays answered as the first "
              "time, the read model equal to the write model.", ""]
    lin = consistency["linearizability"]
    lines += [f"Linearizability of each book's writes (creates, replays, `PUT` and `DELETE` under `If-Match`, "
              f"with their start and end times and the table's final state), by {lin['checker']} "
              "(reliability/linearizability): "
              + (f"**{lin['operations']:,} writes of {lin['books']:,} books, {lin['indeterminate']:,} of them "
                 f"indeterminate (5xx or no answer), linearizable**, checked in {lin['seconds']} s."
                 if "error" not in lin else f"**the checker failed**: {lin['error']}"), ""]
    for anomaly in consistency["anomalies"]:
        lines.append(f"- ANOMALY: {anomaly}")
    lines += [
        "The checker found two real faults so far, both in the local endpoint, both fixed in "
        "`scripts/local_endpoint/` (`dynamodb_atomic.py`, `transaction_tokens.py`): it read DynamoDB "
        "streams outside the lock of its transactions, so a "
        "poller could read a cancelled transaction's records and pass over the next real ones (an "
        "acknowledged replace never projected; behaviour 3); and it ignored a transaction's "
        "`ClientRequestToken`, so a create's first attempt, held past its timeout, was carried out after "
        "its retry had been refused (409) and the ISBN freed (a book the client was told was never "
        "created; behaviour 13). Planted in the product, it caught a projector without its version "
        "condition under `stream-reordered` (a deleted book still readable).",
        "",
        "## Soak (`make soak`, `scripts/soak.py`)",
        "",
        f"{ran_at(soak)}{soak['seconds']} s at {soak['rate']} requests/s through the gateway, {soak['samples']} samples of "
        "every process from `/proc`. Growth bound over the steady part (second quarter against last "
        f"quarter, per process), from the baseline: resident memory may grow {soak['bounds']['noise_factor']} "
        f"times the role's own noise over the second quarter, at least {soak['bounds']['growth_floor_mb']} MB "
        "(the bound column); descriptors more than "
        f"{soak['bounds']['fd_growth']} *and* {soak['bounds']['fd_growth_share']:.0%} of them (books-local's "
        "follow how many environments live); the endpoint (moto) holds the data and is reported only.",
        "",
        "![soak](soak.png)",
        "",
        "| role | RSS early (MB) | RSS late (MB) | bound (MB) | descriptors early | descriptors late | processes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for role, g in soak["growth"].items():
        if g:
            bound = "—" if role == "endpoint (moto)" else g["bound_mb"]
            lines.append(f"| {role} | {g['rss_early_mb']} | {g['rss_late_mb']} | {bound} | {g['fds_early']} "
                         f"| {g['fds_late']} | {g['processes_late']} |")
    endpoint = soak["growth"].get("endpoint (moto)")
    handled = sum(soak["answered"].values())
    if endpoint and handled:
        grown = endpoint["rss_late_mb"] - endpoint["rss_early_mb"]
        lines += ["", f"The endpoint grew {grown:.0f} MB between the two quarters, about "
                  f"{grown / (handled / 2) * 1000:.0f} MB per 1,000 requests: moto keeps every item, stream record, log "
                  "event and metric datapoint it is sent, and expires none of them (TTL, stream retention and "
                  "log retention are not applied). A `make run` session holds its data in memory the same way."]
    lines += [
        "",
        f"Telemetry: requests handled by the functions {soak['answered']}, `request handled` lines shipped to "
        f"CloudWatch Logs {soak['shipped']}.",
        "",
        "Result: " + ("**within bounds**." if not soak["failures"] else "**failed**: " + "; ".join(soak["failures"])),
        "",
        "## Planted bugs each part catches",
        "",
        "- fuzzing: the list fingerprint `author=…&tag=…` (two queries shared it) fails `cursor`; the "
        "gateway's hand-written `%XX` decoder fails `gateway_query` (found by the fuzzer itself).",
        "- consistency: stream reads outside the transactions' lock (the original moto patch) → the read "
        "model does not converge (a replace acknowledged at version 4, read at 3).",
        "- soak: 200 kB kept per gateway request in books-local → \"books-local: resident memory grew from "
        "77.9 to 133.5 MB\".",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    print(f"wrote {out / 'report.md'} and {out / 'soak.png'}")
    failed = any(t["failure"] for t in fuzz["targets"]) or consistency["anomalies"] or soak["failures"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
