"""S3's refusals of a presigned request sent with credentials, or expired.

S3 refuses a request that authenticates two ways, a presigned query (`X-Amz-Algorithm`,
`X-Amz-Signature`, or SigV2's `Signature`) and an `Authorization` header: 400 InvalidArgument,
"Only one auth mechanism allowed; ...". A registry that serves blobs by redirecting to a
presigned S3 URL (ECR, and the stand-in for it, scripts/ecr_standin.py) meets exactly this when
its client sends the registry's credentials along on the redirect; moto answered the blob. An
expired presigned URL is 403 AccessDenied "Request has expired", where moto answered it too.
Only requests moto dispatches to S3 are judged, by moto's own dispatch (`S3Authentication`).

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html (presigned URLs, their expiry)
- https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (InvalidArgument, AccessDenied)
"""

import datetime
import random
import time
import urllib.parse

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


class S3Authentication:
    """WSGI middleware around moto's dispatcher: S3's refusals of a presigned request that also
    carries an `Authorization` header, or has expired (behaviour 15). moto checks neither."""

    ONE_MECHANISM = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
                     "query string parameter or the Authorization header should be specified")

    def __init__(self, dispatcher):
        self.app = dispatcher

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        presigned = {"X-Amz-Algorithm", "X-Amz-Signature", "Signature"} & query.keys()
        if not presigned or not self._dispatched_to_s3(environ):
            return self.app(environ, start_response)
        if environ.get("HTTP_AUTHORIZATION"):
            # S3 names the header; its value, a credential, is not echoed here.
            return _s3_error(start_response, "400 Bad Request", "InvalidArgument", self.ONE_MECHANISM,
                             ArgumentName="Authorization")
        expires = _presigned_expiry(query)
        now = time.time()
        if expires is not None and now > expires:
            return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Request has expired",
                             Expires=_iso(expires), ServerTime=_iso(now))
        return self.app(environ, start_response)

    def _dispatched_to_s3(self, environ):
        """Whether moto's dispatcher sends the request to S3: its own inference, and its default."""
        host = self.app.infer_service_region_host(environ, environ.get("PATH_INFO", ""))
        return self.app.get_backend_for_host(host or "s3.us-east-1.amazonaws.com") == "s3"


def _presigned_expiry(query):
    """When a presigned URL expires (seconds since the epoch): SigV4's X-Amz-Date plus
    X-Amz-Expires, or SigV2's Expires; None when it says neither readably."""
    try:
        if "X-Amz-Date" in query and "X-Amz-Expires" in query:
            signed = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
            return signed.replace(tzinfo=datetime.timezone.utc).timestamp() + int(query["X-Amz-Expires"])
        if "Expires" in query:
            return float(query["Expires"])
    except ValueError:
        pass
    return None


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _s3_error(start_response, status, code, message, **details):
    """An error in S3's XML format."""
    fields = "".join(f"<{name}>{value}</{name}>" for name, value in details.items())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"{fields}<RequestId>{random.getrandbits(64):016X}</RequestId></Error>").encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]
