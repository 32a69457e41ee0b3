"""A retried SDK invocation gets its first attempt's success again.

An AWS SDK retries a request whose answer it never got (a connection reset) under the same
`amz-sdk-invocation-id`, with `amz-sdk-request: attempt=N`. On a loaded machine the answers
of this local endpoint do get lost after the request was carried out (Terraform's provider
logs "retrying request CloudWatch/DeleteDashboards, attempt 2" with no answer to attempt 1;
seen with werkzeug's server and with waitress alike), and the retry then fails on the first
attempt's effect: DeleteDashboards answers 404 and the whole destroy fails. Here a retry of
an invocation that was already answered with success gets that answer again instead of
being carried out twice. Failures are never replayed: a retry after an error runs again.

AWS documentation followed:
- https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html (retries of one invocation)
"""

import collections
import re
import threading

from local_endpoint.wsgi import run

# Reads no private part of moto: any version.
MOTO_VERSIONS = None


class RetriesAnsweredOnce:
    """WSGI middleware: the success of an SDK invocation is answered again to its retries.

    Keeps the latest invocations (`most` of them) and their successful answers (`budget` bytes
    of bodies at most), the oldest going first. Attempts of one invocation run one at a time, so a retry that overtakes
    its first attempt waits for it and then gets its answer.
    """

    _ATTEMPT = re.compile(r"attempt=(\d+)")

    class _Invocation:
        __slots__ = ("lock", "answer")

        def __init__(self):
            self.lock = threading.Lock()
            self.answer = None  # (status, headers, body) of a success

    def __init__(self, app, budget=64 << 20, most=100_000):
        self.app = app
        self.budget = budget
        self.most = most
        self._held = 0
        self._guard = threading.Lock()
        self._invocations = collections.OrderedDict()

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        key = environ.get("HTTP_AMZ_SDK_INVOCATION_ID")
        if not key:
            return self.app(environ, start_response)
        attempt = self._ATTEMPT.search(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        retry = attempt is not None and int(attempt.group(1)) > 1
        with self._guard:
            invocation = self._invocations.setdefault(key, self._Invocation())
            self._forget_the_oldest()
        with invocation.lock:
            if not (retry and invocation.answer):
                status, headers, body = run(self.app, environ)
                if status.startswith("2"):
                    self._keep(key, invocation, (status, headers, body))
                start_response(status, headers)
                return [body]
            status, headers, body = invocation.answer
            start_response(status, headers)
            return [body]

    def _keep(self, key, invocation, answer):
        with self._guard:
            if key not in self._invocations:  # forgotten while it ran
                return
            self._held += len(answer[2]) - (len(invocation.answer[2]) if invocation.answer else 0)
            invocation.answer = answer
            self._invocations.move_to_end(key)
            self._forget_the_oldest()

    def _forget_the_oldest(self):
        while self._invocations and (self._held > self.budget or len(self._invocations) > self.most):
            _, oldest = self._invocations.popitem(last=False)
            if oldest.answer:
                self._held -= len(oldest.answer[2])
