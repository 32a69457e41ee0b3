"""Tests of scripts/local_endpoint/whole_bodies.py. Behaviour 14: every request's body read whole first."""

import json
import pathlib
import socket
import sys
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from support import serve_endpoint  # noqa: E402


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
