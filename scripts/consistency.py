#!/usr/bin/env python3
"""A consistency checker for the CQRS pair under faults (Jepsen-style), through the local cloud.

    scripts/consistency.py [--seconds 60] [--clients 8] [--isbns 16] [--seed N]

Starts a local cloud of its own (`books-local up` through local_cloud.py, the debug binaries
staged by `make local-build`). Concurrent clients run random histories through the gateway with
the API key: creates (ISBNs drawn from a small pool, so they collide), replays of a create under
its idempotency key, replaces and deletes under `If-Match`, reads. Meanwhile a nemesis cycles
through faults:

- `dynamodb-errors`: a share of the functions' DynamoDB writes and reads fail (500) before they
  reach the table (the local endpoint's fault switch); the SDK retries;
- `lost-answers`: a share of the command's transactions are carried out and their answer lost;
  the SDK retries under the same invocation id (ClientRequestToken on AWS);
- `slow-dynamodb`: a share of the functions' DynamoDB calls are held longer than the SDK's
  attempt timeout (3 s, functions/books/src/config.rs) and then carried out: the SDK gives up
  and retries under the same invocation id; some transactions are carried out and answered only
  after the operation timeout (8 s), so the function answers 5xx for a write that happened;
- `projector-failing`: a share of the projector's writes to the read model fail, so batches
  fail and the event source mapping delivers them again (duplicates, out of order after a
  partial batch);
- `stream-reordered`: the stream reads the event source mapping makes answer their records
  shuffled, a third of them twice: deliveries out of order and duplicated within a batch;
- `kills`: function processes (command, query, projector) SIGKILLed mid-invocation.

Once the faults stop, it checks the history against the write model (read from DynamoDB with
boto3) and the read model (through the API):

1. every acknowledged create is in the write model, unless a delete of it may have succeeded;
2. nothing refused appears: no book carries the title of a create or replace that was refused;
3. at most one winner per `If-Match` version, and a replace of version v answers v + 1;
4. ISBNs are unique among live books, and each live book holds exactly one ISBN guard;
5. a replayed create answers as the first did (same book);
6. the read model converges to the write model within a bound: every live book is read at its
   version, every deleted one is 404, and the list holds exactly the live books;
7. each book's writes are linearizable: creates, replays, `PUT` and `DELETE` under `If-Match`
   with their start and end times, closed by the table's final state, against the write model's
   sequential contract, checked by stateright's linearizability tester
   (reliability/linearizability: `books-linearizability`, staged by `make local-build`).

An answer of 5xx, or none, is indeterminate: the operation may or may not have happened, and
the checks allow both. Prints the history's size, the faults injected and every anomaly, writes
the summary to .build/consistency/summary.json, and exits 1 on any anomaly.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

from local_cloud import BUILD, LocalCloud
from provenance import commit

OUT = BUILD / "consistency"
CONVERGE_BOUND_S = int(os.environ.get("CONSISTENCY_CONVERGE_S", 240))
# Definite refusals: the operation did not happen.
REFUSED = {400, 403, 404, 409, 412, 413, 415, 422, 428, 429}


def isbn13(n):
    digits = f"978{n:09d}"
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10) % 10
    return digits + str(check)




class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.operations = []
        self.book_ids = []  # ids some create answered, for replaces, deletes and reads
        self.started = time.monotonic()

    def add(self, operation, start):
        """Records an operation that began at `start` (time.monotonic()) and ends now."""
        end = time.monotonic()
        operation["at"] = round(end - self.started, 3)
        operation["start"], operation["end"] = start - self.started, end - self.started
        with self.lock:
            self.operations.append(operation)
            if operation["op"] in ("create", "replay") and operation["status"] == 201:
                self.book_ids.append(operation["id"])

    def some_book(self, rng):
        with self.lock:
            return rng.choice(self.book_ids) if self.book_ids else None


def client(cloud, history, number, deadline, seed, isbns):
    rng = random.Random(seed * 1000 + number)
    add = lambda operation, start: history.add(operation | {"client": number}, start)  # noqa: E731
    creates = []  # (key, body, first answer) of this client's creates
    n = 0
    while time.monotonic() < deadline:
        n += 1
        op = rng.choices(["create", "replay", "replace", "delete", "read"], weights=[30, 8, 32, 10, 20])[0]
        if op == "replay" and creates:
            key, body, first = rng.choice(creates)
            start = time.monotonic()
            status, answer, _ = cloud.call("POST", "/books", body, {"Idempotency-Key": key})
            add({"op": "replay", "key": key, "title": body["title"], "first": first, "status": status,
                 "id": (answer or {}).get("id") if status == 201 else None}, start)
            continue
        book_id = history.some_book(rng)
        if op in ("create", "replay") or book_id is None:
            key, title = str(uuid.uuid4()), f"c{number}-{n}"
            body = {"title": title, "authors": [f"Author {number}"], "isbn": rng.choice(isbns), "published_year": 2001}
            start = time.monotonic()
            status, answer, _ = cloud.call("POST", "/books", body, {"Idempotency-Key": key})
            created = (answer or {}).get("id") if status == 201 else None
            add({"op": "create", "title": title, "isbn": body["isbn"], "status": status, "id": created}, start)
            creates.append((key, body, {"status": status, "id": created}))
            continue
        if op == "read":
            start = time.monotonic()
            status, answer, _ = cloud.call("GET", f"/books/{book_id}")
            add({"op": "read", "id": book_id, "status": status,
                 "version": (answer or {}).get("version") if status == 200 else None}, start)
            continue
        status, current, _ = cloud.call("GET", f"/books/{book_id}")
        if status != 200:
            continue
        version = current["version"]
        if op == "replace":
            title = f"r{number}-{n}"
            body = {k: current[k] for k in ("authors", "isbn", "published_year")} | {"title": title}
            start = time.monotonic()
            status, answer, _ = cloud.call("PUT", f"/books/{book_id}", body, {"If-Match": f'"{version}"'})
            add({"op": "replace", "id": book_id, "if_match": version, "title": title, "status": status,
                 "version": (answer or {}).get("version") if status == 200 else None}, start)
        else:
            start = time.monotonic()
            status, _, _ = cloud.call("DELETE", f"/books/{book_id}", headers={"If-Match": f'"{version}"'})
            add({"op": "delete", "id": book_id, "if_match": version, "status": status}, start)


def function_processes(rootfs):
    """Processes running a binary of the images' root file systems (functions and extensions)."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if exe.startswith(str(rootfs)) and "/var/task/" in exe:
            found.append(int(proc.name))
    return found


FAULT_KINDS = ["dynamodb-errors", "lost-answers", "slow-dynamodb", "projector-failing", "stream-reordered", "kills"]


def nemesis(cloud, deadline, rng, injected, kinds):
    """Cycles through the faults, each for a few seconds, with a calm spell between them."""
    dynamodb_errors = [
        {"operation": op, "status": 500, "code": "InternalServerError", "probability": 0.3}
        for op in ("TransactWriteItems", "GetItem", "PutItem", "Query")]
    lost_answers = [{"operation": "TransactWriteItems", "status": 500, "code": "InternalServerError",
                     "probability": 0.3, "after": True}]
    slow_dynamodb = [
        *({"operation": op, "delay": 4, "slow": True, "probability": 0.2} for op in ("TransactWriteItems", "GetItem", "Query")),
        {"operation": "TransactWriteItems", "status": 500, "code": "InternalServerError", "after": True,
         "delay": 10, "probability": 0.05}]
    stream_reordered = [{"operation": "GetRecords", "reorder": True}]
    projector_failing = [{"operation": "PutItem", "match": {"TableName": cloud.view_table}, "status": 500,
                          "code": "InternalServerError", "probability": 0.5}]
    rootfs = pathlib.Path(cloud.ready["rootfs"]).resolve()
    while time.monotonic() < deadline:
        kind = rng.choice(kinds)
        until_s = min(deadline, time.monotonic() + rng.uniform(3, 6))
        if kind == "kills":
            while time.monotonic() < until_s:
                victims = function_processes(rootfs)
                if victims:
                    try:
                        os.kill(rng.choice(victims), signal.SIGKILL)
                        injected["kills"] += 1
                    except ProcessLookupError:
                        pass
                time.sleep(rng.uniform(0.3, 1.0))
        else:
            faults = {"dynamodb-errors": dynamodb_errors, "lost-answers": lost_answers, "slow-dynamodb": slow_dynamodb,
                      "projector-failing": projector_failing, "stream-reordered": stream_reordered}[kind]
            for fault in faults:
                cloud.fault("POST", fault)
            time.sleep(max(0.0, until_s - time.monotonic()))
            for ended in cloud.fault("DELETE")["ended"]:
                injected[kind] += ended["failed"]
        time.sleep(rng.uniform(1, 3))


def write_model(cloud):
    books, guards = {}, []
    pages = cloud.aws("dynamodb").get_paginator("scan").paginate(TableName=cloud.books_table, ConsistentRead=True)
    for page in pages:
        for item in page["Items"]:
            pk = item["pk"]["S"]
            if pk.startswith("BOOK#"):
                books[pk[5:]] = {"title": item["title"]["S"], "isbn": item["isbn"]["S"],
                                 "version": int(item["version"]["N"])}
            elif pk.startswith("ISBN#"):
                guards.append(pk[5:])
    return books, guards


def check(history, books, guards):
    anomalies = []
    ops = history.operations
    maybe_deleted = {o["id"] for o in ops if o["op"] == "delete" and o["status"] not in REFUSED}
    # 1. acknowledged creates survive
    for o in ops:
        if o["op"] in ("create", "replay") and o["status"] == 201 and o["id"] not in books \
                and o["id"] not in maybe_deleted:
            anomalies.append(f"lost write: {o['op']} {o['title']} was acknowledged as {o['id']}, not in the write model")
    # 2. nothing refused appears. A create refused (409: its ISBN taken) and replayed later under its
    # idempotency key may succeed then: refusals are not remembered, the first success is.
    refused_titles = {o["title"]: o for o in ops if o["op"] in ("create", "replace") and o["status"] in REFUSED}
    for o in ops:
        if o["op"] == "replay" and o["status"] not in REFUSED:
            refused_titles.pop(o["title"], None)
    for book_id, book in books.items():
        if book["title"] in refused_titles:
            o = refused_titles[book["title"]]
            anomalies.append(f"refused write visible: {o['op']} {o['title']} answered {o['status']}, "
                             f"yet book {book_id} holds it")
    # 3. one winner per If-Match version
    winners = collections.Counter(
        (o["id"], o["if_match"]) for o in ops if o["op"] in ("replace", "delete") and o["status"] in (200, 204))
    for (book_id, version), count in winners.items():
        if count > 1:
            anomalies.append(f"{count} writes of book {book_id} won with If-Match {version}")
    for o in ops:
        if o["op"] == "replace" and o["status"] == 200 and o["version"] != o["if_match"] + 1:
            anomalies.append(f"replace of {o['id']} at version {o['if_match']} answered version {o['version']}")
        if o["op"] == "replace" and o["status"] == 200 and o["id"] in books \
                and books[o["id"]]["version"] < o["version"]:
            anomalies.append(f"book {o['id']} is at version {books[o['id']]['version']} after a replace "
                             f"acknowledged version {o['version']}")
    # 4. ISBN uniqueness and guards
    by_isbn = collections.Counter(book["isbn"] for book in books.values())
    for isbn, count in by_isbn.items():
        if count > 1:
            anomalies.append(f"ISBN {isbn} is held by {count} live books")
    if sorted(guards) != sorted(book["isbn"] for book in books.values()):
        anomalies.append(f"ISBN guards {sorted(guards)} do not match the live books' ISBNs "
                         f"{sorted(b['isbn'] for b in books.values())}")
    # 5. idempotent replays
    for o in ops:
        if o["op"] == "replay" and o["first"]["status"] == 201 and o["status"] is not None and o["status"] < 500:
            if (o["status"], o["id"]) != (201, o["first"]["id"]):
                anomalies.append(f"replay of {o['key']} answered {o['status']} {o['id']}, "
                                 f"the first answer was 201 {o['first']['id']}")
    return anomalies


def read_model_matches(cloud, books, ever):
    for book_id in ever:
        status, answer, _ = cloud.call("GET", f"/books/{book_id}")
        if book_id in books:
            if status != 200 or answer["version"] != books[book_id]["version"]:
                return f"book {book_id}: read {status} {answer and answer.get('version')}, " \
                       f"written version {books[book_id]['version']}"
        elif status != 404:
            return f"deleted book {book_id}: read {status}"
    listed, cursor = set(), None
    while True:
        status, page, _ = cloud.call("GET", "/books?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        if status != 200:
            return f"list answered {status}"
        listed |= {item["id"] for item in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if listed != set(books):
        return f"the list holds {len(listed)} books, the write model {len(books)}"
    return None


def check_linearizability(history, books):
    """Each book's writes, with their start and end times and the table's final state, through
    books-linearizability (stateright's tester): its JSON summary, or {"error": …}."""
    checker = BUILD / "bin" / "books-linearizability"
    if not checker.exists():
        return {"error": f"{checker} is missing: make local-build stages it"}
    path = OUT / "writes.json"
    path.write_text(json.dumps({"operations": history.operations,
                                "final_versions": {book_id: book["version"] for book_id, book in books.items()}}))
    started = time.monotonic()
    done = subprocess.run([str(checker), str(path)], capture_output=True, text=True, timeout=600)
    if done.returncode not in (0, 1):
        return {"error": (done.stderr or done.stdout).strip()[-2000:]}
    result = json.loads(done.stdout)
    result["seconds"] = round(time.monotonic() - started, 2)
    print(f"==> linearizability ({result['checker']}): {result['operations']} writes of {result['books']} books, "
          f"{result['indeterminate']} indeterminate, {len(result['violations'])} violations, "
          f"{result['seconds']} s", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="of history under faults")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--isbns", type=int, default=16, help="the pool creates draw from (small: they collide)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="comma-separated, of: " + ", ".join(FAULT_KINDS))
    args = parser.parse_args()
    print(f"==> consistency checker: {args.clients} clients, {args.seconds} s of faults, {args.isbns} ISBNs, "
          f"seed {args.seed}", flush=True)
    isbns = [isbn13(100000 + n) for n in range(args.isbns)]
    ran_at = commit()
    cloud = LocalCloud("consistency")
    tables = cloud.output("table_names")
    cloud.books_table, cloud.view_table = tables["books"], tables["books_view"]
    try:
        history = History()
        injected = collections.Counter()
        deadline = time.monotonic() + args.seconds
        with concurrent.futures.ThreadPoolExecutor(args.clients + 1) as pool:
            work = [pool.submit(client, cloud, history, n, deadline, args.seed, isbns) for n in range(args.clients)]
            work.append(pool.submit(nemesis, cloud, deadline, random.Random(args.seed), injected, args.faults.split(",")))
            for done in work:
                done.result()
        cloud.fault("DELETE")
        print(f"==> faults stopped: {dict(injected)}; {len(history.operations)} operations", flush=True)

        books, guards = write_model(cloud)
        anomalies = check(history, books, guards)
        ever = {o["id"] for o in history.operations if o["op"] in ("create", "replay") and o["status"] == 201}
        started, mismatch = time.monotonic(), "not checked yet"
        while mismatch and time.monotonic() - started < CONVERGE_BOUND_S:
            mismatch = read_model_matches(cloud, books, ever)
            if mismatch:
                time.sleep(2)
        converged_s = round(time.monotonic() - started, 1)
        if mismatch:
            anomalies.append(f"the read model did not converge within {CONVERGE_BOUND_S} s: {mismatch}")

        linearizability = check_linearizability(history, books)
        anomalies += [f"not linearizable: book {v['book']}: " + "; ".join(v["operations"])
                      for v in linearizability.get("violations", [])]
        if "error" in linearizability:
            anomalies.append(f"the linearizability checker failed: {linearizability['error']}")

        statuses = collections.Counter(f"{o['op']} {o['status']}" for o in history.operations)
        summary = {"commit": ran_at, "seed": args.seed, "clients": args.clients, "seconds": args.seconds, "isbns": args.isbns,
                   "operations": len(history.operations), "outcomes": dict(sorted(statuses.items())),
                   "faults": dict(injected), "live_books": len(books), "converged_s": None if mismatch else converged_s,
                   "linearizability": {k: v for k, v in linearizability.items() if k != "violations"},
                   "anomalies": anomalies}
        (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (OUT / "history.json").write_text(json.dumps(history.operations, indent=1) + "\n")
        print(json.dumps({k: v for k, v in summary.items() if k != "anomalies"}, indent=2))
        for anomaly in anomalies:
            print(f"ANOMALY: {anomaly}")
        print(f"==> {len(anomalies)} anomalies in {len(history.operations)} operations "
              f"(history: {OUT / 'history.json'})")
        return 1 if anomalies else 0
    finally:
        cloud.stop()


if __name__ == "__main__":
    sys.exit(main())
