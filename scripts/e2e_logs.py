"""`make aws-lambda-logs ENV=local` against a running local cloud (scripts/e2e-local runs it):
a book created through the API is found by a JSON filter pattern on its id, printed as a
readable line; then FOLLOW=1 prints the line of a request made after it started, and stops
cleanly at Ctrl-C. The make target is run as a user types it, the pattern's `$` included.

  python scripts/e2e_logs.py READY_FILE TFSTATE
"""

import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import threading
import time

from local_cloud import ROOT, Stage, until

# time, the group (when several are read: the function's and Lambda's own), level, request id,
# message: what a reader of the printed line relies on.
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  (?:command +)?INFO +[0-9a-f-]{36}  book created  "
                  r"book_id=(\S+)")
WAIT_S = 120


def make(ready_file, tfstate, *variables, **popen):
    environment = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    command = ["make", "-s", "-C", str(ROOT), "aws-lambda-logs", "ENV=local", f"LOCAL_READY={ready_file}",
               f"LOCAL_TFSTATE={tfstate}", *variables]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)


def isbn13():
    """A valid ISBN no other book of the cloud has (ISBNs are unique)."""
    digits = f"979{random.randrange(10**9):09d}"
    return digits + str((10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10)


def nudged_until(stage, check, timeout_s=WAIT_S):
    """Waits for `check`, invoking the command function again every two seconds meanwhile:
    Lambda freezes an environment right after its response, so the extension ships an
    invocation's lines during a later one (or at SHUTDOWN). Spaced, so that each invocation finds
    the previous one's environment idle again (its flush done) and reuses it, as the local cloud
    and Lambda reuse the most recent: two close together would start a second environment, and
    the first, never invoked again, would hold its lines until it is shut down."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(2)
        create_book(stage, "Nudge")
        if check():
            return True
    return False


def create_book(stage, title):
    status, document, _ = stage.call("POST", "/books", {"title": title, "authors": ["Logs Check"],
                                                       "isbn": isbn13(), "published_year": 2001})
    assert status == 201, (status, document)
    return document["id"]


def found_by_filter(ready_file, tfstate, stage, book_id):
    """The lines `make aws-lambda-logs` prints for the book's id, once the extension shipped them."""
    printed = []

    def lines():
        done = make(ready_file, tfstate, "FUNCTION=command", "SINCE=1h", f'FILTER={{ $.book_id = "{book_id}" }}')
        out, err = done.communicate(timeout=300)
        if done.returncode != 0:
            sys.exit(f"FAILED: make aws-lambda-logs exited {done.returncode}: {err}")
        printed[:] = out.splitlines()
        return printed
    if not nudged_until(stage, lines):
        sys.exit(f"FAILED: make aws-lambda-logs did not print the 'book created' line of {book_id} in {WAIT_S} s")
    return printed


def follows(ready_file, tfstate, stage, earlier):
    """FOLLOW=1 prints a line that arrives after it started, then stops at SIGINT with status 0.
    It has read what was there (the line of `earlier`, a book created before it started) before
    the book it must follow is created."""
    follower = make(ready_file, tfstate, "FUNCTION=command", "SINCE=10m", "FOLLOW=1",
                    "FILTER={ $.message = \"book created\" }")
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(follower.stdout), daemon=True)
    reader.start()
    until(f"make aws-lambda-logs FOLLOW=1 printing the line of {earlier}, there before it started",
          lambda: follower.poll() is not None or any(earlier in line for line in seen), WAIT_S)
    assert follower.poll() is None, f"FOLLOW=1 ended by itself: {follower.returncode} {follower.stderr.read()}"
    book_id = create_book(stage, "Followed")
    if not nudged_until(stage, lambda: any(book_id in line for line in seen)):
        os.killpg(follower.pid, signal.SIGTERM)
        sys.exit(f"FAILED: FOLLOW=1 did not print the line of {book_id} in {WAIT_S} s; it printed {seen} "
                 f"and on stderr {follower.stderr.read()!r}")
    os.killpg(follower.pid, signal.SIGINT)
    status = follower.wait(timeout=60)
    # Ctrl-C reaches make too, which ends by its own SIGINT once the command has exited.
    errors = follower.stderr.read()
    assert status in (0, -signal.SIGINT) and "Traceback" not in errors, f"FOLLOW=1 at Ctrl-C: {status} {errors}"
    return book_id


def main(ready_file, tfstate):
    stage = Stage(json.loads(pathlib.Path(ready_file).read_text()))
    book_id = create_book(stage, "Found in the logs")
    lines = found_by_filter(ready_file, tfstate, stage, book_id)
    matched = [LINE.match(line) for line in lines]
    assert all(matched) and {m.group(1) for m in matched} == {book_id}, \
        f"the filter on {book_id} printed other lines, or unreadably: {lines}"
    followed = follows(ready_file, tfstate, stage, book_id)
    print(f"logs: make aws-lambda-logs found {book_id} by its id; FOLLOW=1 printed {followed} as it arrived")


if __name__ == "__main__":
    main(*sys.argv[1:3])
