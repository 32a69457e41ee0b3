"""The two images of docker/Dockerfile, built from the prebuilt static binaries with the
container tool at hand, and pushed as single image manifests.

The images have no base image: the binaries are static, and the one file they need besides
themselves is a bundle of root certificates (the AWS SDK's HTTPS client trusts the system's roots,
found by openssl-probe at /etc/ssl/certs/ca-certificates.crt; Lambda's own files are not in a
container image). The bundle is Mozilla's, from certifi, pinned in requirements.txt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import Refusal
from .registry import Registry, refuse_unless_single_image

KINDS = ("command", "query")
BINARIES = ("books-command", "books-query", "books-projector", "books-telemetry")
TOOLS = ("docker", "podman", "buildah")
PLATFORM = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}


def _docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def choose_tool(requested: str | None) -> str:
    """CONTAINER_TOOL, else the first of docker (only when its engine answers: the CLI alone
    cannot build), podman and buildah."""
    if requested:
        if requested not in TOOLS:
            raise Refusal(f"CONTAINER_TOOL={requested}: docker, podman or buildah")
        if not shutil.which(requested):
            raise Refusal(f"CONTAINER_TOOL={requested} is not on PATH")
        if requested == "docker" and not _docker_answers():
            raise Refusal("docker is installed but its engine does not answer: start it, or use CONTAINER_TOOL=podman|buildah")
        return requested
    for tool in TOOLS:
        if shutil.which(tool) and (tool != "docker" or _docker_answers()):
            return tool
    raise Refusal("no usable container tool: start Docker, or install podman or buildah "
                  "(Debian: apt-get install buildah), or set CONTAINER_TOOL")


def image_tag(root: Path) -> str:
    """What the images are built from: the revision, and for a tree with changes a marker and a
    hash of those changes (tracked diff and untracked files), so two different trees never share
    a tag and the same tree always gets the same one."""
    def git(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *arguments], capture_output=True)

    revision = git("rev-parse", "--short=12", "HEAD")
    if revision.returncode != 0:
        raise Refusal("the delivery tags images with the git revision they are built from: run it in a git checkout")
    revision_text = revision.stdout.decode().strip()
    if not git("status", "--porcelain", "--untracked-files=normal").stdout.strip():
        return revision_text
    changes = hashlib.sha256(git("diff", "HEAD", "--binary").stdout)
    for name in sorted(git("ls-files", "--others", "--exclude-standard", "-z").stdout.split(b"\0")):
        if name:
            changes.update(name + b"\0" + hashlib.sha256((root / name.decode()).read_bytes()).digest())
    tag = f"{revision_text}-dirty-{changes.hexdigest()[:12]}"
    print(f"warning: the tree has uncommitted changes: tag {tag} (commit them for a reproducible delivery)", flush=True)
    return tag


class Builder:
    """Builds and pushes books-<kind>:<tag> with one container tool."""

    def __init__(self, root: Path, tool: str, arch: str, tag: str, containers_root: Path | None,
                 base_image: str | None, tls_verify: bool):
        self.root, self.tool, self.arch, self.tag = root, tool, arch, tag
        self.base_image = base_image
        self.tls_verify = tls_verify
        # buildah and podman keep their images under CONTAINERS_ROOT when it is set, on vfs,
        # which needs no privileges, overlay support or daemon (the tests' storage, never the
        # machine's).
        self.storage = ([] if tool == "docker" or not containers_root else
                        ["--root", str(containers_root / "storage"), "--runroot", str(containers_root / "run"),
                         "--storage-driver", "vfs"])

    def local_name(self, kind: str) -> str:
        return f"books-{kind}:{self.tag}"

    def build(self, bin_dir: Path) -> None:
        missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
        if missing:
            raise Refusal(f"{', '.join(missing)} missing in {bin_dir}: run make release-binaries")
        import certifi  # the venv's, pinned in requirements.txt

        revision = subprocess.run(["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, text=True)
        with tempfile.TemporaryDirectory(prefix="books-image-") as context:
            # The build context holds just what the images copy, never the repository.
            for name in BINARIES:
                shutil.copy(bin_dir / name, Path(context) / name)
                os.chmod(Path(context) / name, 0o755)
            shutil.copy(certifi.where(), Path(context) / "ca-certificates.crt")
            os.chmod(Path(context) / "ca-certificates.crt", 0o644)
            for kind in KINDS:
                print(f"==> building {self.local_name(kind)} ({self.arch}, on {self.base_image or 'no base image'}) "
                      f"with {self.tool}", flush=True)
                arguments = ["-f", str(self.root / "docker" / "Dockerfile"), "--target", kind,
                             "--build-arg", f"REVISION={revision.stdout.strip() or 'unknown'}",
                             "-t", self.local_name(kind)]
                if self.base_image:
                    arguments += ["--build-arg", f"BASE_IMAGE={self.base_image}"]
                if self.tool == "buildah":
                    command = ["buildah", *self.storage, "bud", "--isolation", "chroot", "--arch", self.arch,
                               "--os", "linux", "--layers=false", *arguments, context]
                else:
                    command = [self.tool, *self.storage, "build", "--platform", PLATFORM[self.arch], *arguments, context]
                # BuildKit would wrap the image in an index with provenance attestations.
                environment = {**os.environ, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
                if subprocess.run(command, env=environment).returncode != 0:
                    raise Refusal(f"building {self.local_name(kind)} with {self.tool} failed (above)")

    def push(self, kind: str, repository: str, registry: Registry) -> str:
        """Pushes books-<kind>:<tag> to <repository>:<tag>, reads back what the registry holds
        under that tag, and returns its digest: refused unless it is a single image manifest."""
        target = f"{repository}:{self.tag}"
        print(f"==> pushing {target}", flush=True)
        with tempfile.TemporaryDirectory(prefix="books-push-") as folder:
            if self.tool == "docker":
                # docker's own push sends what its image store holds, an index with the
                # containerd store; its archive is one image, and skopeo pushes that.
                archive = Path(folder) / "image.tar"
                if subprocess.run(["docker", "save", "-o", str(archive), self.local_name(kind)]).returncode != 0:
                    raise Refusal(f"docker save {self.local_name(kind)} failed (above)")
                digest = registry.push_archive(f"docker-archive:{archive}", target)
            else:
                digest_file = Path(folder) / "digest"
                command = [self.tool, *self.storage, "push", f"--tls-verify={str(self.tls_verify).lower()}",
                           "--authfile", str(registry.auth_file), "--digestfile", str(digest_file),
                           self.local_name(kind), f"docker://{target}"]
                if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
                    raise Refusal(f"pushing {target} with {self.tool} failed (above)")
                digest = digest_file.read_text().strip()
        pushed = registry.inspect(target)
        if pushed is None:
            raise Refusal(f"{target} is not in the registry after its push")
        refuse_unless_single_image(target, pushed)
        if pushed.digest != digest:
            raise Refusal(f"{target} holds {pushed.digest}, the push reported {digest}")
        print(f"    {digest} ({pushed.media_type})", flush=True)
        return digest
