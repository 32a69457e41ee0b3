"""Tests of scripts/registry.py against a small HTTP server standing for a registry that drops
connections, as Debian's docker-registry did on a loaded machine."""

import http.server
import os
import sys
import threading
import unittest
import urllib.error
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCRIPTS))
os.environ.pop("REGISTRY_USERNAME", None)

import registry  # noqa: E402


class Flaky(http.server.BaseHTTPRequestHandler):
    """Drops the first `drops` connections without an answer, then answers HEAD with a digest
    (or `status` when set)."""

    drops = 0
    status = 200
    seen = 0

    def do_HEAD(self):
        type(self).seen += 1
        if type(self).seen <= type(self).drops:
            self.connection.shutdown(2)
            self.close_connection = True
            return
        self.send_response(type(self).status)
        self.send_header("Docker-Content-Digest", "sha256:" + "a" * 64)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Retries(unittest.TestCase):
    def serve(self, drops, status=200):
        handler = type("Handler", (Flaky,), {"drops": drops, "status": status, "seen": 0})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        return handler, registry.Registry(f"127.0.0.1:{server.server_port}/books-test")

    def setUp(self):
        sleep = registry.time.sleep
        registry.time.sleep = lambda seconds: None
        self.addCleanup(setattr, registry.time, "sleep", sleep)

    def test_a_dropped_connection_is_tried_again(self):
        handler, repository = self.serve(drops=2)
        self.assertEqual(repository.digest("latest"), "sha256:" + "a" * 64)
        self.assertEqual(handler.seen, 3)

    def test_it_gives_up_after_its_attempts(self):
        handler, repository = self.serve(drops=registry.ATTEMPTS)
        with self.assertRaises((urllib.error.URLError, ConnectionError, registry.http.client.HTTPException)):
            repository.digest("latest")
        self.assertEqual(handler.seen, registry.ATTEMPTS)

    def test_a_client_error_is_not_tried_again(self):
        handler, repository = self.serve(drops=0, status=401)
        with self.assertRaises(urllib.error.HTTPError):
            repository.digest("latest")
        self.assertEqual(handler.seen, 1)


if __name__ == "__main__":
    unittest.main()
