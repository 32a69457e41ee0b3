"""Set-up shared by the scripts' tests: the local endpoint (scripts/local_endpoint's server) served in this
process, and small OCI images written by hand."""

import gzip
import hashlib
import io
import json
import os
import pathlib
import sys
import tarfile
import threading
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import local_endpoint  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

local_endpoint.install()



def in_moto_mock(test):
    """`test` run against moto's in-process mock (mock_aws), with test credentials and without
    AWS_ENDPOINT_URL (which would send its calls past the mock); the environment is put back."""
    import functools

    from moto import mock_aws

    @functools.wraps(test)
    def run(*args, **kwargs):
        with unittest.mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}):
            os.environ.pop("AWS_ENDPOINT_URL", None)
            with mock_aws():
                return test(*args, **kwargs)
    return run


def create_table(dynamodb, name, range_key=None, stream=False):
    """An on-demand table keyed by string `pk` (and `range_key`), with a stream if asked."""
    keys = ["pk"] + ([range_key] if range_key else [])
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ["HASH", "RANGE"])],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        **({"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}))


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class QuietRequests(WSGIRequestHandler):
    def log_request(self, *args):
        pass


def serve_endpoint(add_cleanup, environment=None):
    """The local endpoint as moto_server.py serves it, on a free port until the cleanups that
    `add_cleanup` (a test's addCleanup, a class's addClassCleanup) registers run: its URL.
    `environment` is what the server's environment adds when it starts (BOOKS_RECORD_CALLS, ...)."""
    import moto.server
    with unittest.mock.patch.dict(os.environ, environment or {}):
        app = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)
    endpoint = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequests)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    add_cleanup(endpoint.server_close)
    add_cleanup(endpoint.shutdown)
    host, port = endpoint.server_address
    return f"http://{host}:{port}"


def _blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def oci_image(layout, text, tag="latest", index=False):
    """Writes (or adds to) the OCI layout `layout` an image of one tiny layer holding `text`, as
    `tag`; wrapped in an image index when `index`. Returns the layer's descriptor and the digest
    of the manifest (or the index) `tag` names."""
    layout = pathlib.Path(layout)
    content = text.encode()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        member = tarfile.TarInfo("hello.txt")
        member.size, member.mtime = len(content), 0
        archive.addfile(member, io.BytesIO(content))
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             **_blob(layout, gzip.compress(tar.getvalue(), mtime=0))}
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar.getvalue()).hexdigest()]}}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **_blob(layout, json.dumps(config).encode())},
                "layers": [layer]}
    named = {"mediaType": OCI_MANIFEST, **_blob(layout, json.dumps(manifest).encode())}
    if index:
        wrapper = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                   "manifests": [{**named, "platform": {"architecture": "amd64", "os": "linux"}}]}
        named = {"mediaType": OCI_INDEX, **_blob(layout, json.dumps(wrapper).encode())}
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    listing = layout / "index.json"
    held = json.loads(listing.read_text())["manifests"] if listing.exists() else []
    held = [m for m in held if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    held.append({**named, "annotations": {"org.opencontainers.image.ref.name": tag}})
    listing.write_text(json.dumps({"schemaVersion": 2, "manifests": held}))
    return layer, named["digest"]
