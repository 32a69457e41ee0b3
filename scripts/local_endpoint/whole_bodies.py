"""Every request's body read whole before it is handled.

Once it has answered, werkzeug's server reads what is left of the request before it closes
the connection, with a buffered read that returns only at 10 MB or at the end of the stream.
A request whose body reached the server after its headers had been read, and whose answer
did not need the body (a fault switch `DELETE` sent with `{}`, for instance), so held its
thread until the client closed, and a client that reads to the close (`Connection: close`)
waited for ever: a test hung on a loaded machine that way. Here every request's body is read
whole before the request is handled, so nothing is left to read once it is answered.

AWS documentation followed:
- (none: werkzeug's server, not moto, leaves a body unread)
"""

import io

from local_endpoint.wsgi import read_body

# Reads no private part of moto: any version.
MOTO_VERSIONS = None


class WholeBodies:
    """WSGI middleware: the request's body is read whole before the request is handled (behaviour
    14). A chunked body (no Content-Length) is left to werkzeug, which reads it to its end."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if not environ.get("wsgi.input_terminated"):
            environ["wsgi.input"] = io.BytesIO(read_body(environ))
        return self.app(environ, start_response)
