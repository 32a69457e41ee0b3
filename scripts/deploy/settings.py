"""What the user asked for (the environment variables make passes, docs/deploying.md),
and the decisions taken from that alone: which environment, which state, what is refused, and
whether this machine has what a step needs. Nothing here calls AWS."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import Refusal

PROJECT = "books"
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
ARCHITECTURES = ("arm64", "x86_64")
BACKENDS = ("local", "s3")
# Terraform 1.10 locks S3 state with a lock object (use_lockfile); 1.11 writes the cursor key
# through a write-only argument (terraform/README.md).
TERRAFORM_MINIMUM = (1, 11)
PYTHON_MINIMUM = (3, 11)


def _flag(value: str | None) -> bool:
    return value == "1"


@dataclass(frozen=True)
class Settings:
    """Every setting of every step, read once from the environment."""

    root: Path
    environment: str
    region: str | None
    arch: str
    arch_explicit: bool
    backend: str | None
    auto_approve: bool
    destroy_data: bool
    deploy_dir: Path
    from_environment: str | None
    from_record: Path | None
    ecr_standin: str | None
    registry: str | None
    container_tool: str | None
    base_image: str | None
    containers_root: Path | None
    endpoint_url: str | None
    terraform: str
    client: str | None
    verify_url: str | None
    verify_wait_secs: str | None
    books_local: Path | None
    books_repair: Path | None
    account_backend: str | None
    state_bucket: bool
    github_repository: str | None
    github_oidc_provider_arn: str | None
    in_ci: bool
    plan_id: str | None
    bin_dir: Path | None
    tag: str | None
    digests: Path | None
    function: str | None
    since: str | None
    filter_pattern: str | None
    follow: bool
    raw_json: bool
    local_ready: Path | None
    local_tfstate: Path | None
    release: str | None
    canary_percent: str | None
    canary_minutes: str | None

    @classmethod
    def from_environ(cls, environ: dict[str, str], root: Path) -> Settings:
        def get(name: str) -> str | None:
            return environ.get(name) or None

        def path(name: str) -> Path | None:
            value = get(name)
            return Path(value) if value else None

        arch = get("ARCH") or "arm64"
        if arch not in ARCHITECTURES:
            raise Refusal(f"ARCH={arch}: arm64 or x86_64")
        for name in ("BACKEND", "ACCOUNT_BACKEND"):
            if get(name) and get(name) not in BACKENDS:
                raise Refusal(f"{name}={get(name)}: local or s3")
        return cls(
            root=root,
            environment=get("ENV") or "dev",
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
            arch=arch,
            arch_explicit=bool(get("ARCH_EXPLICIT")),
            backend=get("BACKEND"),
            auto_approve=_flag(get("AUTO_APPROVE")),
            destroy_data=_flag(get("DESTROY_DATA")),
            deploy_dir=path("DEPLOY_DIR") or root / ".deploy",
            from_environment=get("FROM"),
            from_record=path("FROM_RECORD"),
            ecr_standin=get("ECR_STANDIN"),
            registry=get("REGISTRY"),
            container_tool=get("CONTAINER_TOOL"),
            base_image=get("BASE_IMAGE"),
            containers_root=path("CONTAINERS_ROOT"),
            endpoint_url=get("AWS_ENDPOINT_URL"),
            terraform=get("TERRAFORM") or "terraform",
            client=get("CLIENT"),
            verify_url=get("VERIFY_URL"),
            verify_wait_secs=get("VERIFY_WAIT_SECS"),
            books_local=path("BOOKS_LOCAL"),
            books_repair=path("BOOKS_REPAIR"),
            account_backend=get("ACCOUNT_BACKEND"),
            state_bucket=_flag(get("STATE_BUCKET")),
            github_repository=get("CI_GITHUB_REPOSITORY"),
            github_oidc_provider_arn=get("GITHUB_OIDC_PROVIDER_ARN"),
            in_ci=bool(get("CI")),
            plan_id=get("PLAN_ID"),
            bin_dir=path("BIN_DIR"),
            tag=get("TAG"),
            digests=path("DIGESTS"),
            function=get("FUNCTION"),
            since=get("SINCE"),
            filter_pattern=get("FILTER"),
            follow=_flag(get("FOLLOW")),
            raw_json=_flag(get("JSON")),
            local_ready=path("LOCAL_READY"),
            local_tfstate=path("LOCAL_TFSTATE"),
            release=get("RELEASE"),
            canary_percent=get("CANARY_PERCENT"),
            canary_minutes=get("CANARY_MINUTES"),
        )

    @property
    def environment_dir(self) -> Path:
        """The environment's working folder: its Terraform working copy, local state, saved plan
        and delivery record (git-ignored)."""
        return self.deploy_dir / self.environment

    @property
    def record_path(self) -> Path:
        return self.environment_dir / "delivery.json"

    @property
    def var_file(self) -> Path:
        return self.root / "terraform" / "environments" / f"{self.environment}.tfvars"

    @property
    def declared_backend_file(self) -> Path:
        """The environment's own S3 backend settings; its presence declares that the
        environment's state must be remote (prod)."""
        return self.root / "terraform" / "environments" / f"{self.environment}.backend.hcl"


def known_environments(root: Path) -> list[str]:
    return sorted(path.stem for path in (root / "terraform" / "environments").glob("*.tfvars"))


def check_environment(settings: Settings) -> None:
    name = settings.environment
    if not ENVIRONMENT_NAME.match(name):
        raise Refusal(f"ENV={name}: 2-16 lower-case letters, digits or hyphens, starting with a letter")
    if not settings.var_file.exists():
        known = " ".join(known_environments(settings.root))
        raise Refusal(f"no terraform/environments/{name}.tfvars: ENV is one of {known} (or add the file)")


def choose_backend(environment: str, requested: str | None, declared_remote: bool, remembered: str | None) -> str:
    """Where an environment's state lives: BACKEND when given, else where this checkout last
    kept it, else S3 for an environment that declares remote state, else local. An environment
    that declares remote state (terraform/environments/<env>.backend.hcl) is never planned or
    applied on local state: from an empty local state Terraform would create a second copy of
    everything (REST APIs accept duplicate names) beside the environment that runs."""
    if declared_remote and requested == "local":
        raise Refusal(
            f"{environment} keeps its state in S3 (terraform/environments/{environment}.backend.hcl): "
            f"BACKEND=local would plan it from an empty state. Drop BACKEND=local"
        )
    if requested:
        return requested
    if declared_remote:
        return "s3"
    return remembered or "local"


def state_bucket_name(account: str, region: str) -> str:
    """The state bucket of `make aws-state-bucket`, named by convention so that a machine
    without the account stack's state (CI) finds it too."""
    return f"{PROJECT}-tfstate-{account}-{region}"


def hcl_keys(text: str) -> set[str]:
    """The top-level attributes a backend configuration file sets."""
    return {match.group(1) for match in re.finditer(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", text, re.MULTILINE)}


def s3_backend_defaults(declared: str, key: str, account: str, region: str, endpoint_url: str | None) -> str:
    """A backend configuration with what the environment's own file leaves out: the state
    bucket of the account stack, the region, the key, encryption and the lock; and, on a local
    AWS endpoint, the settings that aim the backend at it."""
    given = hcl_keys(declared)
    lines = []
    defaults = {
        "bucket": state_bucket_name(account, region),
        "key": key,
        # Listing workspaces lists this prefix: inside the environment's own (CI's roles list no
        # other), not S3's default "env:/".
        "workspace_key_prefix": key.rsplit("/", 1)[0] + "/workspaces",
        "region": region,
        "encrypt": True,
        "use_lockfile": True,
    }
    for name, value in defaults.items():
        if name not in given:
            lines.append(f"{name} = {json.dumps(value)}")
    if endpoint_url:
        endpoints = ", ".join(f"{service} = {json.dumps(endpoint_url)}" for service in ("s3", "sts", "iam"))
        lines += [
            f"endpoints = {{ {endpoints} }}",
            "use_path_style = true",
            "skip_credentials_validation = true",
            "skip_requesting_account_id = true",
            "skip_metadata_api_check = true",
            "skip_region_validation = true",
        ]
    return "\n".join(lines) + "\n"


# --- prerequisites --------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_python() -> None:
    if sys.version_info[:2] < PYTHON_MINIMUM:
        raise Refusal(
            f"Python {'.'.join(map(str, PYTHON_MINIMUM))}+ is needed, this is {platform.python_version()}: "
            "install a newer python3, then make venv"
        )


def check_terraform(terraform: str) -> None:
    if not shutil.which(terraform):
        raise Refusal(f"terraform not found: https://developer.hashicorp.com/terraform/install (or TERRAFORM=/path)")
    output = subprocess.run([terraform, "version", "-json"], capture_output=True, text=True)
    try:
        version = json.loads(output.stdout)["terraform_version"]
    except (ValueError, KeyError):
        raise Refusal(f"`{terraform} version -json` did not answer: {output.stderr.strip()}") from None
    if parse_version(version) < TERRAFORM_MINIMUM:
        minimum = ".".join(map(str, TERRAFORM_MINIMUM))
        raise Refusal(
            f"Terraform {version} is older than {minimum} (S3 state locking and write-only arguments): "
            f"install Terraform >= {minimum} from https://developer.hashicorp.com/terraform/install"
        )


SKOPEO_FIX = "install skopeo (Debian/Ubuntu: apt-get install skopeo; macOS: brew install skopeo)"


def check_skopeo() -> None:
    if not shutil.which("skopeo"):
        raise Refusal(f"skopeo not found; it copies and inspects images in the registry: {SKOPEO_FIX}")


def supported_platform() -> None:
    """The AWS path runs where its tools do: Linux and macOS."""
    if sys.platform not in ("linux", "darwin"):
        raise Refusal(f"the AWS path runs on Linux or macOS, not {sys.platform} (on Windows: WSL 2)")


def environ_without(names: tuple[str, ...]) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in names}
