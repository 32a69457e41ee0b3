"""Traffic through a stage while releases happen, and what it saw (the deployment rehearsal's
release step: scripts/rehearsal).

  release_traffic.py run --url URL --key KEY --out FILE
      until SIGTERM: a client that creates a book and reads it back, again and again, writing one
      JSON line per request to FILE: {"t": <unix time>, "method", "status"};
  release_traffic.py wait --log FILE --marks FILE --after MARK [--count N]
      until N requests were answered after the mark (and the second the local Lambda takes to
      follow an alias);
  release_traffic.py check --log FILE --marks FILE
      the marks file holds JSON lines {"mark": <name>, "t": <unix time>} the rehearsal wrote
      around each release; checks that every 5XX was answered while the failing release had a
      share (between the marks `bad-release` and `bad-rolled-back`, plus the second within which
      the local Lambda follows an alias), that the failing release did answer some, and that
      requests went on being answered, none with a 5XX, before it, after it and after the
      rollback (`rolled-back`).
"""

import argparse
import json
import signal
import sys
import time
import urllib.error
import urllib.request

# How long after an alias moves the local Lambda may still send an invocation to the version it
# named (books-local reads aliases every second), plus one request's time.
FOLLOW_S = 2.5


def isbn13(n):
    """A valid ISBN-13 of its own for the n-th book (a book per ISBN: the command refuses another)."""
    digits = f"978{n % 10**9:09d}"
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10) % 10
    return digits + str(check)


def run(url, key, out):
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    n = 0
    with open(out, "a", buffering=1) as log:
        while not stopping:
            n += 1
            body = json.dumps({"title": f"Release traffic {n}", "authors": ["Rehearsal"],
                               "isbn": isbn13(n), "published_year": 2026}).encode()
            for method, path, data in (("POST", "/books", body), ("GET", "/books?limit=5", None)):
                request = urllib.request.Request(url + path, data=data, method=method,
                                                 headers={"x-api-key": key, "content-type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=35) as answer:
                        status = answer.status
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError:
                    status = 0  # no answer at all
                log.write(json.dumps({"t": time.time(), "method": method, "status": status}) + "\n")
            time.sleep(0.05)


def check(log, marks):
    requests = [json.loads(line) for line in open(log) if line.strip()]
    mark = {m["mark"]: m["t"] for m in (json.loads(line) for line in open(marks) if line.strip())}
    bad_from, bad_until = mark["bad-release"], mark["bad-rolled-back"] + FOLLOW_S
    problems = []
    failed = [r for r in requests if r["status"] >= 500 or r["status"] == 0]
    outside = [r for r in failed if not bad_from <= r["t"] <= bad_until]
    if outside:
        problems.append(f"{len(outside)} requests answered {sorted({r['status'] for r in outside})} outside the failing "
                        f"release's canary, the first at {outside[0]['t']:.3f} ({outside[0]['method']})")
    if not [r for r in failed if r not in outside]:
        problems.append("the failing release answered no request: its canary got no share")
    for name, start, end in (("before the failing release", min(r["t"] for r in requests), bad_from),
                             ("after it rolled back", bad_until, mark["rolled-back"]),
                             ("after make aws-lambda-rollback", mark["rolled-back"] + FOLLOW_S, float("inf"))):
        answered = [r for r in requests if start <= r["t"] < end and 0 < r["status"] < 500]
        if len(answered) < 5:
            problems.append(f"only {len(answered)} requests answered {name}")
    print(f"==> traffic: {len(requests)} requests, {len(failed)} failed, all while the failing release had its "
          f"share ({bad_until - bad_from:.1f} s)" if not problems else "==> traffic: " + "; ".join(problems))
    return 1 if problems else 0


def wait(log, marks, after, count, timeout_s):
    """Until `count` requests were answered later than the mark `after` and the follow window."""
    since = {m["mark"]: m["t"] for m in (json.loads(line) for line in open(marks) if line.strip())}[after] + FOLLOW_S
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answered = [r for r in (json.loads(line) for line in open(log) if line.strip())
                    if r["t"] > since and 0 < r["status"] < 500]
        if len(answered) >= count:
            return 0
        time.sleep(0.2)
    print(f"fewer than {count} requests answered in the {timeout_s} s after {after}")
    return 1


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    running = commands.add_parser("run")
    running.add_argument("--url", required=True)
    running.add_argument("--key", required=True)
    running.add_argument("--out", required=True)
    checking = commands.add_parser("check")
    checking.add_argument("--log", required=True)
    checking.add_argument("--marks", required=True)
    waiting = commands.add_parser("wait")
    waiting.add_argument("--log", required=True)
    waiting.add_argument("--marks", required=True)
    waiting.add_argument("--after", required=True)
    waiting.add_argument("--count", type=int, default=20)
    waiting.add_argument("--timeout-s", type=float, default=120)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.url, args.key, args.out)
        return 0
    if args.command == "wait":
        return wait(args.log, args.marks, args.after, args.count, args.timeout_s)
    return check(args.log, args.marks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
