#!/usr/bin/env python3
"""The local data plane as the tables grow: the command function's DynamoDB calls against the
local endpoint (moto, with scripts/moto_server.py's corrections) at several table sizes, in one
run, the sizes taking turns round by round.

Per size, a table shaped like the write model (terraform/tables.json's `books`, stream on) is
filled with books and their ISBN guards, then each round times, at every size in a shuffled order:
- *commit*: a POST's transaction (book, ISBN guard and idempotency record, each put only if absent);
- *cancel*: the same with an ISBN already taken (a 409: DynamoDB cancels it, moto rolls it back);
- *get*: a consistent GetItem of a stored book (a GET by id, or a write's idempotency lookup).

    bench_data_plane.py --out FILE [--sizes 0 10000 50000] [--rounds 30]

Talks to AWS_ENDPOINT_URL (`books-local endpoint` sets it); writes a JSON summary to FILE.
"""

import argparse
import json
import os
import random
import sys
import time
import uuid

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 25  # BatchWriteItem's limit


def isbn13(n):
    """The n-th valid ISBN-13 of a private range (unique per n)."""
    digits = [9, 7, 9] + [int(d) for d in f"{n:09d}"]
    check = -sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10
    return "".join(map(str, digits + [check]))


def book(book_id, isbn):
    return {"pk": {"S": f"BOOK#{book_id}"}, "title": {"S": f"Book {book_id}"}, "authors": {"L": [{"S": "A. Writer"}]},
            "isbn": {"S": isbn}, "published_year": {"N": "2001"}, "tags": {"L": [{"S": "bench"}]},
            "version": {"N": "1"}, "created_at": {"S": "2026-01-01T00:00:00Z"},
            "updated_at": {"S": "2026-01-01T00:00:00Z"}}


def guard(book_id, isbn):
    return {"pk": {"S": f"ISBN#{isbn}"}, "book_id": {"S": book_id}}


def create_table(dynamodb, name):
    schema = json.load(open(os.path.join(HERE, "..", "terraform", "tables.json")))["books"]
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": schema["hash_key"], "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": t} for k, t in schema["attributes"].items()],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": schema["stream_view_type"]})


def fill(dynamodb, name, books, first_isbn):
    """`books` books and their guards (2 items each); returns a stored book's id and ISBN."""
    items = []
    for n in range(books):
        book_id, isbn = uuid.uuid4().hex, isbn13(first_isbn + n)
        items += [book(book_id, isbn), guard(book_id, isbn)]
    for start in range(0, len(items), BATCH):
        pending = {name: [{"PutRequest": {"Item": item}} for item in items[start:start + BATCH]]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    if not books:
        return None
    return items[0]["pk"]["S"].removeprefix("BOOK#"), items[1]["pk"]["S"].removeprefix("ISBN#")


def post(book_id, isbn, table):
    absent = "attribute_not_exists(pk)"
    return [
        {"Put": {"TableName": table, "Item": book(book_id, isbn), "ConditionExpression": absent}},
        {"Put": {"TableName": table, "Item": guard(book_id, isbn), "ConditionExpression": absent}},
        {"Put": {"TableName": table, "ConditionExpression": f"{absent} OR expires_at < :now",
                 "ExpressionAttributeValues": {":now": {"N": str(int(time.time()))}},
                 "Item": {"pk": {"S": f"IDEMPOTENCY#{uuid.uuid4().hex}"}, "fingerprint": {"S": "f"},
                          "response": {"S": "{}"}, "expires_at": {"N": str(int(time.time()) + 86400)}}}},
    ]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))] if ordered else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 10_000, 50_000], help="items per table")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    dynamodb = boto3.client("dynamodb")
    run = uuid.uuid4().hex[:8]
    tables, stored, fill_s = {}, {}, {}
    next_isbn = random.randrange(10**8)
    for size in args.sizes:
        name = f"bench-data-plane-{run}-{size}"
        create_table(dynamodb, name)
        started = time.perf_counter()
        # At least one book in every table, for the cancelled POST's ISBN and the GET.
        books = max(1, size // 2)
        stored[size] = fill(dynamodb, name, books, next_isbn)
        next_isbn += books
        fill_s[size] = time.perf_counter() - started
        tables[size] = name
        print(f"  {name}: {2 * books} items in {fill_s[size]:.1f} s", flush=True)

    latency = {size: {"commit": [], "cancel": [], "get": []} for size in args.sizes}
    for _ in range(args.rounds):
        for size in random.sample(args.sizes, len(args.sizes)):
            table, (taken_id, taken_isbn) = tables[size], stored[size]
            started = time.perf_counter()
            dynamodb.transact_write_items(TransactItems=post(uuid.uuid4().hex, isbn13(next_isbn), table))
            latency[size]["commit"].append((time.perf_counter() - started) * 1000)
            next_isbn += 1
            started = time.perf_counter()
            try:
                dynamodb.transact_write_items(TransactItems=post(uuid.uuid4().hex, taken_isbn, table))
                raise SystemExit(f"a POST with a taken ISBN went through on {table}")
            except dynamodb.exceptions.TransactionCanceledException:
                latency[size]["cancel"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"BOOK#{taken_id}"}}, ConsistentRead=True)
            latency[size]["get"].append((time.perf_counter() - started) * 1000)
            assert "Item" in item, f"the stored book of {table} is gone"

    for size in args.sizes:
        dynamodb.delete_table(TableName=tables[size])
    summary = {"sizes": args.sizes, "rounds": args.rounds, "fill_s": fill_s, "latency_ms": latency,
               "items": {size: 2 * max(1, size // 2) for size in args.sizes}}
    with open(args.out, "w") as f:
        json.dump(summary, f)
    for size in args.sizes:
        figures = ", ".join(f"{kind} p50 {percentile(values, 50):.2f} ms" for kind, values in latency[size].items())
        print(f"  {size} items: {figures}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
