"""What the endpoint's WSGI middlewares share: a request's body as `WholeBodies` read it, a
request made anew with another body, an application run to its whole answer, and a JSON answer."""

import io
import json


def run(app, environ):
    """Runs a WSGI application to its whole answer: (status, headers, body)."""
    started, written = [], []

    def start_response(status, headers, exc_info=None):  # noqa: ARG001 - the WSGI signature
        started[:] = [status, list(headers)]
        return written.append  # WSGI's legacy write(): its data precede the iterable's

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return started[0], started[1], b"".join(written) + body


def whole_body(environ):
    """The request's body as `WholeBodies` read it, left for the application to read (a chunked
    body, which WholeBodies leaves to werkzeug, is none to the middlewares)."""
    stream = environ["wsgi.input"]
    return stream.getvalue() if isinstance(stream, io.BytesIO) else b""


def read_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length > 0 else b""


def environ_with_body(environ, body, drop=()):
    """A copy of the request `environ` carrying `body` instead, without the keys in `drop`."""
    carried = {name: value for name, value in environ.items() if name not in drop}
    carried["wsgi.input"] = io.BytesIO(body)
    carried["CONTENT_LENGTH"] = str(len(body))
    return carried


def json_answer(start_response, status, document, headers=()):
    body = json.dumps(document).encode()
    reason = {200: "OK", 201: "Created", 400: "Bad Request"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/x-amz-json-1.1"),
                                         ("Content-Length", str(len(body))), *headers])
    return [body]
