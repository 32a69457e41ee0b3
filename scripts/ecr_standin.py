#!/usr/bin/env python3
"""ECR's registry as an account with default settings serves it, for the local AWS endpoint
(moto has ECR's API but no registry): Debian's docker-registry, its blobs in the endpoint's S3,
behind a proxy that refuses what ECR refuses, so that a client that works here works on ECR.

    ecr_standin.py serve --endpoint URL --region REGION --dir DIR --ready-file FILE

writes {"registry": "127.0.0.1:PORT"} to FILE once it serves, and serves until SIGTERM or SIGINT.
Credentials for the endpoint come from the environment, as for any AWS SDK. Stricter than
docker-registry alone, each as ECR is:

- Credentials: every request needs Basic `AWS:<password>`, the password of the endpoint's
  GetAuthorizationToken, else 401 DENIED with a Basic challenge (AmazonECR/latest/userguide/
  registry_auth.html).
- Repositories are ECR's: a name the endpoint's ECR does not have is 404 NAME_UNKNOWN in ECR's
  words. Asked per request: a repository Terraform deleted is gone at once.
- No cross-repository mounts: ECR mounts a blob from another repository only once the account's
  BLOB_MOUNTING setting is enabled, and it is off by default (AmazonECR/latest/userguide/
  blob-mounting.html). A mount request starts a plain upload instead, 202 and not 201, which the
  OCI distribution spec allows ("Mounting a blob from another repository"): the client uploads.
- Immutable tags: in an IMMUTABLE repository, a manifest put under a tag the repository holds is
  400 TAG_INVALID (AmazonECR/latest/userguide/image-tag-mutability.html: refused "if you attempt
  to push an image with a tag that is already in the repository"), the same image or not: ECR
  does not compare digests (aws/containers-roadmap#2179 and #2380). Its current wording ends
  "because the tag is immutable" (older answers: "the repository is immutable";
  GoogleContainerTools/kaniko#3481).
- Blobs come from S3: a blob GET is docker-registry's own 307 to a presigned URL on the endpoint's
  S3, passed through untouched; a client that sends its registry credentials along is refused
  there, as by ECR's S3 (scripts/local_endpoint/s3_authentication.py, behaviour 15).

What the registry accepts is recorded in the endpoint's ECR (PutImage, BatchDeleteImage), so that
ECR's API and the endpoint's Lambda see what was pushed.
"""

import argparse
import base64
import binascii
import hmac
import http.client
import http.server
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import boto3

_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<reference>[^/]*)")
# Not carried between client and registry: hop-by-hop headers (an Expect was answered here), the
# lengths set again, and the client's credentials (the registry has none).
_NOT_CARRIED = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect",
                "content-length", "authorization"}


class Ecr:
    """What the proxy asks of the endpoint's ECR API."""

    def __init__(self, client):
        self.client = client
        data = client.get_authorization_token()["authorizationData"][0]
        self.password = base64.b64decode(data["authorizationToken"]).decode().partition(":")[2]
        self.realm = data["proxyEndpoint"]

    def repository(self, name):
        """(the repository's description, None), or (None, ECR's message that it does not exist)."""
        try:
            return self.client.describe_repositories(repositoryNames=[name])["repositories"][0], None
        except self.client.exceptions.RepositoryNotFoundException as error:
            return None, error.response["Error"]["Message"]

    def holds(self, name, image_id):
        return bool(self.client.batch_get_image(repositoryName=name, imageIds=[image_id])["images"])

    def record(self, name, tag, manifest, media_type, digest):
        if tag is None and self.holds(name, {"imageDigest": digest}):
            return  # pushed again by digest: nothing new to record
        try:
            self.client.put_image(repositoryName=name, imageManifest=manifest.decode(), imageDigest=digest,
                                  imageManifestMediaType=media_type, **({"imageTag": tag} if tag else {}))
        except self.client.exceptions.ImageAlreadyExistsException:
            pass

    def forget(self, name, reference):
        image_id = {"imageDigest": reference} if ":" in reference else {"imageTag": reference}
        self.client.batch_delete_image(repositoryName=name, imageIds=[image_id])


class Proxy(http.server.BaseHTTPRequestHandler):
    """One client request: judged as ECR would, then carried to docker-registry (`registry`,
    host:port) with its Host header unchanged, so the registry's Location headers name the proxy."""

    protocol_version = "HTTP/1.1"
    ecr: Ecr
    registry: str

    def _serve(self):
        body = self._read_body()
        if not self._authorized():
            return self._error(401, "DENIED", "Not Authorized",
                               [("WWW-Authenticate", f'Basic realm="{self.ecr.realm}",service="ecr.amazonaws.com"')])
        url = urllib.parse.urlsplit(self.path)
        route = _ROUTE.match(url.path)
        if route is None:
            return self._reply(*self._carry(body))
        name, kind, reference = route.group("name", "kind", "reference")
        repository, unknown = self.ecr.repository(name)
        if repository is None:
            return self._error(404, "NAME_UNKNOWN", unknown)
        if kind == "blobs" and self.command == "POST":  # never a mount: ECR's BLOB_MOUNTING is off
            query = [(k, v) for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True)
                     if k not in ("mount", "from")]
            return self._reply(*self._carry(body, url._replace(query=urllib.parse.urlencode(query)).geturl()))
        if kind == "manifests" and self.command == "PUT":
            return self._put_manifest(repository, reference, body)
        status, reason, headers, answer = self._carry(body)
        if kind == "manifests" and self.command == "DELETE" and status == 202:
            self.ecr.forget(name, reference)
        return self._reply(status, reason, headers, answer)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _put_manifest(self, repository, reference, body):
        name = repository["repositoryName"]
        tag = None if ":" in reference else reference  # a digest is algorithm:hex; a tag has no colon
        if tag and repository["imageTagMutability"] == "IMMUTABLE" and self.ecr.holds(name, {"imageTag": tag}):
            return self._error(400, "TAG_INVALID", f"The image tag '{tag}' already exists in the '{name}' repository "
                                                   f"and cannot be overwritten because the tag is immutable.")
        status, reason, headers, answer = self._carry(body)
        if status == 201:
            digest = dict((k.lower(), v) for k, v in headers)["docker-content-digest"]
            self.ecr.record(name, tag, body, self.headers["Content-Type"], digest)
        return self._reply(status, reason, headers, answer)

    def _authorized(self):
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and user == "AWS" and hmac.compare_digest(password, self.ecr.password)

    def _read_body(self):
        """The request's body, whole: a client's next request on this connection starts after it."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers, up to the empty line
            pass
        return b"".join(chunks)

    def _carry(self, body, path=None):
        """The registry's answer to the request: (status, reason, headers, body)."""
        connection = http.client.HTTPConnection(self.registry, timeout=300)
        try:
            # Header by header: a client sends one Accept per media type it takes, and the
            # registry answers a manifest only in a type one of them names.
            connection.putrequest(self.command, path or self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _NOT_CARRIED:
                    connection.putheader(key, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            answer = connection.getresponse()
            return answer.status, answer.reason, answer.getheaders(), answer.read()
        finally:
            connection.close()

    def _reply(self, status, reason, headers, body):
        self.send_response(status, reason)
        length = str(len(body))
        for key, value in headers:
            if key.lower() == "content-length" and self.command == "HEAD":
                length = value  # what a GET would carry
            elif key.lower() not in _NOT_CARRIED | {"date", "server"}:
                self.send_header(key, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code, message, headers=()):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._reply(status, None, [("Content-Type", "application/json; charset=utf-8"),
                                   ("Docker-Distribution-Api-Version", "registry/2.0"), *headers], body)


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 64  # a client uploads several layers at once; 5 pending connections are few
    daemon_threads = True


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(address):
    connection = http.client.HTTPConnection(address, timeout=2)
    try:
        connection.request("GET", "/v2/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_registry(folder, endpoint, region, bucket, credentials):
    """docker-registry on a free port of 127.0.0.1, its blobs in `bucket` on the endpoint's S3,
    answering: (its process, host:port)."""
    if shutil.which("docker-registry") is None:
        sys.exit("error: docker-registry not found. Fix: make tools-images (apt-get install docker-registry)")
    address = f"127.0.0.1:{_free_port()}"
    config = {"version": "0.1", "log": {"level": "warn"}, "http": {"addr": address},
              "storage": {"s3": {"accesskey": credentials.access_key, "secretkey": credentials.secret_key,
                                 "region": region, "regionendpoint": endpoint, "bucket": bucket,
                                 "secure": False, "v4auth": True},
                          "redirect": {"disable": False}, "delete": {"enabled": True},
                          "maintenance": {"uploadpurging": {"enabled": False}}}}
    (folder / "registry.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
    # The Go SDK fails to start ("LoadCustomCABundleError") with this machine's AWS_CA_BUNDLE.
    environment = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    with open(folder / "registry.log", "ab") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(folder / "registry.yml")],
                                   stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + 60
        while not _answers(address):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"error: docker-registry did not answer on {address}; its log: {folder / 'registry.log'}")
            time.sleep(0.1)
    except BaseException:  # a failed start, or SIGTERM meanwhile: the registry goes too
        process.kill()
        process.wait()
        raise
    return process, address


def serve(arguments):
    session = boto3.session.Session(region_name=arguments.region)
    ecr = Ecr(session.client("ecr", endpoint_url=arguments.endpoint))
    s3 = session.client("s3", endpoint_url=arguments.endpoint)
    bucket = f"ecr-standin-{ecr.client.describe_registry()['registryId']}-{arguments.region}"
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        location = {} if arguments.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": arguments.region}}
        s3.create_bucket(Bucket=bucket, **location)
    folder = pathlib.Path(arguments.dir)
    folder.mkdir(parents=True, exist_ok=True)
    registry, address = start_registry(folder, arguments.endpoint, arguments.region, bucket,
                                       session.get_credentials().get_frozen_credentials())
    try:
        server = _Server(("127.0.0.1", 0), type("EcrProxy", (Proxy,), {"ecr": ecr, "registry": address}))
        ready = pathlib.Path(arguments.ready_file)
        partial = ready.with_name(ready.name + ".partial")
        partial.write_text(json.dumps({"registry": f"127.0.0.1:{server.server_port}"}))
        partial.replace(ready)
        server.serve_forever()
    finally:
        registry.terminate()
        registry.wait(timeout=30)


def _stop(signum, frame):  # noqa: ARG001 - the signal handler's signature
    raise SystemExit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve until SIGTERM or SIGINT")
    serving.add_argument("--endpoint", required=True, help="the local AWS endpoint's URL")
    serving.add_argument("--region", required=True)
    serving.add_argument("--dir", required=True, help="for docker-registry's configuration and log")
    serving.add_argument("--ready-file", required=True, help='gets {"registry": "127.0.0.1:PORT"} once it serves')
    arguments = parser.parse_args(argv)
    # From the start: docker-registry is stopped whenever this process is.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    serve(arguments)


if __name__ == "__main__":
    main()
