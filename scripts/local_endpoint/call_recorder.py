"""Every call recorded with its caller, for the IAM check moto does not make.

moto answers every call whatever the caller's policies allow, so a role that lacks a permission
passes here and fails in AWS. With BOOKS_RECORD_CALLS=FILE in the server's environment (read
when the server starts), every request is appended to FILE as one JSON line, for
terraform/tests/iam_calls.py to map to the IAM actions it needs and check against the policies
of the role that made it: `time` (UTC), `caller` (null when unsigned: `access_key_id`, and the
credential scope's `service` and `region`, from the SigV4 `Authorization` header or a presigned
URL's `X-Amz-Credential`; `role_arn` and `session_arn` when the key is one moto's STS handed out
for an assumed role, AssumeRole or AssumeRoleWithWebIdentity, resolved when the call is made),
`method`, `host`, `path` (as sent, percent-encoded), `query`, `target` (`X-Amz-Target`),
`amz_headers` (the names, not the values, of the other `x-amz-*` headers), `content_type`,
`body` (text, when JSON or form-encoded and at most 64 KiB; never S3's, which carries data;
`SecretString` and `SecretBinary` replaced by "<redacted>"), `body_bytes`, and `status` (the
answer's, null if it had not started when the application returned). The endpoint's own
control paths (`/_books/`, `/moto-api/`) are not recorded. Lines are appended whole, one
request at a time.

A recording can also start and stop while the endpoint runs (for a measurement of a window of
traffic, `scripts/cost.py`): `PUT /_books/calls` with `{"file": PATH}` appends to PATH from then
on (`200 {"file": PATH}`), `DELETE /_books/calls` goes back to BOOKS_RECORD_CALLS's file, or to
none (`200 {"file": ...}`), `GET /_books/calls` says which file is recorded to. Such a window
may keep larger bodies: `{"file": PATH, "body_limit": BYTES}` (a measurement of what is shipped
needs whole `PutLogEvents` batches, up to 1 MiB of events).

AWS documentation followed:
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html (what AWS evaluates for every call)
- https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html (the credential scope read here)
"""

import datetime
import json
import re
import threading
import urllib.parse

from moto.sts.models import sts_backends

from local_endpoint.wsgi import json_answer, read_body, whole_body

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


class CallRecorder:
    """WSGI middleware: every request, with its caller, appended as one JSON line to the file
    BOOKS_RECORD_CALLS names (behaviour 17). Inside WholeBodies, so the body is there to read."""

    BODY_LIMIT = 64 * 1024
    CONTROL_PATHS = ("/_books/", "/moto-api/")
    TEXT_BODIES = ("json", "x-www-form-urlencoded")
    # Not a request's parameters: its signature, its date, and the target recorded on its own.
    UNRECORDED_HEADERS = {"x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "x-amz-target",
                          "x-amz-user-agent"}
    REDACTED = ("SecretString", "SecretBinary")

    PATH = "/_books/calls"

    def __init__(self, app, path):
        self.app = app
        self.path = path
        self.body_limit = self.BODY_LIMIT
        self._configured = path
        self._guard = threading.Lock()

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == self.PATH:
            return self._control(environ, start_response)
        if not self.path or environ.get("PATH_INFO", "").startswith(self.CONTROL_PATHS):
            return self.app(environ, start_response)
        call = self._request(environ)
        statuses = []

        def recording(status, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, recording)
        finally:
            call["status"] = int(statuses[-1].split(" ", 1)[0]) if statuses else None
            line = json.dumps(call, separators=(",", ":")) + "\n"
            with self._guard:
                if self.path:  # a recording stopped while the call ran has it no more
                    with open(self.path, "a", encoding="utf-8") as file:
                        file.write(line)

    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method == "PUT":
            try:
                asked = json.loads(read_body(environ))
                path, body_limit = str(asked["file"]), int(asked.get("body_limit", self.BODY_LIMIT))
                if not 0 <= body_limit <= 16 * 1024 * 1024:
                    raise ValueError(f"body_limit must be 0 to 16 MiB, not {body_limit}")
                open(path, "a", encoding="utf-8").close()  # a file that cannot be written is refused now
            except (ValueError, KeyError, TypeError, OSError) as error:
                return json_answer(start_response, 400, {"message": f"a recording is {{file}}, a file the endpoint "
                                                                    f"can append to: {error!r}"})
            with self._guard:
                self.path, self.body_limit = path, body_limit
        elif method == "DELETE":
            with self._guard:
                self.path, self.body_limit = self._configured, self.BODY_LIMIT
        elif method != "GET":
            return json_answer(start_response, 405, {"message": f"{self.PATH} takes GET, PUT and DELETE"})
        return json_answer(start_response, 200, {"file": self.path})

    def _request(self, environ):
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or urllib.parse.quote(environ.get("PATH_INFO", ""))
        path = raw.split("?", 1)[0]
        if "://" in path:  # an absolute URI, as a proxy is sent
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        query = environ.get("QUERY_STRING", "")
        caller = _caller(environ.get("HTTP_AUTHORIZATION", ""), query)
        content_type = environ.get("CONTENT_TYPE", "")
        body = whole_body(environ)
        text = None
        if (len(body) <= self.body_limit and any(kind in content_type for kind in self.TEXT_BODIES)
                and (caller or {}).get("service") != "s3"):
            text = self._redacted(body.decode("utf-8", errors="replace"))
        return {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "caller": caller,
            "method": environ.get("REQUEST_METHOD"),
            "host": environ.get("HTTP_HOST", ""),
            "path": path or "/",
            "query": query,
            "target": environ.get("HTTP_X_AMZ_TARGET"),
            "amz_headers": sorted(name[5:].lower().replace("_", "-") for name in environ
                                  if name.startswith("HTTP_X_AMZ_")
                                  and name[5:].lower().replace("_", "-") not in self.UNRECORDED_HEADERS),
            "content_type": content_type,
            "body": text,
            "body_bytes": len(body),
        }

    def _redacted(self, text):
        if not any(field in text for field in self.REDACTED):
            return text
        try:
            document = json.loads(text)
        except ValueError:
            return None  # a secret in a form body: nothing of it is recorded
        if isinstance(document, dict):
            document.update({field: "<redacted>" for field in self.REDACTED if field in document})
        return json.dumps(document)


_CREDENTIAL = re.compile(r"([^/\s,]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


def _caller(authorization, query):
    """Who signed the request (SigV4 header or presigned URL), and as which assumed role; None
    when it is not signed with SigV4."""
    scope = None
    if "Credential=" in authorization:
        scope = _CREDENTIAL.match(authorization.split("Credential=", 1)[1])
    elif "X-Amz-Credential" in query:
        credential = dict(urllib.parse.parse_qsl(query)).get("X-Amz-Credential", "")
        scope = _CREDENTIAL.match(credential)
    if scope is None:
        return None
    key, _, region, service = scope.groups()
    caller = {"access_key_id": key, "service": service, "region": region, "role_arn": None, "session_arn": None}
    for _ in range(3):  # another thread's first call in a new account changes the dictionaries read here
        try:
            role = next((role for account in list(sts_backends.values()) for backend in list(account.values())
                         for role in list(backend.assumed_roles) if role.access_key_id == key), None)
            break
        except RuntimeError:
            role = None
    if role is not None:
        caller.update(role_arn=role.role_arn, session_arn=role.arn)
    return caller
