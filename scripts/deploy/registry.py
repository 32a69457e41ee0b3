"""The image registry (ECR, or in a rehearsal the stand-in for it, scripts/ecr_standin.py) through
skopeo, the maintained tool of the containers project: it speaks the distribution API as a
registry client should (follows a blob read's redirect to S3 without the registry's credentials,
falls back to uploading when a cross-repository mount is refused, as ECR does by default) and
copies an image by digest without changing a byte of its manifest.

Only single image manifests are accepted, because they are all Lambda runs: "Lambda supports
Docker image manifest V2, schema 2 and OCI image manifests"; an image index (which BuildKit
makes by default, adding provenance attestations) is refused as an unsupported media type.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import Refusal

IMAGE_MANIFESTS = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
}
INDEXES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
NOT_FOUND = ("manifest unknown", "name unknown", "not found", "does not exist")


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str


def media_type(document: dict) -> str:
    """A manifest's media type: its own field, else what its shape says (OCI makes the field
    optional)."""
    if document.get("mediaType"):
        return document["mediaType"]
    if "manifests" in document:
        return "application/vnd.oci.image.index.v1+json"
    return "application/vnd.oci.image.manifest.v1+json"


def refuse_unless_single_image(reference: str, manifest: Manifest) -> None:
    if manifest.media_type in IMAGE_MANIFESTS:
        return
    kind = "an image index" if manifest.media_type in INDEXES else "not an image manifest"
    raise Refusal(
        f"{reference} is {kind} ({manifest.media_type}, {manifest.digest}): Lambda runs only a single-platform "
        "image manifest (Docker v2 schema 2 or OCI). Docker's BuildKit adds an index with provenance attestations "
        "by default: build with --provenance=false --sbom=false (or BUILDX_NO_DEFAULT_ATTESTATIONS=1), or use "
        "CONTAINER_TOOL=buildah|podman; the repository's tags are immutable, so deliver it under a new tag "
        "(a new commit)"
    )


class Registry:
    """skopeo with one registry's credentials, kept in an auth file of a private temporary
    folder (never on a command line, where other processes could read them)."""

    def __init__(self, tls_verify: bool = True):
        self.tls_verify = tls_verify
        self._folder = tempfile.TemporaryDirectory(prefix="books-registry-")
        self.auth_file = Path(self._folder.name) / "auth.json"
        self.auth_file.write_text('{"auths": {}}')
        self.auth_file.chmod(0o600)

    def close(self) -> None:
        self._folder.cleanup()

    def login(self, host: str, user: str, password: str) -> None:
        auths = json.loads(self.auth_file.read_text())
        auths["auths"][host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        self.auth_file.write_text(json.dumps(auths))

    def _skopeo(self, command: str, *arguments: str) -> subprocess.CompletedProcess:
        tls = []
        if not self.tls_verify:
            tls = ["--src-tls-verify=false", "--dest-tls-verify=false"] if command == "copy" else ["--tls-verify=false"]
        auth = (["--src-authfile", str(self.auth_file), "--dest-authfile", str(self.auth_file)]
                if command == "copy" else ["--authfile", str(self.auth_file)])
        return subprocess.run(["skopeo", command, *auth, *tls, *arguments], capture_output=True, text=False)

    def inspect(self, reference: str) -> Manifest | None:
        """The manifest `reference` (repository:tag or repository@digest) names, or None."""
        result = self._skopeo("inspect", "--raw", f"docker://{reference}")
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace")
            if any(marker in error.lower() for marker in NOT_FOUND):
                return None
            raise Refusal(f"reading {reference} from the registry failed: {error.strip()}")
        raw = result.stdout
        return Manifest("sha256:" + hashlib.sha256(raw).hexdigest(), media_type(json.loads(raw)))

    def copy(self, source: str, target: str) -> None:
        """Copies the image `source` names to `target`, the manifest byte for byte (the same
        digest); blobs the target repository has are not sent again."""
        result = self._skopeo("copy", "--quiet", "--preserve-digests", f"docker://{source}", f"docker://{target}")
        if result.returncode != 0:
            raise Refusal(f"copying {source} to {target} failed: {result.stderr.decode(errors='replace').strip()}")

    def push_archive(self, archive: str, target: str) -> str:
        """Pushes a local image (a containers transport reference such as docker-archive:FILE)
        to `target`; returns the pushed digest."""
        digest_file = Path(self._folder.name) / "pushed.digest"
        result = self._skopeo("copy", "--quiet", "--digestfile", str(digest_file), archive, f"docker://{target}")
        if result.returncode != 0:
            raise Refusal(f"pushing {target} failed: {result.stderr.decode(errors='replace').strip()}")
        return digest_file.read_text().strip()

    def tags(self, repository: str) -> list[str]:
        result = self._skopeo("list-tags", f"docker://{repository}")
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace")
            if any(marker in error.lower() for marker in NOT_FOUND):
                return []
            raise Refusal(f"listing the tags of {repository} failed: {error.strip()}")
        return json.loads(result.stdout).get("Tags") or []


def standin(uri: str, standin_host: str | None) -> str:
    """An ECR repository URI, or the same repository on the registry standing in for ECR."""
    return f"{standin_host}/{uri.split('/', 1)[1]}" if standin_host else uri
