"""The developer loop of `make watch` and `make run`, checked end to end (`make test-dev-loop`):

1. A local cloud in watch mode, its data saved in a folder of its own. A book is created and
   read back from the read model.
2. Watch: the text of the query function's 404 is changed in the source; the watcher rebuilds
   with cargo, and the API answers with the new text while the book is still there. The
   source is put back, and the old text comes back the same way.
3. Persistence: the cloud stops (the endpoint saves its state) and starts again from it: the
   book is there without a new write, the API key is the same, and a second book reaches the
   read model (the stream poller went on from its checkpoint).
4. Nothing was counted twice: after a third start, the projector was invoked once per book
   (a poller starting over would deliver the first record again) and `BooksCreated` sums to
   two (an EMF extraction starting over would count the first document again); and the usage
   plan's quota counted every request sent with the key across the restarts.

    scripts/dev_loop.py        (inside nothing: its local clouds start their own endpoints)
"""

import json
import os
import pathlib
import shutil
import time
import urllib.error
import urllib.request
import uuid

from local_cloud import BUILD, LocalCloud, until

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME = "dev-loop"
DATA = BUILD / NAME
# The text the watch step changes: the detail of a 404 for an unknown book (functions/books).
SOURCE = ROOT / "functions/books/src/http/problem.rs"
OLD_TEXT = "no book with this id"
NEW_TEXT = "no book with this id (rebuilt by watch mode)"
UNKNOWN_BOOK = "01JDQ5V8Z3K9W2M4N6P8R0T2V4"
# Generous: a rebuild of the functions in debug on a loaded 2-core machine takes minutes.
REBUILD_WAIT_S = int(os.environ.get("DEV_LOOP_REBUILD_WAIT_S", 900))


def step(text):
    print(f"==> {text}", flush=True)


class Cloud(LocalCloud):
    """One start of the local cloud in watch mode, its data kept across starts as `make run`
    keeps it."""

    def __init__(self, start):
        super().__init__(NAME, keep_data=True, watch=True, run=start)

    # Requests sent with the key, all starts together: what the usage plan's quota has counted.
    keyed_requests = 0

    def call(self, method, path, body=None, headers=None, timeout=60):
        Cloud.keyed_requests += 1
        status, document, _ = super().call(method, path, body, headers, timeout)
        assert status is not None, f"no answer to {method} {path}"
        return status, document

    def create(self, title, isbn):
        status, book = self.call("POST", "/books", {"title": title, "authors": ["Ursula K. Le Guin"],
                                                     "isbn": isbn, "published_year": 1974},
                                 {"Idempotency-Key": str(uuid.uuid4())})
        assert status == 201, (status, book)
        return book["id"]

    def projected(self, book_id):
        until(f"book {book_id} in the read model", lambda: self.call("GET", f"/books/{book_id}")[0] == 200, 120)

    def metric_sum(self, name, dimensions):
        cloudwatch = self.aws("cloudwatch")
        listed = cloudwatch.list_metrics(MetricName=name, Dimensions=dimensions)["Metrics"]
        assert listed, f"no {name} {dimensions} on the endpoint"
        now = time.time()
        points = cloudwatch.get_metric_statistics(
            Namespace=listed[0]["Namespace"], MetricName=name, Dimensions=dimensions, StartTime=now - 6 * 3600,
            EndTime=now + 60, Period=6 * 3600 + 60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)


def not_found_detail(cloud):
    status, problem = cloud.call("GET", f"/books/{UNKNOWN_BOOK}")
    assert status == 404, (status, problem)
    return problem["detail"]


def watch_cycle(cloud, book):
    original = SOURCE.read_text()
    written = f'"{OLD_TEXT}".to_owned()'
    assert original.count(written) == 1, f"{SOURCE} no longer holds {written}: update {__file__}"
    assert not_found_detail(cloud) == OLD_TEXT
    step(f"watch: {SOURCE.relative_to(ROOT)} answers \"{NEW_TEXT}\" now")
    try:
        SOURCE.write_text(original.replace(written, f'"{NEW_TEXT}".to_owned()'))
        until("the API answers with the changed text", lambda: not_found_detail(cloud) == NEW_TEXT,
              REBUILD_WAIT_S, pause_s=2)
    finally:
        SOURCE.write_text(original)
    assert cloud.call("GET", f"/books/{book}")[0] == 200, "the book created before the change is gone"
    step("watch: the source put back, the old text comes back")
    until("the API answers with the original text", lambda: not_found_detail(cloud) == OLD_TEXT,
          REBUILD_WAIT_S, pause_s=2)
    assert "new code for" in cloud.log.read_text(), "books-local did not print the functions it reloaded"


def main():
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    original = SOURCE.read_text()
    cloud = None
    try:
        step("start 1: an empty local cloud in watch mode")
        started_on = time.strftime("%Y-%m-%d", time.gmtime())
        cloud = Cloud(1)
        key = cloud.ready["api_key"]
        first = cloud.create("The Dispossessed", "9780060512750")
        cloud.projected(first)
        watch_cycle(cloud, first)
        cloud.stop_cleanly()

        step("start 2: from the saved data")
        cloud = Cloud(2)
        assert "resuming the local data" in cloud.log.read_text()
        assert cloud.ready["api_key"] == key, "the API key changed across the restart"
        status, book = cloud.call("GET", f"/books/{first}")
        assert status == 200 and book["title"] == "The Dispossessed", (status, book)
        second = cloud.create("The Left Hand of Darkness", "9780441478125")
        cloud.projected(second)
        cloud.stop_cleanly()

        step("start 3: nothing delivered or extracted twice, the quota counted on")
        cloud = Cloud(3)
        # What start 2 saved: its count went on from start 1's (a quota does not reset when the
        # local cloud restarts), unless a UTC day began meanwhile (then the plan starts over).
        with urllib.request.urlopen(cloud.ready["aws_endpoint_url"] + "/_books/emulator-state", timeout=30) as answer:
            quotas = json.load(answer).get("quotas", {})
        assert len(quotas) == 1, f"one key counted: {quotas}"
        (usage,) = quotas.values()
        if usage["period"] == started_on and usage["period"] == time.strftime("%Y-%m-%d", time.gmtime()):
            assert usage["used"] == Cloud.keyed_requests, \
                f"the quota counted {usage['used']} requests of the {Cloud.keyed_requests} sent with the key"
        else:
            print(f"    a UTC day began during the run: the quota count starts over ({usage})")
        status, listed = cloud.call("GET", "/books?limit=10")
        assert status == 200 and {b["id"] for b in listed["items"]} == {first, second}, (status, listed)
        invocations = cloud.metric_sum("Invocations", [{"Name": "FunctionName", "Value": "books-local-projector"}])
        created = cloud.metric_sum("BooksCreated", [{"Name": "Service", "Value": "command"}])
        cloud.stop_cleanly()
        cloud = None
        assert invocations == 2, f"the projector was invoked {invocations} times for two books: a record went twice"
        assert created == 2, f"BooksCreated sums to {created} for two books: an EMF document was counted twice"
    finally:
        if SOURCE.read_text() != original:
            SOURCE.write_text(original)
        if cloud is not None:
            cloud.stop()
    step("the developer loop holds: watch, restart, resume")


if __name__ == "__main__":
    main()
