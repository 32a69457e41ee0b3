#!/usr/bin/env python3
"""A soak run of the local cloud: steady traffic for a while, every process watched.

    scripts/soak.py [--seconds 600] [--rate 20] [--sample-every 5]

Starts a local cloud of its own (`books-local up` through local_cloud.py, the debug binaries
staged by `make local-build`) and sends it a steady mix through the gateway with the API key
(creates, reads, lists, replaces) at --rate requests per second. Every --sample-every seconds it
reads, from /proc, the resident memory (VmRSS) and open file descriptors of books-local, the
local AWS endpoint, and every function and extension process, by role (the function binary, or
`books-telemetry` for the extension).

At the end it compares the telemetry produced with what was shipped: every request a function
answered writes one `request handled` line, and each must be in the function's telemetry log
group in CloudWatch Logs (read back with boto3) once the idle environments have been spun down
(15 s idle here; an extension ships what its frozen environment held at SHUTDOWN).

Fails when, over the steady part of the run (after the first quarter), a role's resident memory
per process (the endpoint's excepted: it holds the data) grew by more than its bound — NOISE_FACTOR
times the role's own noise in the second quarter, and at least GROWTH_FLOOR_MB — its descriptors per
process by more than FD_GROWTH and FD_GROWTH_SHARE together, or a handled request's line was not
shipped. Writes .build/soak/samples.json and summary.json, for the reliability report's plot.
"""

import argparse
import collections
import json
import os
import pathlib
import random
import statistics
import sys
import threading
import time

from local_cloud import BUILD, LocalCloud, processes
from provenance import commit

OUT = BUILD / "soak"
# Memory growth allowed over the steady part, per process of a role, from the baseline: ten times
# the role's own noise (how far its per-sample mean RSS strays from its trend over the second
# quarter: a leak is a trend, and must not widen its own bound), at least
# GROWTH_FLOOR_MB. Measured: five clean make test runs and a ten-minute run grew at most 0.2 MB
# per process, with a noise of at most 0.16 MB; the former bound (16 MB and 25 % together) let
# a 15 MB leak of books-local through.
NOISE_FACTOR = 10
GROWTH_FLOOR_MB = float(os.environ.get("SOAK_GROWTH_FLOOR_MB", 2))
# Descriptors: books-local holds a few per live environment, and how many environments live
# follows the machine's load (144 → 161 in a ten-minute run): both must be exceeded to fail.
FD_GROWTH = int(os.environ.get("SOAK_FD_GROWTH", 8))
FD_GROWTH_SHARE = 0.25
SHIP_WAIT_S = 240
IDLE_S = 15
ENDPOINT = "endpoint (moto)"


def traffic(cloud, deadline, rate, answered, seed):
    """One client at `rate` requests per second (a fixed schedule: late requests do not bunch)."""
    rng = random.Random(seed)
    books, n, next_at = [], 0, time.monotonic()
    while time.monotonic() < deadline:
        n += 1
        op = rng.choices(["create", "get", "list", "replace"], weights=[20, 50, 15, 15])[0] if books else "create"
        if op == "create":
            isbn = f"979{seed:02d}{n:07d}"
            isbn += str((10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(isbn)) % 10) % 10)
            status, book, _ = cloud.call("POST", "/books", {"title": f"soak {seed}-{n}", "authors": ["Soak"],
                                                         "isbn": isbn, "published_year": 2020})
            if status == 201:
                books.append(book)
            service = "command"
        elif op == "get":
            status, _, _ = cloud.call("GET", f"/books/{rng.choice(books)['id']}")
            service = "query"
        elif op == "list":
            status, _, _ = cloud.call("GET", "/books?limit=20")
            service = "query"
        else:
            book = rng.choice(books)
            body = {k: book[k] for k in ("title", "authors", "isbn", "published_year")}
            status, replaced, _ = cloud.call("PUT", f"/books/{book['id']}", body, {"If-Match": f'"{book["version"]}"'})
            if status == 200:
                books[books.index(book)] = replaced
            service = "command"
        if status is not None and status not in (403, 429, 502, 504):  # answered by the function
            answered[service] += 1
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))


def shipped_lines(cloud, group):
    logs, count, token = cloud.aws("logs"), 0, None
    while True:
        page = logs.filter_log_events(logGroupName=group, **({"nextToken": token} if token else {}))
        count += sum(1 for event in page["events"] if '"request handled"' in event["message"])
        token = page.get("nextToken")
        if not token:
            return count


def noise_of(series):
    """How far a series of (t, value) strays from its own straight line (least squares): its
    noise without its trend, so that a leak, which is a trend, does not widen its own bound."""
    if len(series) < 3:
        return 0.0
    ts, values = [t for t, _ in series], [v for _, v in series]
    t_mean, v_mean = statistics.mean(ts), statistics.mean(values)
    spread = sum((t - t_mean) ** 2 for t in ts)
    slope = sum((t - t_mean) * (v - v_mean) for t, v in series) / spread if spread else 0.0
    return max(abs(v - (v_mean + slope * (t - t_mean))) for t, v in series)


def growth(samples, role):
    """Per-process RSS and descriptors of a role, early (second quarter) and late (last quarter)."""
    points = [(s["t"], p) for s in samples for p in s["processes"] if p["role"] == role]
    if not points:
        return None
    end = max(t for t, _ in points)
    early = [p for t, p in points if end * 0.25 <= t < end * 0.5]
    late = [p for t, p in points if t >= end * 0.75]
    if not early or not late:
        return None
    median = lambda ps, key: statistics.median(p[key] for p in ps)  # noqa: E731
    by_sample = collections.defaultdict(list)
    for t, p in points:
        if end * 0.25 <= t < end * 0.5:
            by_sample[t].append(p["rss_mb"])
    # The median of the role's processes at each sample, as the growth is measured: a process that
    # starts (smaller) or ends moves a mean, not the median.
    noise = noise_of(sorted((t, statistics.median(rss)) for t, rss in by_sample.items()))
    return {"rss_early_mb": round(median(early, "rss_mb"), 1), "rss_late_mb": round(median(late, "rss_mb"), 1),
            "noise_mb": round(noise, 2), "bound_mb": round(max(GROWTH_FLOOR_MB, NOISE_FACTOR * noise), 1),
            "fds_early": median(early, "fds"), "fds_late": median(late, "fds"),
            "processes_late": round(len(late) / max(1, len({t for t, p in points if t >= end * 0.75})), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=float, default=20, help="requests per second, all clients together")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample-every", type=float, default=5)
    args = parser.parse_args()
    print(f"==> soak: {args.seconds} s at {args.rate} requests/s", flush=True)
    ran_at = commit()
    # Idle environments spin down after IDLE_S, as Lambda's do after a while: at SHUTDOWN the
    # extension ships what a frozen environment held, so every line can be counted at the end.
    cloud = LocalCloud("soak", ["--idle-timeout-secs", str(IDLE_S)])
    try:
        rootfs = pathlib.Path(cloud.ready["rootfs"]).resolve()
        answered = collections.Counter()
        started = time.monotonic()
        deadline = started + args.seconds
        clients = [threading.Thread(target=traffic, args=(cloud, deadline, args.rate / args.clients, answered, n))
                   for n in range(args.clients)]
        for thread in clients:
            thread.start()
        samples = []
        while time.monotonic() < deadline:
            found = processes(cloud.ready["pid"], cloud.ready.get("endpoint_pid"), rootfs)
            samples.append({"t": round(time.monotonic() - started, 1),
                            "processes": [{"role": r, "pid": p, "rss_mb": round(m, 2), "fds": f}
                                          for r, p, m, f in found]})
            time.sleep(args.sample_every)
        for thread in clients:
            thread.join()
        (OUT / "samples.json").write_text(json.dumps(samples) + "\n")

        failures = []
        roles = sorted({p["role"] for s in samples for p in s["processes"]})
        growths = {role: growth(samples, role) for role in roles}
        for role, g in growths.items():
            # The endpoint holds every item, stream record, log event and metric sent to it: it
            # grows with the data by design (reported, not bounded).
            if g is None or role == ENDPOINT:
                continue
            grown = g["rss_late_mb"] - g["rss_early_mb"]
            if grown > g["bound_mb"]:
                failures.append(f"{role}: resident memory grew from {g['rss_early_mb']} to {g['rss_late_mb']} MB "
                                f"(bound {g['bound_mb']} MB: its noise {g['noise_mb']} MB)")
            fds_grown = g["fds_late"] - g["fds_early"]
            if fds_grown > FD_GROWTH and fds_grown > FD_GROWTH_SHARE * g["fds_early"]:
                failures.append(f"{role}: open descriptors grew from {g['fds_early']} to {g['fds_late']}")

        groups = cloud.output("log_groups")
        shipped = {}
        for service in ("command", "query"):
            group = groups[service]
            # The extension ships within its flush interval, or at the next invocation; wait for it.
            deadline = time.monotonic() + SHIP_WAIT_S
            while (count := shipped_lines(cloud, group)) < answered[service] and time.monotonic() < deadline:
                time.sleep(5)
            shipped[service] = count
            if count != answered[service]:
                failures.append(f"{service}: {answered[service]} requests handled, {count} 'request handled' lines "
                                f"shipped to {group}")

        summary = {"commit": ran_at, "seconds": args.seconds, "rate": args.rate, "answered": dict(answered), "shipped": shipped,
                   "samples": len(samples), "growth": growths,
                   "bounds": {"noise_factor": NOISE_FACTOR, "growth_floor_mb": GROWTH_FLOOR_MB,
                              "fd_growth": FD_GROWTH, "fd_growth_share": FD_GROWTH_SHARE},
                   "failures": failures}
        (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\n{'role':<22}{'RSS early':>10}{'RSS late':>10}{'bound':>7}{'fds early':>10}{'fds late':>10}"
              f"{'procs':>7}")
        for role, g in growths.items():
            if g:
                print(f"{role:<22}{g['rss_early_mb']:>10}{g['rss_late_mb']:>10}{g['bound_mb']:>7}{g['fds_early']:>10}"
                      f"{g['fds_late']:>10}{g['processes_late']:>7}")
        print(f"telemetry: handled {dict(answered)}, shipped {shipped}")
        for failure in failures:
            print(f"FAILED: {failure}")
        return 1 if failures else 0
    finally:
        cloud.stop()


if __name__ == "__main__":
    sys.exit(main())
