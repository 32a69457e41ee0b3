#!/usr/bin/env python3
"""The local cloud's alarms end to end (run by scripts/e2e-local, whose cloud has 30-second,
1-of-1 alarms and a projector mapping that gives up after 2 retries):

1. a corrupt read-model item makes the query function answer 500: the API's 5XX alarm goes to
   ALARM, and back to OK once the fault is gone;
2. a stream record the projector cannot read is retried, then given up on: its batch is described
   on the failure queue (Lambda's on-failure record), and the projection-failures and
   discarded-batches alarms go to ALARM, then back to OK once the queue is drained;
3. a stuck projector (throttled as the console's "Throttle" does: reserved concurrency 0): its
   throttles alarm fires, the stream's iterator age grows past its alarm, and once the
   throttle is removed the book written meanwhile reaches the read model late enough to fire
   the projection-lag alarm; all three return to OK as fresh records flow again;
4. a telemetry outage (CloudWatch Logs failing every shipment of the query function's
   books-telemetry, through the local endpoint's fault switch): the query's telemetry-silence
   alarm goes to ALARM while the function keeps answering, and back to OK once the held
   telemetry ships (e2e-local's telemetry-silence periods are 60 s);
5. every transition reaches the alarm topic's subscribers, and no other alarm went to ALARM.

Everything is read through AWS's own client (boto3) from the local endpoint and the gateway.
    e2e_alarms.py READY_FILE
"""

import json
import os
import random
import sys
import time

from local_cloud import Stage

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BOUND_S = 300  # generous: two 60-second silence periods must end, then be evaluated, on a loaded machine
LAG_THRESHOLD_S = 15  # the projection-lag threshold scripts/e2e-local gives Terraform


def ulid():
    """A new ULID (48-bit millisecond time, 80 random bits), as book ids are."""
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def isbn13():
    """A new valid ISBN-13 (ISBNs are unique among the books)."""
    digits = [9, 7, 8] + [random.randrange(10) for _ in range(9)]
    check = -sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10
    return "".join(map(str, digits + [check]))


def step(text):
    print(f"==> {text}", flush=True)


class Cloud(Stage):
    def __init__(self, ready):
        super().__init__(ready)
        self.client = self.aws
        self.cloudwatch = self.aws("cloudwatch")
        self.sqs = self.aws("sqs")
        variables = lambda name: self.aws("lambda").get_function_configuration(
            FunctionName=name)["Environment"]["Variables"]
        self.view_table = variables("books-local-query")["BOOKS_VIEW_TABLE"]
        self.books_table = variables("books-local-command")["BOOKS_TABLE"]
        self.query_telemetry = variables("books-local-query")["BOOKS_TELEMETRY_LOG_GROUP"]

    def get(self, path):
        return self.status("GET", path)

    def status(self, method, path, body=None, headers=None):
        return self.call(method, path, body, headers, timeout=30)[0]

    def state(self, alarm):
        return self.cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]

    def until(self, alarm, want, action=None):
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            if action:
                action()
            state = self.state(alarm)
            if state == want:
                print(f"    {alarm}: {state}", flush=True)
                return
            time.sleep(0.5)
        raise SystemExit(f"error: {alarm} did not go to {want} within {BOUND_S} s (it is {self.state(alarm)})")


def subscribe(cloud, topic_arn):
    """A queue subscribed to the alarm topic: the notifications a user would get."""
    url = cloud.sqs.create_queue(QueueName=f"alarm-inbox-{ulid().lower()}")["QueueUrl"]
    arn = cloud.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def notifications(cloud, url, complete):
    """The notifications received, until `complete(received)` or the bound (a notification is
    published just after its alarm's state is set)."""
    received = []
    deadline = time.monotonic() + 60
    while not complete(received) and time.monotonic() < deadline:
        page = cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in page:
            received.append(json.loads(json.loads(message["Body"])["Message"]))
            cloud.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return received


def main():
    cloud = Cloud(json.load(open(sys.argv[1])))
    dynamodb = cloud.client("dynamodb")
    books_table = cloud.books_table
    topic_arn = cloud.cloudwatch.describe_alarms(AlarmNames=["books-local-api-5xx"])["MetricAlarms"][0]["AlarmActions"][0]
    inbox = subscribe(cloud, topic_arn)

    step("a corrupt read-model item: the query function answers 500, the 5XX alarm fires")
    broken = ulid()
    dynamodb.put_item(TableName=cloud.view_table, Item={"pk": {"S": f"BOOK#{broken}"}, "sk": {"S": "BOOK"},
                                                        "title": {"N": "42"}})
    statuses = set()
    cloud.until("books-local-api-5xx", "ALARM", lambda: statuses.add(cloud.get(f"/books/{broken}")))
    assert statuses == {500}, f"the corrupt item answers {statuses}"
    step("the fault is gone: the 5XX alarm returns to OK")
    dynamodb.delete_item(TableName=cloud.view_table, Key={"pk": {"S": f"BOOK#{broken}"}, "sk": {"S": "BOOK"}})
    cloud.until("books-local-api-5xx", "OK", lambda: cloud.get("/books?limit=1"))

    step("a stream record the projector cannot read: retried, given up on, described on the failure queue")
    poisoned = ulid()
    dynamodb.put_item(TableName=books_table, Item={"pk": {"S": f"BOOK#{poisoned}"}, "title": {"N": "42"}})
    queue_url = cloud.sqs.get_queue_url(QueueName="books-local-projector-failures")["QueueUrl"]
    # Traffic goes on meanwhile: Lambda freezes an idle projector and its extension, whose
    # metrics of the last invocations then ship with the next one. Idempotency records are
    # stream records the projector skips.
    last = [0.0]

    def trickle():
        if time.monotonic() - last[0] >= 2:
            last[0] = time.monotonic()
            dynamodb.put_item(TableName=books_table, Item={"pk": {"S": f"IDEMPOTENCY#e2e-trickle-{ulid()}"}})

    cloud.until("books-local-projection-failures", "ALARM", trickle)
    cloud.until("books-local-projector-discarded-batches", "ALARM", trickle)
    described = cloud.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
    record = json.loads(described[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted", record
    assert record["DDBStreamBatchInfo"]["batchSize"] >= 1, record
    assert record["DDBStreamBatchInfo"]["streamArn"].split("/")[1] == books_table, record
    print(f"    on the failure queue: {record['requestContext']['condition']}, "
          f"{record['DDBStreamBatchInfo']['batchSize']} record(s) from "
          f"{record['DDBStreamBatchInfo']['startSequenceNumber']}", flush=True)
    # The unreadable item stays in the write model: deleting it would put one more unreadable
    # record (its old image) on the stream.
    step("the queue drained (an operator replayed or dropped the batch): both alarms return to OK")
    cloud.sqs.purge_queue(QueueUrl=queue_url)
    cloud.until("books-local-projector-discarded-batches", "OK", trickle)
    cloud.until("books-local-projection-failures", "OK", trickle)

    step("a stuck projector: throttled (reserved concurrency 0), its stream falls behind")
    projector = "books-local-projector"
    lambda_ = cloud.client("lambda")
    lambda_.put_function_concurrency(FunctionName=projector, ReservedConcurrentExecutions=0)
    cloud.until("books-local-projector-throttles", "ALARM", trickle)
    # Written once the throttle holds, so that it waits on the stream longer than the lag the
    # projection-lag alarm allows (e2e-local sets 15 s).
    late = cloud.status("POST", "/books", {"title": "Late", "authors": ["A. Lagging"], "isbn": isbn13(),
                                         "published_year": 2020}, {"idempotency-key": f"e2e-late-{ulid()}"})
    assert late == 201, f"the command side answers {late} while the projector is stuck"
    written = time.monotonic()
    cloud.until("books-local-projector-iterator-age", "ALARM", trickle)
    while time.monotonic() - written < LAG_THRESHOLD_S + 5:
        trickle()
        time.sleep(0.5)
    step("the throttle removed: the backlog is projected late, the projection-lag alarm fires")
    lambda_.delete_function_concurrency(FunctionName=projector)
    cloud.until("books-local-projection-lag", "ALARM", trickle)
    step("fresh records flow again: the three alarms return to OK")
    for alarm in ("books-local-projector-throttles", "books-local-projector-iterator-age", "books-local-projection-lag"):
        cloud.until(alarm, "OK", trickle)

    step("a telemetry outage: CloudWatch Logs fails the query function's shipments, its silence alarm fires")
    silence = "books-local-query-telemetry-silence"
    cloud.fault("POST", {"operation": "PutLogEvents", "match": {"logGroupName": cloud.query_telemetry},
                          "status": 503, "code": "ServiceUnavailableException"})
    answers = set()
    cloud.until(silence, "ALARM", lambda: answers.add(cloud.get("/books?limit=1")))
    assert answers == {200}, f"the query function answers {answers} during the outage"
    failed = sum(f["failed"] for f in cloud.fault("GET")["faults"])
    assert failed > 0, "no shipment of the query's telemetry met the outage"
    print(f"    {failed} PutLogEvents of {cloud.query_telemetry} failed", flush=True)
    step("CloudWatch Logs accepts them again: the held telemetry ships, the silence alarm returns to OK")
    cloud.fault("DELETE")
    cloud.until(silence, "OK", lambda: cloud.get("/books?limit=1"))

    step("what the alarm topic's subscribers received")
    expected = sorted(["books-local-api-5xx", "books-local-projection-failures", "books-local-projector-discarded-batches",
                       "books-local-projector-throttles", "books-local-projector-iterator-age",
                       "books-local-projection-lag", silence])
    recovered = lambda received: all(  # noqa: E731
        any(n["AlarmName"] == name and n["NewStateValue"] == "OK" and n["OldStateValue"] == "ALARM" for n in received)
        for name in expected)
    received = notifications(cloud, inbox, recovered)
    fired = sorted({n["AlarmName"] for n in received if n["NewStateValue"] == "ALARM"})
    for name in expected:
        states = [(n["OldStateValue"], n["NewStateValue"]) for n in received if n["AlarmName"] == name]
        print(f"    {name}: {states}", flush=True)
        assert ("OK", "ALARM") in states or ("INSUFFICIENT_DATA", "ALARM") in states, (name, states)
        assert ("ALARM", "OK") in states, (name, states)
    assert fired == expected, f"alarms that fired: {fired}, expected exactly {expected}"
    print("==> the right alarms fired, notified and recovered", flush=True)


if __name__ == "__main__":
    os.environ.pop("AWS_PROFILE", None)
    main()
