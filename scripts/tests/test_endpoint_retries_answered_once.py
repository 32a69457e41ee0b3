"""Tests of scripts/local_endpoint/retries_answered_once.py. Behaviour 8: an SDK retry gets its first attempt's success."""

import pathlib
import socket
import socketserver
import struct
import sys
import threading
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from local_endpoint import retries_answered_once  # noqa: E402
from support import QuietRequests  # noqa: E402


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
        import moto.server  # its DomainDispatcherApplication, as local_endpoint.install() wraps it
        app = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)
        self.endpoint = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequests)
        self.proxy = _LosesTheFirstAnswerTo(self.endpoint.server_address, b"GraniteServiceVersion20100801.DeleteDashboards")
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

        answered = retries_answered_once.RetriesAnsweredOnce(app)
        self.assertEqual(self.call(answered, "a", 1), ("500 Internal Server Error", b"e"))
        self.assertEqual(self.call(answered, "a", 2), ("200 OK", b"one"), "a retry after an error runs")
        self.assertEqual(self.call(answered, "a", 3), ("200 OK", b"one"), "a retry after a success is answered")
        self.assertEqual(self.call(answered, "b", 2), ("200 OK", b"two"), "an unknown invocation runs")
        self.assertEqual(self.call(answered, "a", 1), ("200 OK", b"three"), "a first attempt always runs")

    def test_the_oldest_answers_go_beyond_the_budget(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            return [environ["HTTP_AMZ_SDK_INVOCATION_ID"].encode() * 10]

        answered = retries_answered_once.RetriesAnsweredOnce(app, budget=25)
        for invocation in "abc":
            self.call(answered, invocation, 1)
        self.assertEqual(list(answered._invocations), ["b", "c"])
        self.assertEqual(answered._held, 20)
