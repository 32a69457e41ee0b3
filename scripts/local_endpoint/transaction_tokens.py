"""TransactWriteItems' ClientRequestToken, which moto ignores.

DynamoDB makes TransactWriteItems calls that carry one `ClientRequestToken` have the effect of
one call for 10 minutes after the first completes; moto ignores the token. So a transaction's
first attempt held past its timeout (the fault switch's `slow`) was carried out after its
retry had been cancelled, when the condition that cancelled it no longer held: a create
answered 409 left its book behind (found by the consistency checker). Here the first answer
of a token that is the call's effect (carried out, or cancelled) is every later call's, and
the token with other parameters is IdempotentParameterMismatch (`TransactionTokens`).

AWS documentation followed:
- https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html (ClientRequestToken, IdempotentParameterMismatchException)
"""

import collections
import json
import threading
import time

from local_endpoint.wsgi import json_answer, run, whole_body

# Reads no private part of moto: any version.
MOTO_VERSIONS = None


class TransactionTokens:
    """WSGI middleware: DynamoDB's `ClientRequestToken` of TransactWriteItems, which moto ignores.

    DynamoDB makes identical calls with one token "have the same effect as one single call" for
    10 minutes after the first of them completes. So a call that completes after another with its
    token gets the first one's answer without being carried out, whether the first was carried out
    or cancelled; the same token with other parameters is refused (IdempotentParameterMismatch).
    Calls of one token run one at a time. Found by the consistency checker: a create's first
    attempt, held past its timeout, was carried out after its retry had been refused (409) and the
    ISBN freed meanwhile, leaving a book the client was told was never created.
    """

    TARGET = "DynamoDB_20120810.TransactWriteItems"
    WINDOW_S = 600.0

    class _Token:
        __slots__ = ("lock", "parameters", "answer", "completed")

        def __init__(self):
            self.lock = threading.Lock()
            self.parameters = None
            self.answer = None
            self.completed = 0.0

    def __init__(self, app, clock=time.monotonic):
        self.app = app
        self.clock = clock
        self._guard = threading.Lock()
        # Tokens in the order their answers were kept (calls in flight at the end): the expired
        # ones are at the front.
        self._tokens = collections.OrderedDict()

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def _expire(self, now):
        while self._tokens:
            oldest = next(iter(self._tokens.values()))
            if oldest.answer is None or now - oldest.completed <= self.WINDOW_S:
                return
            self._tokens.popitem(last=False)

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") != self.TARGET:
            return self.app(environ, start_response)
        body = whole_body(environ)
        try:
            parameters = json.loads(body or b"{}")
        except ValueError:
            return self.app(environ, start_response)
        token = parameters.pop("ClientRequestToken", None) if isinstance(parameters, dict) else None
        if not token:
            return self.app(environ, start_response)
        with self._guard:
            self._expire(self.clock())
            entry = self._tokens.setdefault(token, self._Token())
        with entry.lock:
            if entry.answer is not None:
                if entry.parameters != parameters:
                    return json_answer(start_response, 400, {
                        "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                        "message": "The request uses the same client token as a previous, but non-identical request."})
                status, headers, kept_answer = entry.answer
                start_response(status, headers)
                return [kept_answer]
            status, headers, carried_out = run(self.app, environ)
            # Kept: the answers that are the call's effect, carried out or cancelled by a
            # condition. Throttling or a server error says nothing of what identical calls do.
            kept = status.startswith("2") or (status.startswith("400") and b"TransactionCanceledException" in carried_out)
            with self._guard:
                if kept:
                    entry.parameters, entry.answer, entry.completed = parameters, (status, headers, carried_out), self.clock()
                    self._tokens[token] = entry
                    self._tokens.move_to_end(token)
                elif entry.answer is None:
                    self._tokens.pop(token, None)  # nothing to answer again: not held for 10 minutes
            start_response(status, headers)
            return [carried_out]
