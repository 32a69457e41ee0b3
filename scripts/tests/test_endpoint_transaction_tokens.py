"""Tests of scripts/local_endpoint/transaction_tokens.py. Behaviour 13: TransactWriteItems' ClientRequestToken."""

import io
import json
import pathlib
import sys
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from local_endpoint import transaction_tokens  # noqa: E402
from support import create_table, serve_endpoint  # noqa: E402


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
        environ = {"HTTP_X_AMZ_TARGET": transaction_tokens.TransactionTokens.TARGET, "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body)}
        return b"".join(tokens(environ, lambda status, headers: None))

    def test_the_window_is_ten_minutes_after_the_first_answer(self):
        now = [1000.0]
        answers = iter([("200 OK", b"{}"), ("200 OK", b'{"again": 1}')])

        def app(environ, start_response):
            status, body = next(answers)
            start_response(status, [])
            return [body]

        tokens = transaction_tokens.TransactionTokens(app, clock=lambda: now[0])
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

        tokens = transaction_tokens.TransactionTokens(app)
        for token in ("a", "b"):
            self.direct(tokens, token)
        self.assertEqual(len(tokens._tokens), 0)
