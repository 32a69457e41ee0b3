#!/usr/bin/env python3
"""What the delivery and provisioning ask of an image registry, over its HTTP API (the OCI
distribution API that ECR and Debian's docker-registry both speak), so the same code runs
against ECR and against the local registry standing in for it in the rehearsal:

    registry.py digest REPOSITORY TAG        the manifest digest TAG names, or nothing
    registry.py tag REPOSITORY DIGEST TAG    add TAG to the image DIGEST (no pull, no push of
                                             layers: the manifest is put again under TAG)
    registry.py tags REPOSITORY              every tag, one a line
    registry.py copy SOURCE DIGEST TARGET TAG
                                             copy the image DIGEST of repository SOURCE to
                                             TARGET as TAG, same manifest, same digest (layers
                                             mounted across repositories, else uploaded)
    registry.py delete REPOSITORY            delete every image (what deleting an ECR
                                             repository with force_delete does to its images)

REPOSITORY is host[:port]/name. Credentials, when the registry wants them (ECR: user AWS and
the authorization token's password), come from REGISTRY_USERNAME and REGISTRY_PASSWORD in the
environment, never from the command line. A host on 127.0.0.1 or localhost is spoken to in
plain HTTP, every other in HTTPS.

Python rather than a container tool: docker, podman and buildah each inspect and retag remote
images differently (or not at all without pulling); one HTTP client serves all three.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request

# Attempts of a request that met a connection error or a gateway's 502/503/504: a registry on a
# loaded machine (or ECR behind its load balancer) sometimes closes a connection mid-request.
ATTEMPTS = 4
RETRIED_STATUS = {502, 503, 504}


def urlopen(request: urllib.request.Request, timeout: float):
    """urllib's urlopen, trying again (with backoff) after a dropped connection or a gateway
    error. Every request made here may be repeated: reads, a manifest put under a tag, a
    delete, an upload's start and finish."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUS or attempt == ATTEMPTS:
                raise
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError):
            if attempt == ATTEMPTS:
                raise
        time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class Registry:
    def __init__(self, repository: str) -> None:
        host, _, name = repository.partition("/")
        if not name:
            raise SystemExit(f"error: {repository!r} is not host/name")
        local = host.split(":")[0] in ("127.0.0.1", "localhost")
        self.base = f"{'http' if local else 'https'}://{host}/v2/{name}"
        user, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
        self.auth = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user and password else None
        )

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        if self.auth:
            request.add_header("Authorization", self.auth)
        return urlopen(request, timeout=60)

    def digest(self, reference: str) -> str | None:
        try:
            with self.request("HEAD", f"/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}) as response:
                return response.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def tag(self, digest: str, tag: str) -> None:
        with self.request("GET", f"/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}) as response:
            manifest, media_type = response.read(), response.headers.get("Content-Type")
        with self.request("PUT", f"/manifests/{tag}", body=manifest, headers={"Content-Type": media_type}):
            pass
        if self.digest(tag) != digest:
            raise SystemExit(f"error: {tag} does not name {digest} after tagging")

    def tags(self) -> list[str]:
        try:
            with self.request("GET", "/tags/list") as response:
                return json.load(response).get("tags") or []
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise


    def manifest(self, reference: str) -> tuple[bytes, str]:
        with self.request("GET", f"/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}) as response:
            return response.read(), response.headers.get("Content-Type")

    def has_blob(self, digest: str) -> bool:
        try:
            with self.request("HEAD", f"/blobs/{digest}"):
                return True
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise

    def copy_from(self, source: "Registry", digest: str, tag: str) -> None:
        """Puts source's image `digest` here under `tag`: the same manifest bytes, so the same digest."""
        if self.base.split("/v2/")[0] != source.base.split("/v2/")[0]:
            raise SystemExit("error: copy works within one registry (ECR: one account and region)")
        manifest, media_type = source.manifest(digest)
        document = json.loads(manifest)
        if "layers" not in document:
            raise SystemExit(f"error: {digest} is a {media_type}, not a single image manifest")
        source_name = source.base.split("/v2/", 1)[1]
        for blob in [document["config"], *document["layers"]]:
            if self.has_blob(blob["digest"]):
                continue
            # Mount from the source repository when the registry can; else upload it.
            with self.request("POST", f"/blobs/uploads/?mount={blob['digest']}&from={source_name}", body=b"") as response:
                if response.status == 201:
                    continue
                location = response.headers["Location"]
            with source.request("GET", f"/blobs/{blob['digest']}") as response:
                content = response.read()
            upload = urllib.request.Request(
                self.absolute(location), data=content, method="PATCH", headers={"Content-Type": "application/octet-stream"}
            )
            if self.auth:
                upload.add_header("Authorization", self.auth)
            with urllib.request.urlopen(upload, timeout=300) as response:
                location = response.headers["Location"]
            separator = "&" if "?" in location else "?"
            finish = urllib.request.Request(
                self.absolute(location) + f"{separator}digest={blob['digest']}", data=b"", method="PUT"
            )
            if self.auth:
                finish.add_header("Authorization", self.auth)
            with urlopen(finish, timeout=300):
                pass
        with self.request("PUT", f"/manifests/{tag}", body=manifest, headers={"Content-Type": media_type}):
            pass
        if self.digest(tag) != digest:
            raise SystemExit(f"error: {tag} does not name {digest} after the copy")

    def absolute(self, location: str) -> str:
        return location if location.startswith("http") else self.base.split("/v2/")[0] + location

    def delete_all(self) -> None:
        digests = {self.digest(tag) for tag in self.tags()} - {None}
        for digest in digests:
            with self.request("DELETE", f"/manifests/{digest}"):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    digest = commands.add_parser("digest")
    digest.add_argument("repository")
    digest.add_argument("tag")
    tag = commands.add_parser("tag")
    tag.add_argument("repository")
    tag.add_argument("digest")
    tag.add_argument("tag")
    tags = commands.add_parser("tags")
    tags.add_argument("repository")
    copy = commands.add_parser("copy")
    copy.add_argument("source")
    copy.add_argument("digest")
    copy.add_argument("target")
    copy.add_argument("tag")
    delete = commands.add_parser("delete")
    delete.add_argument("repository")
    args = parser.parse_args()
    registry = Registry(args.source if args.command == "copy" else args.repository)
    try:
        if args.command == "digest":
            print(registry.digest(args.tag) or "")
        elif args.command == "tag":
            registry.tag(args.digest, args.tag)
        elif args.command == "copy":
            Registry(args.target).copy_from(registry, args.digest, args.tag)
        elif args.command == "tags":
            print("\n".join(registry.tags()))
        else:
            registry.delete_all()
    except (urllib.error.URLError, OSError) as error:
        sys.exit(f"error: registry {getattr(args, 'repository', None) or args.source}: {error}")


if __name__ == "__main__":
    main()
