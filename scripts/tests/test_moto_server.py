"""Tests of scripts/moto_server.py's corrections to moto (applied on import)."""

import io
import itertools
import json
import os
import pathlib
import pickle
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import unittest
import unittest.mock
import urllib.request
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import moto_server  # noqa: E402,F401  (patches moto's DynamoDB backend)
from support import QuietRequests, serve_endpoint  # noqa: E402


def create_table(dynamodb, name, range_key=None, stream=False):
    """An on-demand table keyed by string `pk` (and `range_key`), with a stream if asked."""
    keys = ["pk"] + ([range_key] if range_key else [])
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ["HASH", "RANGE"])],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        **({"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}))


class CancelledTransactions(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_an_open_stream_reader_sees_records_written_after_a_cancelled_transaction(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, whatever the caller points at
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        create_table(dynamodb, "books", stream=True)
        arn = dynamodb.describe_table(TableName="books")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        dynamodb.put_item(TableName="books", Item={"pk": {"S": "ISBN#1"}})
        page = streams.get_records(ShardIterator=iterator)
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]], ["ISBN#1"])

        with self.assertRaises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "books", "Item": {"pk": {"S": "BOOK#2"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": "books", "Item": {"pk": {"S": "ISBN#1"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        dynamodb.put_item(TableName="books", Item={"pk": {"S": "BOOK#3"}})

        page = streams.get_records(ShardIterator=page["NextShardIterator"])
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]], ["BOOK#3"],
                         "the reader's iterator sees the write after the cancelled transaction, and nothing of it")
        items = sorted(i["pk"]["S"] for i in dynamodb.scan(TableName="books")["Items"])
        self.assertEqual(items, ["BOOK#3", "ISBN#1"], "the cancelled transaction left nothing behind")


    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_a_cancelled_transaction_puts_back_every_item_it_touched_and_no_stream_record(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        create_table(dynamodb, "view", range_key="sk", stream=True)
        key = lambda pk, sk: {"pk": {"S": pk}, "sk": {"S": sk}}  # noqa: E731
        dynamodb.put_item(TableName="view", Item={**key("A", "1"), "n": {"N": "1"}, "tags": {"SS": ["x"]}})
        dynamodb.put_item(TableName="view", Item={**key("B", "1"), "n": {"N": "2"}})
        before = sorted(map(str, dynamodb.scan(TableName="view")["Items"]))
        arn = dynamodb.describe_table(TableName="view")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]

        with self.assertRaises(dynamodb.exceptions.TransactionCanceledException) as cancelled:
            dynamodb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "view", "Key": key("A", "1"),  # changes the stored item in place
                            "UpdateExpression": "SET n = n + :one ADD tags :y",
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":y": {"SS": ["y"]}}}},
                {"Delete": {"TableName": "view", "Key": key("B", "1")}},
                {"Put": {"TableName": "view", "Item": {**key("C", "1"), "n": {"N": "3"}}}},
                {"Put": {"TableName": "view", "Item": {**key("B", "2")}}},  # a new range key beside B's
                {"ConditionCheck": {"TableName": "view", "Key": key("D", "1"),
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ])
        reasons = [r["Code"] for r in cancelled.exception.response["CancellationReasons"]]
        self.assertEqual(reasons, ["None", "None", "None", "None", "ConditionalCheckFailed"])
        self.assertEqual(sorted(map(str, dynamodb.scan(TableName="view")["Items"])), before,
                         "every item as it was, none added")
        self.assertEqual(dynamodb.query(TableName="view", KeyConditionExpression="pk = :b",
                                        ExpressionAttributeValues={":b": {"S": "B"}})["Count"], 1)
        dynamodb.put_item(TableName="view", Item={**key("E", "1")})
        records = streams.get_records(ShardIterator=iterator)["Records"]
        self.assertEqual([(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records], [("INSERT", "E")],
                         "the cancelled transaction left no stream record; the next write is read")

    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_a_transaction_never_copies_a_table(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        from moto.dynamodb.models.table import Table
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "books", stream=True)

        def copied(table, memo):
            raise AssertionError(f"table {table.name} deep-copied: a write would cost the whole table")

        put = lambda pk: {"Put": {"TableName": "books", "Item": {"pk": {"S": pk}},  # noqa: E731
                                  "ConditionExpression": "attribute_not_exists(pk)"}}
        with unittest.mock.patch.object(Table, "__deepcopy__", copied, create=True):
            dynamodb.transact_write_items(TransactItems=[put("BOOK#1"), put("ISBN#1")])
            with self.assertRaises(dynamodb.exceptions.TransactionCanceledException):
                dynamodb.transact_write_items(TransactItems=[put("BOOK#2"), put("ISBN#1")])
        items = sorted(i["pk"]["S"] for i in dynamodb.scan(TableName="books")["Items"])
        self.assertEqual(items, ["BOOK#1", "ISBN#1"])


class DeleteTable(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_a_table_already_gone_is_named_as_dynamodb_names_it(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "books")
        dynamodb.delete_table(TableName="books")
        with self.assertRaises(dynamodb.exceptions.ResourceNotFoundException) as raised:
            dynamodb.delete_table(TableName="books")
        # What the AWS provider of Terraform matches to treat a retried delete as done.
        self.assertEqual(raised.exception.response["Error"]["Message"],
                         "Requested resource not found: Table: books not found")


class IngestionOrder(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_an_i_token_reads_every_event_once_in_the_order_it_arrived(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        put = lambda *events: logs.put_log_events(  # noqa: E731
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": t, "message": m} for t, m in events])

        def read(token):
            page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True, nextToken=token)
            return [e["message"] for e in page["events"]], page["nextForwardToken"]

        now = int(time.time() * 1000)
        put((now, "a"), (now + 1, "b"))
        first, token = read("i/0")
        put((now - 1000, "held back, older"))
        second, token = read(token)
        third, _ = read(token)
        self.assertEqual((first, second, third), (["a", "b"], ["held back, older"], []))
        # Without the i/ token, moto's own paging (by timestamp) still works for other readers.
        page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)
        self.assertEqual([e["message"] for e in page["events"]], ["held back, older", "a", "b"])


class UsagePlanStages(unittest.TestCase):
    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_removing_a_stage_twice_is_not_an_error(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        api = apigateway.create_rest_api(name="a")["id"]
        plan = apigateway.create_usage_plan(name="p", apiStages=[{"apiId": api, "stage": "v1"}])["id"]
        remove = [{"op": "remove", "path": "/apiStages", "value": f"{api}:v1"}]
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)
        apigateway.update_usage_plan(usagePlanId=plan, patchOperations=remove)  # moto: 500
        self.assertEqual(apigateway.get_usage_plan(usagePlanId=plan).get("apiStages", []), [])


class RestApiPolicy(unittest.TestCase):
    """Behaviour 12: the policy comes back as API Gateway answers it, quotes escaped, and reads
    back whole the way Terraform's provider reads it (the answer unquoted as a JSON string)."""

    @unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    @mock_aws
    def test_a_policy_reads_back_escaped_and_unquotes_to_what_was_put(self):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        api = apigateway.create_rest_api(name="a")["id"]
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})
        apigateway.update_rest_api(restApiId=api, patchOperations=[{"op": "replace", "path": "/policy", "value": policy}])
        answered = apigateway.get_rest_api(restApiId=api)["policy"]
        self.assertTrue(answered.startswith('{\\"Version\\"'), answered)
        self.assertEqual(json.loads(json.loads(f'"{answered}"')), json.loads(policy))


def _read_request(connection):
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


class _LosesTheFirstAnswerTo(socketserver.ThreadingTCPServer):
    """A proxy that carries every request to the endpoint and every answer back, except the
    answer to the first request naming `action`: the endpoint carries that one out, and the
    client's connection is reset instead of answered."""

    daemon_threads = True

    def __init__(self, upstream, action):
        self.upstream, self.action, self.seen = upstream, action, 0
        super().__init__(("127.0.0.1", 0), self._Handler)

    class _Handler(socketserver.BaseRequestHandler):
        def handle(self):
            proxy = self.server
            request = _read_request(self.request)
            with socket.create_connection(proxy.upstream) as upstream:
                upstream.sendall(request)
                answer = b"".join(iter(lambda: upstream.recv(65536), b""))  # it closes when done
            if proxy.action in request:
                proxy.seen += 1
                if proxy.seen == 1:
                    self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return  # closing with linger 0 resets the connection
            self.request.sendall(answer)


class RetriedInvocations(unittest.TestCase):
    """Behaviour 8, through botocore's own retries: an answer lost after the endpoint acted."""

    def setUp(self):
        import moto.server  # its DomainDispatcherApplication, as moto_server.py wraps it
        wrapped = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)
        self.assertIsInstance(wrapped, moto_server.WholeBodies)
        self.assertIsInstance(wrapped.app, moto_server.CallRecorder)
        self.assertIsInstance(wrapped.app.app, moto_server.Persistence)
        self.assertIsInstance(wrapped.app.app.app, moto_server.Faults)
        self.assertIsInstance(wrapped.app.app.app.app, moto_server.TransactionTokens)
        self.assertIsInstance(wrapped.app.app.app.app.app, moto_server.RetriesAnsweredOnce)
        self.assertIsInstance(wrapped.app.app.app.app.app.app, moto_server.S3Authentication)
        app = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)
        self.endpoint = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequests)
        self.proxy = _LosesTheFirstAnswerTo(self.endpoint.server_address, b"Action=DeleteDashboards")
        for server in (self.endpoint, self.proxy):
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.addCleanup(server.server_close)
            self.addCleanup(server.shutdown)

    def client(self, address):
        return boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=f"http://{address[0]}:{address[1]}",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"mode": "standard", "max_attempts": 3}))

    def test_a_delete_whose_answer_was_lost_succeeds_on_its_retry(self):
        direct, lossy = self.client(self.endpoint.server_address), self.client(self.proxy.server_address)
        direct.put_dashboard(DashboardName="service", DashboardBody='{"widgets": []}')
        lossy.delete_dashboards(DashboardNames=["service"])  # moto alone: ResourceNotFound on the retry
        self.assertEqual(self.proxy.seen, 2, "botocore retried the request whose answer it lost")
        with self.assertRaises(direct.exceptions.ResourceNotFound):
            direct.get_dashboard(DashboardName="service")
        with self.assertRaises(direct.exceptions.ResourceNotFound, msg="a new invocation runs again"):
            direct.delete_dashboards(DashboardNames=["service"])


class RequestsReadWhole(unittest.TestCase):
    """Behaviour 14, over a raw socket: a body that reaches the endpoint after its headers, and
    that the answer does not need, is read before the request is answered, and the connection
    closes after the answer."""

    def test_a_body_sent_after_the_headers_is_read_and_the_connection_closes(self):
        host, port = serve_endpoint(self.addCleanup).removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(b"DELETE /_books/faults HTTP/1.1\r\nHost: endpoint\r\n"
                               b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
            # Without behaviour 14 the endpoint answers at once; the body sent after that answer
            # was then left for werkzeug, which waited for the connection's end to read it.
            connection.settimeout(1)
            try:
                early = connection.recv(65536)
            except TimeoutError:
                early = b""
            connection.settimeout(30)
            connection.sendall(b"{}")
            answer = early
            try:
                while chunk := connection.recv(65536):
                    answer += chunk
            except TimeoutError:
                self.fail(f"the endpoint kept the connection open 30 s after its answer: {answer!r}")
        self.assertEqual(early, b"", "answered before the request's body had arrived")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
        self.assertEqual(json.loads(answer.partition(b"\r\n\r\n")[2]), {"ended": []})


class TransactionTokens(unittest.TestCase):
    """Behaviour 13, through boto3 against the served endpoint: a token's first answer is final."""

    def setUp(self):
        url = serve_endpoint(self.addCleanup)
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=url,
                                     aws_access_key_id="testing", aws_secret_access_key="testing",
                                     config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
        self.table = f"tokens-{id(self)}"
        create_table(self.dynamodb, self.table)

    def create(self, token, title="first"):
        """A book and its ISBN guard, each put only if absent: what a POST does."""
        absent = {"ConditionExpression": "attribute_not_exists(pk)"}
        self.dynamodb.transact_write_items(ClientRequestToken=token, TransactItems=[
            {"Put": {"TableName": self.table, "Item": {"pk": {"S": "BOOK#1"}, "title": {"S": title}}, **absent}},
            {"Put": {"TableName": self.table, "Item": {"pk": {"S": "ISBN#1"}}, **absent}},
        ])

    def item(self, pk):
        return self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")

    def test_a_call_cancelled_first_stays_cancelled_after_its_condition_clears(self):
        self.dynamodb.put_item(TableName=self.table, Item={"pk": {"S": "ISBN#1"}})  # another book's guard
        with self.assertRaises(self.dynamodb.exceptions.TransactionCanceledException):
            self.create("held-then-retried")
        self.dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": "ISBN#1"}})  # that book deleted
        # The first attempt, held until now, arrives: moto alone would carry it out.
        with self.assertRaises(self.dynamodb.exceptions.TransactionCanceledException):
            self.create("held-then-retried")
        self.assertIsNone(self.item("BOOK#1"), "a call answered as cancelled was carried out")
        with self.assertRaises(ClientError) as mismatch:
            self.create("held-then-retried", title="other")
        self.assertEqual(mismatch.exception.response["Error"]["Code"], "IdempotentParameterMismatchException")

    def test_a_call_carried_out_first_is_answered_again_without_effect(self):
        self.create("once")
        for pk in ("BOOK#1", "ISBN#1"):  # the book deleted
            self.dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": pk}})
        self.create("once")  # its answer again, not the book again
        self.assertIsNone(self.item("BOOK#1"))
        self.create("a new call")
        self.assertEqual(self.item("BOOK#1")["title"], {"S": "first"})

    @staticmethod
    def direct(tokens, token):
        """An empty transaction with `token`, straight to the middleware: its answer's body."""
        body = json.dumps({"ClientRequestToken": token, "TransactItems": []}).encode()
        environ = {"HTTP_X_AMZ_TARGET": moto_server.TransactionTokens.TARGET, "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body)}
        return b"".join(tokens(environ, lambda status, headers: None))

    def test_the_window_is_ten_minutes_after_the_first_answer(self):
        now = [1000.0]
        answers = iter([("200 OK", b"{}"), ("200 OK", b'{"again": 1}')])

        def app(environ, start_response):
            status, body = next(answers)
            start_response(status, [])
            return [body]

        tokens = moto_server.TransactionTokens(app, clock=lambda: now[0])
        self.assertEqual(self.direct(tokens, "t"), b"{}")
        now[0] += 599
        self.assertEqual(self.direct(tokens, "t"), b"{}", "within the window: the first answer")
        now[0] += 2
        self.assertEqual(self.direct(tokens, "t"), b'{"again": 1}', "past it: a new call")
        self.assertEqual(list(tokens._tokens), ["t"], "the expired answer went, the new one is kept")

    def test_a_call_without_an_effect_is_not_remembered(self):
        answers = iter([("500 Internal Server Error", b"e"), ("400 Bad Request", b'{"__type": "Throttling"}')])

        def app(environ, start_response):
            status, body = next(answers)
            start_response(status, [])
            return [body]

        tokens = moto_server.TransactionTokens(app)
        for token in ("a", "b"):
            self.direct(tokens, token)
        self.assertEqual(len(tokens._tokens), 0)


class RetriesAfterFailures(unittest.TestCase):
    """Only successes are answered again; a retry after an error, or a first attempt, runs."""

    def call(self, app, invocation, attempt):
        started = []
        environ = {"HTTP_AMZ_SDK_INVOCATION_ID": invocation, "HTTP_AMZ_SDK_REQUEST": f"attempt={attempt}; max=3"}
        body = b"".join(app(environ, lambda status, headers: started.append(status)))
        return started[0], body

    def test_errors_are_never_replayed_and_successes_are_replayed_to_retries_only(self):
        answers = iter([("500 Internal Server Error", b"e"), ("200 OK", b"one"), ("200 OK", b"two"),
                        ("200 OK", b"three")])

        def app(environ, start_response):
            status, body = next(answers)
            start_response(status, [("Content-Length", str(len(body)))])
            return [body]

        answered = moto_server.RetriesAnsweredOnce(app)
        self.assertEqual(self.call(answered, "a", 1), ("500 Internal Server Error", b"e"))
        self.assertEqual(self.call(answered, "a", 2), ("200 OK", b"one"), "a retry after an error runs")
        self.assertEqual(self.call(answered, "a", 3), ("200 OK", b"one"), "a retry after a success is answered")
        self.assertEqual(self.call(answered, "b", 2), ("200 OK", b"two"), "an unknown invocation runs")
        self.assertEqual(self.call(answered, "a", 1), ("200 OK", b"three"), "a first attempt always runs")

    def test_the_oldest_answers_go_beyond_the_budget(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            return [environ["HTTP_AMZ_SDK_INVOCATION_ID"].encode() * 10]

        answered = moto_server.RetriesAnsweredOnce(app, budget=25)
        for invocation in "abc":
            self.call(answered, invocation, 1)
        self.assertEqual(list(answered._invocations), ["b", "c"])
        self.assertEqual(answered._held, 20)


class BackendLookup(unittest.TestCase):
    """Behaviour 9: moto's own folders, listed once, the same as moto lists them."""

    def test_the_modules_are_not_listed_again_per_request(self):
        import moto.backends
        self.assertEqual(list(moto.backends.list_of_moto_modules()), list(moto_server._list_of_moto_modules()))
        self.assertIn("dynamodb", moto.backends.list_of_moto_modules())
        with unittest.mock.patch("os.listdir", side_effect=AssertionError("listed again")):
            self.assertIn("logs", moto.backends.list_of_moto_modules())


class FaultsOnDemand(unittest.TestCase):
    """Behaviour 10, through boto3: one log group's PutLogEvents fail until the fault ends."""

    def setUp(self):
        self.url = serve_endpoint(self.addCleanup)
        self.logs = boto3.client("logs", region_name="us-east-1", endpoint_url=self.url,
                                 aws_access_key_id="testing", aws_secret_access_key="testing",
                                 config=Config(retries={"mode": "standard", "total_max_attempts": 1}))

    def control(self, method, document=None):
        import urllib.error
        import urllib.request
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(self.url + "/_books/faults", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def put(self, group):
        self.logs.put_log_events(logGroupName=group, logStreamName="s",
                                 logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}])

    def test_only_matching_requests_fail_and_only_while_the_fault_lasts(self):
        for group in ("/aws/lambda/quiet", "/aws/lambda/other"):
            self.logs.create_log_group(logGroupName=group)
            self.logs.create_log_stream(logGroupName=group, logStreamName="s")
        status, fault = self.control("POST", {"operation": "PutLogEvents",
                                              "match": {"logGroupName": "/aws/lambda/quiet"}})
        self.assertEqual((status, fault["status"], fault["code"]), (201, 503, "ServiceUnavailableException"))
        with self.assertRaises(self.logs.exceptions.ServiceUnavailableException):
            self.put("/aws/lambda/quiet")
        self.put("/aws/lambda/other")  # another group: not matched
        self.logs.describe_log_streams(logGroupName="/aws/lambda/quiet")  # another operation: not matched
        self.assertEqual([f["failed"] for f in self.control("GET")[1]["faults"]], [1])
        self.assertEqual(self.control("DELETE")[0], 200)
        self.put("/aws/lambda/quiet")
        events = self.logs.get_log_events(logGroupName="/aws/lambda/quiet", logStreamName="s")["events"]
        self.assertEqual(len(events), 1, "the faulted request never reached moto; the later one did")

    def test_a_lost_answer_was_carried_out(self):
        self.logs.create_log_group(logGroupName="/aws/lambda/lost")
        self.logs.create_log_stream(logGroupName="/aws/lambda/lost", logStreamName="s")
        self.control("POST", {"operation": "PutLogEvents", "match": {"logGroupName": "/aws/lambda/lost"},
                              "status": 500, "code": "InternalFailure", "after": True})
        with self.assertRaises(ClientError):
            self.put("/aws/lambda/lost")
        self.control("DELETE")
        events = self.logs.get_log_events(logGroupName="/aws/lambda/lost", logStreamName="s")["events"]
        self.assertEqual(len(events), 1, "the request whose answer was lost was carried out")

    def test_a_slow_request_outlasts_a_client_timeout_and_is_still_carried_out(self):
        from botocore.exceptions import ReadTimeoutError
        self.logs.create_log_group(logGroupName="/aws/lambda/slow")
        self.logs.create_log_stream(logGroupName="/aws/lambda/slow", logStreamName="s")
        status, fault = self.control("POST", {"operation": "PutLogEvents", "match": {"logGroupName": "/aws/lambda/slow"},
                                              "delay": 3, "slow": True})
        self.assertEqual((status, fault["delay"], fault["slow"]), (201, 3.0, True))
        impatient = boto3.client("logs", region_name="us-east-1", endpoint_url=self.url,
                                 aws_access_key_id="testing", aws_secret_access_key="testing",
                                 config=Config(read_timeout=0.5, retries={"mode": "standard", "total_max_attempts": 1}))
        with self.assertRaises(ReadTimeoutError):  # botocore's own timeout gave up on it
            impatient.put_log_events(logGroupName="/aws/lambda/slow", logStreamName="s",
                                     logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}])
        self.assertEqual(self.control("DELETE")[1]["ended"][0]["failed"], 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # carried out once its delay is over
            if self.logs.get_log_events(logGroupName="/aws/lambda/slow", logStreamName="s")["events"]:
                break
            time.sleep(0.2)
        events = self.logs.get_log_events(logGroupName="/aws/lambda/slow", logStreamName="s")["events"]
        self.assertEqual(len(events), 1, "the slow request was carried out after its delay")

    def test_reordered_stream_reads_hold_every_record_some_twice(self):
        options = dict(region_name="us-east-1", endpoint_url=self.url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        dynamodb, streams = boto3.client("dynamodb", **options), boto3.client("dynamodbstreams", **options)
        table = dynamodb.create_table(
            TableName="streamed", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]
        for n in range(6):
            dynamodb.put_item(TableName="streamed", Item={"pk": {"S": f"book-{n}"}})
        shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = lambda: streams.get_shard_iterator(StreamArn=table["LatestStreamArn"], ShardId=shard,
                                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        plain = [r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=iterator())["Records"]]
        self.control("POST", {"operation": "GetRecords", "reorder": True})
        answer = streams.get_records(ShardIterator=iterator())
        mangled = [r["dynamodb"]["SequenceNumber"] for r in answer["Records"]]
        self.control("DELETE")
        self.assertEqual(len(plain), 6)
        self.assertEqual(sorted(set(mangled)), sorted(plain), "every record, none invented")
        self.assertEqual(len(mangled), 8, "a third of them twice")
        self.assertIn("NextShardIterator", answer, "the position is the real one")
        dynamodb.put_item(TableName="streamed", Item={"pk": {"S": "book-6"}})
        self.control("POST", {"operation": "GetRecords", "reorder": True})
        later = streams.get_records(ShardIterator=answer["NextShardIterator"])["Records"]
        self.control("DELETE")
        numbers = [r["dynamodb"]["SequenceNumber"] for r in later]
        fresh = [n for n in numbers if n not in plain]
        self.assertEqual(len(set(fresh)), 1, f"the new record: {numbers} {plain}")
        self.assertEqual(len(numbers) - len(fresh), 1, "one earlier record again, late")

    def test_a_fault_with_a_delay_out_of_bounds_is_refused(self):
        self.assertEqual(self.control("POST", {"operation": "GetItem", "delay": 600})[0], 400)

    def test_a_fault_with_a_probability_fails_that_share(self):
        self.logs.create_log_group(logGroupName="/aws/lambda/some")
        self.control("POST", {"operation": "DescribeLogStreams", "match": {"logGroupName": "/aws/lambda/some"},
                              "probability": 0.5})
        failed = 0
        for _ in range(200):
            try:
                self.logs.describe_log_streams(logGroupName="/aws/lambda/some")
            except self.logs.exceptions.ServiceUnavailableException:
                failed += 1
        self.assertEqual(self.control("GET")[1]["faults"][0]["failed"], failed)
        # Binomial(200, 0.5): outside 50..150 with a probability below 1e-12.
        self.assertTrue(50 <= failed <= 150, f"{failed} of 200 failed")

    def test_a_fault_without_an_operation_is_refused(self):
        status, answer = self.control("POST", {"match": {}})
        self.assertEqual(status, 400)
        self.assertIn("operation", answer["message"])
        self.assertEqual(self.control("GET")[1]["faults"], [])


class S3Authentication(unittest.TestCase):
    """Behaviour 15, with presigned URLs boto3 makes: used alone and in time they work; with a
    second authentication, or expired, S3 refuses them."""

    def setUp(self):
        url = serve_endpoint(self.addCleanup)
        self.s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=url,
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = f"blobs-{uuid.uuid4().hex}"  # the endpoint's backends outlive the test
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.s3.put_object(Bucket=bucket, Key="layer", Body=b"a layer")  # signed by its header alone
        v4 = boto3.client("s3", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="testing",
                          aws_secret_access_key="testing", config=Config(signature_version="s3v4"))
        where = {"Params": {"Bucket": bucket, "Key": "layer"}, "ExpiresIn": 600}
        # SigV2's query (Signature, Expires; botocore's default here) and SigV4's (X-Amz-*).
        self.presigned = {"SigV2": self.s3.generate_presigned_url("get_object", **where),
                          "SigV4": v4.generate_presigned_url("get_object", **where)}
        self.assertIn("Signature=", self.presigned["SigV2"])
        self.assertIn("X-Amz-Signature=", self.presigned["SigV4"])

    @staticmethod
    def get(url, headers=None):
        """(status, body) of a GET, through no proxy."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def test_a_presigned_url_alone_is_answered(self):
        for version, url in self.presigned.items():
            self.assertEqual(self.get(url), (200, b"a layer"), version)

    def test_a_presigned_url_with_an_authorization_header_is_refused(self):
        for (version, url), authorization in itertools.product(self.presigned.items(), (
                "Basic QVdTOnRva2Vu", "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/s3/aws4_request")):
            status, body = self.get(url, {"Authorization": authorization})
            self.assertEqual(status, 400, (version, body))
            self.assertIn(b"<Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the "
                          b"X-Amz-Algorithm query parameter, Signature query string parameter or the "
                          b"Authorization header should be specified</Message>", body)

    def test_an_expired_presigned_url_is_refused(self):
        signed_v2 = self.presigned["SigV2"].split("Expires=")[1].split("&")[0]
        signed_v4 = self.presigned["SigV4"].split("X-Amz-Date=")[1].split("&")[0]
        for url in (self.presigned["SigV2"].replace(f"Expires={signed_v2}", f"Expires={int(time.time()) - 1}"),
                    self.presigned["SigV4"].replace(signed_v4, "20200101T000000Z")):
            status, body = self.get(url)
            self.assertEqual(status, 403, body)
            self.assertIn(b"<Code>AccessDenied</Code><Message>Request has expired</Message>", body)

    def test_only_what_moto_dispatches_to_s3_is_judged(self):
        reached = []
        guard = moto_server.S3Authentication(self.dispatcher(reached))
        for service, answered in (("sqs", "200 OK"), ("s3", "400 Bad Request")):
            started = []
            environ = {"QUERY_STRING": "AWSAccessKeyId=testing&Signature=x&Expires=1", "PATH_INFO": "/",
                       "HTTP_HOST": "endpoint", "REQUEST_METHOD": "GET",
                       "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/"
                                             f"{service}/aws4_request"}
            b"".join(guard(environ, lambda status, headers: started.append(status)))
            self.assertEqual(started, [answered], service)
        self.assertEqual(reached, ["sqs"], "SQS's request went on to moto, S3's was refused")

    @staticmethod
    def dispatcher(reached):
        """moto's dispatcher, recording which backend each request it is handed goes to."""
        import moto.server
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        class Recording(DomainDispatcherApplication):
            def __call__(self, environ, start_response):
                reached.append(self.get_backend_for_host(self.infer_service_region_host(environ, "/")))
                start_response("200 OK", [])
                return [b""]

        return Recording(moto.server.create_backend_app)


class LambdaImageIndex(unittest.TestCase):
    """Behaviour 16, on images put in the endpoint's ECR: Lambda takes one image, not an index."""

    INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:" + "1" * 64, "platform": {"architecture": "amd64", "os": "linux"}}]}
    MANIFEST = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": "sha256:" + "2" * 64},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 3,
                            "digest": "sha256:" + "3" * 64}]}

    def setUp(self):
        options = dict(region_name="eu-west-1", endpoint_url=serve_endpoint(self.addCleanup),
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        self.ecr, self.lambda_ = boto3.client("ecr", **options), boto3.client("lambda", **options)
        self.name = f"books-{uuid.uuid4().hex}"  # the endpoint's backends outlive the test
        self.role = boto3.client("iam", **options).create_role(
            RoleName=self.name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.ecr.create_repository(repositoryName=self.name)
        uri = f"{self.ecr.describe_registry()['registryId']}.dkr.ecr.eu-west-1.amazonaws.com/{self.name}"
        self.index, self.image = f"{uri}:index", f"{uri}:image"
        for tag, manifest, media_type in (
                ("index", self.INDEX, "application/vnd.oci.image.index.v1+json"),
                ("list", {**self.INDEX, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"},
                 "application/vnd.docker.distribution.manifest.list.v2+json"),
                ("image", self.MANIFEST, "application/vnd.oci.image.manifest.v1+json")):
            self.ecr.put_image(repositoryName=self.name, imageTag=tag, imageManifest=json.dumps(manifest),
                               imageManifestMediaType=media_type)

    def create(self, name, image_uri):
        return self.lambda_.create_function(FunctionName=name, Role=self.role, PackageType="Image",
                                            Code={"ImageUri": image_uri})

    def assert_refused(self, call, image_uri):
        with self.assertRaises(self.lambda_.exceptions.InvalidParameterValueException) as refused:
            call()
        self.assertEqual(refused.exception.response["Error"]["Message"],
                         f"The image manifest, config or layer media type for the source image {image_uri} "
                         f"is not supported.")

    @unittest.mock.patch.dict(os.environ, {"MOTO_LAMBDA_STUB_ECR": "false"})
    def test_an_index_or_a_manifest_list_is_refused_and_an_image_is_created(self):
        self.assert_refused(lambda: self.create(f"{self.name}-index", self.index), self.index)
        listed = self.index.replace(":index", ":list")
        self.assert_refused(lambda: self.create(f"{self.name}-list", listed), listed)
        created = self.create(self.name, self.image)
        self.assertEqual(created["PackageType"], "Image")
        self.assert_refused(lambda: self.lambda_.update_function_code(FunctionName=self.name, ImageUri=self.index),
                            self.index)
        self.assertEqual(self.lambda_.get_function(FunctionName=self.name)["Code"]["ImageUri"], self.image)

    def test_with_ecr_stubbed_an_index_ecr_holds_is_still_refused_and_anything_else_is_moto_s(self):
        os.environ.pop("MOTO_LAMBDA_STUB_ECR", None)
        self.assert_refused(lambda: self.create(f"{self.name}-index", self.index), self.index)
        elsewhere = self.index.replace(f"{self.name}:index", "not-in-ecr:v1")
        self.assertEqual(self.create(f"{self.name}-stubbed", elsewhere)["PackageType"], "Image")


if __name__ == "__main__":
    unittest.main()


class SavedState(unittest.TestCase):
    """Behaviour 11, with the real server process: what it holds when stopped is what it holds
    when started again, across the services whose objects pickle cannot write as they are
    (locks in SQS queues, private keys in KMS, the weak index of Lambda functions)."""

    SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "moto_server.py"

    def setUp(self):
        self.folder = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"books-state-{os.getpid()}-{time.time_ns()}"
        self.folder.mkdir(parents=True)
        self.state = self.folder / "endpoint.state"

    def tearDown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with (self.folder / f"server-{port}.log").open("w") as log:
            server = subprocess.Popen([sys.executable, str(self.SCRIPT), "-H", "127.0.0.1", "-p", str(port),
                                       "--state", str(self.state)], stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    return server, None
                time.sleep(0.1)
        return server, endpoint

    def client(self, endpoint, service):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self, server):
        server.terminate()
        self.assertEqual(server.wait(timeout=60), 0)

    def test_a_stopped_endpoint_starts_again_with_what_it_held(self):
        server, endpoint = self.start()
        self.assertIsNotNone(endpoint, "the server started")
        try:
            dynamodb = self.client(endpoint, "dynamodb")
            create_table(dynamodb, "books", stream=True)
            dynamodb.put_item(TableName="books", Item={"pk": {"S": "BOOK#1"}, "title": {"S": "Dune"}})
            logs = self.client(endpoint, "logs")
            logs.create_log_group(logGroupName="/books")
            logs.create_log_stream(logGroupName="/books", logStreamName="s")
            logs.put_log_events(logGroupName="/books", logStreamName="s",
                                logEvents=[{"timestamp": int(time.time() * 1000), "message": "kept"}])
            queue = self.client(endpoint, "sqs").create_queue(QueueName="failures")["QueueUrl"]
            self.client(endpoint, "sqs").send_message(QueueUrl=queue, MessageBody="a failed batch")
            key = self.client(endpoint, "kms").create_key()["KeyMetadata"]["KeyId"]
            secret = self.client(endpoint, "kms").encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
            role = self.client(endpoint, "iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            self.client(endpoint, "lambda").create_function(
                FunctionName="f", Role=role, PackageType="Image",
                Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/f:1"})
            put = urllib.request.Request(f"{endpoint}/_books/emulator-state", method="PUT",
                                         data=json.dumps({"streams": {"m": {"shard": "42"}}}).encode())
            urllib.request.urlopen(put, timeout=10).read()
        finally:
            self.stop(server)
        self.assertTrue(self.state.exists(), "the state was saved when the server stopped")

        server, endpoint = self.start()
        self.assertIsNotNone(endpoint, "the server started again from the saved state")
        try:
            dynamodb = self.client(endpoint, "dynamodb")
            item = dynamodb.get_item(TableName="books", Key={"pk": {"S": "BOOK#1"}})["Item"]
            self.assertEqual(item["title"]["S"], "Dune")
            arn = dynamodb.describe_table(TableName="books")["Table"]["LatestStreamArn"]
            streams = self.client(endpoint, "dynamodbstreams")
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            self.assertEqual(len(streams.get_records(ShardIterator=iterator)["Records"]), 1, "the stream record")
            events = self.client(endpoint, "logs").get_log_events(logGroupName="/books", logStreamName="s")["events"]
            self.assertEqual([e["message"] for e in events], ["kept"])
            sqs = self.client(endpoint, "sqs")
            queue = sqs.get_queue_url(QueueName="failures")["QueueUrl"]
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
            self.assertEqual([m["Body"] for m in messages], ["a failed batch"])
            plain = self.client(endpoint, "kms").decrypt(CiphertextBlob=secret)["Plaintext"]
            self.assertEqual(plain, b"secret", "the KMS key decrypts what it encrypted before the restart")
            function = self.client(endpoint, "lambda").get_function(FunctionName="f")["Configuration"]
            self.assertEqual(function["PackageType"], "Image")
            with urllib.request.urlopen(f"{endpoint}/_books/emulator-state", timeout=10) as answer:
                self.assertEqual(json.load(answer), {"streams": {"m": {"shard": "42"}}})
        finally:
            self.stop(server)

    def test_a_state_another_moto_saved_is_refused_with_the_way_out(self):
        self.state.write_bytes(pickle.dumps({"format": 1, "moto": "0.0.1", "backends": {}, "emulator": {}}))
        server, endpoint = self.start()
        self.assertIsNone(endpoint, "the server refused to start")
        self.assertNotEqual(server.wait(timeout=30), 0)
        log = next(self.folder.glob("server-*.log")).read_text()
        self.assertIn("saved by moto 0.0.1", log)
        self.assertIn("make run FRESH=1", log)
