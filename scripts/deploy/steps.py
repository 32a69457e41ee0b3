"""The steps of the AWS path, one function each (docs/deploying.md tells what each does
for the user; here is how)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from . import aws, images, logs as logs_reader, release, settings as rules
from .errors import Refusal
from .registry import Registry, refuse_unless_single_image, standin
from .settings import PROJECT, Settings
from .terraform import Backend, Stack

PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
# Digests that satisfy the `images` variable where no image is involved (the repositories alone,
# a destroy after the images are gone).
PLACEHOLDER_IMAGES = {kind: {"digest": PLACEHOLDER_DIGEST} for kind in images.KINDS}
# What a plan's output says of each resource, and its conclusion.
PLAN_SUMMARY = re.compile(r"^\s*# \S+ (will|must) be|^(Plan:|No changes|Error|Warning)")
APPLY_SUMMARY = re.compile(r"^(module\.|aws_)\S+: (Creation|Modifications|Destruction) complete|^(Apply|Destroy) complete|^(Error|Warning)")
# The keys' root reads api_clients from the environment's variables file and warns of the others.
KEYS_SUMMARY = re.compile(r"^(?!.*(undeclared variable|Warnings:$))(" + APPLY_SUMMARY.pattern + ")")


def confirm(settings: Settings, question: str) -> None:
    if settings.auto_approve:
        print("==> AUTO_APPROVE=1: going ahead", flush=True)
        return
    if not sys.stdin.isatty():
        raise Refusal("no terminal to confirm on: review the plan above, then AUTO_APPROVE=1 (automation) "
                      "or run it on a terminal")
    if input(f"{question} Only 'yes' goes ahead: ").strip() != "yes":
        raise Refusal("cancelled: nothing changed")


@dataclass(frozen=True)
class DeliveryRecord:
    """What a delivery gave an environment: where, for which architecture, and the two images by
    digest. Provisioning deploys it; promotion copies it to another environment."""

    environment: str
    region: str
    account: str
    architecture: str
    tag: str
    images: dict[str, dict[str, str]]
    promoted_from: str | None = None

    @classmethod
    def load(cls, path: Path) -> DeliveryRecord:
        """A record as a delivery wrote it; anything else (a digest that is not one, an unknown
        environment name, an image missing) is refused before it is used."""
        try:
            document = json.loads(path.read_text())
            record = cls(**{field: document.get(field) for field in cls.__dataclass_fields__})
            valid = (rules.ENVIRONMENT_NAME.match(record.environment) and record.architecture in rules.ARCHITECTURES
                     and all(re.fullmatch(r"sha256:[0-9a-f]{64}", record.images[kind]["digest"])
                             for kind in images.KINDS))
        except (ValueError, TypeError, KeyError, AttributeError):
            valid = False
        if not valid:
            raise Refusal(f"{path} is not a delivery record (environment, architecture and both images' sha256 "
                          "digests): nothing was done with it")
        return record

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {field: getattr(self, field) for field in self.__dataclass_fields__}
        path.write_text(json.dumps({k: v for k, v in document.items() if v is not None}, indent=2) + "\n")

    def digests(self) -> dict[str, dict[str, str]]:
        """The Terraform variable `images`: digests only (each repository is the environment's own)."""
        return {kind: {"digest": self.images[kind]["digest"]} for kind in images.KINDS}


class Run:
    """One step's view of the settings, the caller and the environment's working directory."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # Which state, decided (or refused) before anything else is asked of AWS or Terraform.
        remembered_file = settings.environment_dir / "backend"
        remembered = remembered_file.read_text().strip() if remembered_file.exists() else None
        self.backend_kind = rules.choose_backend(settings.environment, settings.backend,
                                                 settings.declared_backend_file.exists(), remembered)

    @cached_property
    def caller(self) -> aws.Caller:
        return aws.identify(self.settings.region)

    # --- the environment's Terraform -------------------------------------------------------------

    def variables(self, images_variable: dict | None = None, arch: str | None = None) -> list[str]:
        s = self.settings
        variables = [f"-var-file={s.var_file}", "-var", f"environment={s.environment}",
                     "-var", f"region={self.caller.region}"]
        if s.endpoint_url:
            variables += ["-var", f"aws_endpoint_url={s.endpoint_url}"]
        if images_variable is not None:
            variables += ["-var", f"images={json.dumps(images_variable, separators=(',', ':'))}"]
        if arch:
            variables += ["-var", f"architecture={arch}"]
        if self.boundary:
            variables += ["-var", f"permissions_boundary={self.boundary}"]
        return variables

    @cached_property
    def boundary(self) -> str | None:
        """The environment's permissions boundary, where the account stack made one (CI): every
        role the environment creates carries it, and CI's deploy role creates none without it."""
        partition = self.caller.arn.split(":")[1]
        arn = (f"arn:{partition}:iam::{self.caller.account}:policy/"
               f"{PROJECT}-{self.settings.environment}-boundary-{self.caller.region}")
        iam = self.caller.client("iam")
        try:
            iam.get_policy(PolicyArn=arn)
        except iam.exceptions.NoSuchEntityException:
            return None
        return arn

    def backend(self, keys: bool = False) -> Backend:
        """The environment's backend; with `keys`, that of its API keys' root (terraform/keys):
        beside the environment's state, under `keys/` (CI: its deploy role alone reads it)."""
        s = self.settings
        declared = s.declared_backend_file.exists()
        kind = self.backend_kind
        s.environment_dir.mkdir(parents=True, exist_ok=True)
        (s.environment_dir / "backend").write_text(kind + "\n")
        if kind == "local":
            return Backend("local", local_path="../keys.tfstate" if keys else "../terraform.tfstate")
        declared_text = s.declared_backend_file.read_text() if declared else ""
        main_key = re.search(r'^\s*key\s*=\s*"([^"]+)"', declared_text, re.MULTILINE)
        main_key = main_key.group(1) if main_key else f"{PROJECT}/{s.environment}/terraform.tfstate"
        defaults = s.environment_dir / "backend.hcl"
        defaults.write_text(rules.s3_backend_defaults(
            declared_text, main_key, self.caller.account, self.caller.region, s.endpoint_url))
        self.require_state_bucket(declared_text)
        files = (defaults, s.declared_backend_file) if declared else (defaults,)
        values = (f"key={main_key.rsplit('/', 1)[0]}/keys/terraform.tfstate",) if keys else ()
        return Backend("s3", config_files=files, config_values=values)

    def plan_object(self) -> tuple[str, str]:
        """Where PLAN_ID's saved plan is kept: the state's bucket, under the environment's prefix
        (CI: its plan role writes it, its deploy role alone reads it; a saved plan never leaves
        the account as an artifact)."""
        s = self.settings
        declared = s.declared_backend_file.read_text() if s.declared_backend_file.exists() else ""
        bucket = re.search(r'^\s*bucket\s*=\s*"([^"]+)"', declared, re.MULTILINE)
        name = bucket.group(1) if bucket else rules.state_bucket_name(self.caller.account, self.caller.region)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s.plan_id or ""):
            raise Refusal(f"PLAN_ID={s.plan_id}: 1-64 letters, digits, - or _ (CI: the run's id)")
        return name, f"{PROJECT}/{s.environment}/plans/{s.plan_id}.tfplan"

    def require_state_bucket(self, declared_text: str) -> None:
        if "bucket" in rules.hcl_keys(declared_text):
            return
        import botocore.exceptions

        bucket = rules.state_bucket_name(self.caller.account, self.caller.region)
        try:
            self.caller.client("s3").head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as error:
            # 403: it exists, and this role may read only its own environment's keys (CI).
            if error.response["Error"]["Code"] not in ("403", "AccessDenied"):
                raise Refusal(f"{self.settings.environment}'s state is in S3 but there is no state bucket {bucket}: "
                              f"run make aws-state-bucket AWS_REGION={self.caller.region}") from None

    @cached_property
    def stack(self) -> Stack:
        s = self.settings
        rules.check_terraform(s.terraform)
        stack = Stack(s.terraform, s.root / "terraform", s.environment_dir / "stack", s.environment)
        backend = self.backend()
        print(f"==> terraform init ({s.environment}, {backend.kind} state)", flush=True)
        stack.prepare(backend)
        return stack

    def repositories(self) -> dict[str, str] | None:
        """The environment's ECR repositories by image kind, or None while one is missing. Named
        by the environment, never taken from a record."""
        ecr = self.caller.client("ecr")
        names = {kind: f"{PROJECT}-{self.settings.environment}-{kind}" for kind in images.KINDS}
        try:
            found = ecr.describe_repositories(repositoryNames=list(names.values()))["repositories"]
        except ecr.exceptions.RepositoryNotFoundException:
            return None
        uris = {repository["repositoryName"]: repository["repositoryUri"] for repository in found}
        return {kind: uris[name] for kind, name in names.items()}

    @cached_property
    def keys(self) -> Stack:
        """The working directory of the environment's API keys (terraform/keys): a root of their
        own, so that the environment's state, which CI's plan role reads, holds no key value."""
        s = self.settings
        stack = Stack(s.terraform, s.root / "terraform" / "keys", s.environment_dir / "keys", f"{s.environment}'s keys")
        stack.prepare(self.backend(keys=True))
        return stack

    def keys_variables(self) -> list[str]:
        s = self.settings
        variables = [f"-var-file={s.var_file}", "-var", f"environment={s.environment}", "-var",
                     f"region={self.caller.region}", "-var", f"usage_plans={self.stack.output_json('usage_plan_ids').strip()}"]
        if s.endpoint_url:
            variables += ["-var", f"aws_endpoint_url={s.endpoint_url}"]
        return variables

    def apply_keys(self) -> None:
        """The keys the environment's api_clients name, in their tiers' usage plans: applied with
        the reviewed commit's clients after the environment itself (no plan of their own to
        review: they follow its variables)."""
        print(f"==> the API keys of {self.settings.environment} (terraform/keys)", flush=True)
        self.keys.streamed("apply", "-input=false", "-no-color", "-auto-approve", "-compact-warnings",
                           *self.keys_variables(), keep=KEYS_SUMMARY)

    def outputs(self) -> dict:
        """The environment's outputs and its keys' (the key values are the keys root's)."""
        outputs = json.loads(self.stack.output_json())
        outputs.update(json.loads(self.keys.output_json()))
        return outputs

    def ensure_repositories(self) -> dict[str, str]:
        """The environment's ECR repositories by image kind, created if missing (Terraform,
        registry module only; `make aws-ci-bootstrap` creates CI's environments' once)."""
        # Existing ones are left to the environment's plans: no state is written here then (CI's
        # plan role, which promotes, writes none).
        existing = self.repositories()
        if existing is not None:
            return existing
        print(f"==> the ECR repositories of {self.settings.environment} (terraform apply, registry module only)",
              flush=True)
        self.stack.streamed("apply", "-input=false", "-no-color", "-auto-approve", "-target=module.registry",
                            *self.variables(PLACEHOLDER_IMAGES), keep=APPLY_SUMMARY)
        return json.loads(self.stack.output_json("repository_urls"))

    # --- the registry ----------------------------------------------------------------------------

    def registry(self, repositories: dict[str, str]) -> Registry:
        """skopeo logged in to the environment's registry with ECR's credentials (the stand-in
        checks the same token ECR's API hands out)."""
        s = self.settings
        if s.ecr_standin and not s.endpoint_url:
            raise Refusal("ECR_STANDIN only stands in for the ECR of a local AWS endpoint (AWS_ENDPOINT_URL)")
        registry = Registry(tls_verify=not s.ecr_standin)
        host = standin(next(iter(repositories.values())), s.ecr_standin).split("/")[0]
        user, password = aws.registry_credentials(self.caller)
        registry.login(host, user, password)
        return registry

    def in_registry(self, uri: str) -> str:
        return standin(uri, self.settings.ecr_standin)

    # --- the delivery record ------------------------------------------------------------------------

    def read_delivery(self) -> DeliveryRecord:
        s = self.settings
        if not s.record_path.exists():
            raise Refusal(f"nothing delivered for {s.environment} yet ({s.record_path}): "
                          f"run make aws-lambda-delivery ENV={s.environment}")
        record = DeliveryRecord.load(s.record_path)
        if record.region != self.caller.region:
            raise Refusal(f"{s.environment} was delivered to {record.region} but this provisions {self.caller.region}: "
                          f"set AWS_REGION={record.region}, or deliver again in {self.caller.region}")
        if record.account != self.caller.account:
            raise Refusal(f"{s.environment} was delivered to account {record.account} but these credentials are of "
                          f"{self.caller.account}")
        if s.arch_explicit and s.arch != record.architecture:
            raise Refusal(f"ARCH={s.arch} but {s.environment}'s images were built for {record.architecture}: "
                          f"deliver again with ARCH={s.arch}, or drop ARCH")
        return record


# --- delivery and promotion ---------------------------------------------------------------------------


def preflight(settings: Settings) -> None:
    """Before any build: everything the delivery will need, so a missing piece fails in seconds."""
    rules.supported_platform()
    rules.check_python()
    print(f"==> container tool: {images.choose_tool(settings.container_tool)}", flush=True)
    rules.check_skopeo()
    if not settings.registry:
        rules.check_environment(settings)
        rules.check_terraform(settings.terraform)
        Run(settings).caller  # noqa: B018 - the state decided, credentials and region checked now


def builder(settings: Settings, tag: str, tls_verify: bool) -> images.Builder:
    tool = images.choose_tool(settings.container_tool)
    return images.Builder(settings.root, tool, settings.arch, tag, settings.containers_root,
                          base_image=settings.base_image, tls_verify=tls_verify)


def bin_dir(settings: Settings) -> Path:
    if not settings.bin_dir:
        raise Refusal("BIN_DIR must name the folder of the release binaries (make passes it)")
    return settings.bin_dir


def build(settings: Settings) -> None:
    """`make images`: both images built (TAG, ARCH), nothing pushed."""
    if not settings.tag:
        raise Refusal("TAG must name the images' tag (make passes the revision)")
    builder(settings, settings.tag, tls_verify=True).build(bin_dir(settings))


def delivery_to_registry(settings: Settings) -> None:
    """REGISTRY=host:port (make test-images): both images pushed there, no AWS; the digests go to
    DIGESTS."""
    if not settings.tag or not settings.digests:
        raise Refusal("REGISTRY needs TAG and DIGESTS (make test-images sets them)")
    local = settings.registry.split(":")[0] in ("127.0.0.1", "localhost")
    build = builder(settings, settings.tag, tls_verify=not local)
    build.build(bin_dir(settings))
    registry = Registry(tls_verify=not local)
    try:
        pushed = {}
        for kind in images.KINDS:
            repository = f"{settings.registry}/books-{kind}"
            pushed[kind] = {"digest": build.push(kind, repository, registry), "repository": repository}
    finally:
        registry.close()
    settings.digests.parent.mkdir(parents=True, exist_ok=True)
    settings.digests.write_text(json.dumps({"images": pushed}, indent=2) + "\n")
    print(f"==> digests: {settings.digests}", flush=True)


def delivery(settings: Settings) -> None:
    if settings.registry:
        delivery_to_registry(settings)
        return
    rules.check_environment(settings)
    rules.check_skopeo()
    run = Run(settings)
    repositories = run.ensure_repositories()
    registry = run.registry(repositories)
    try:
        tag = images.image_tag(settings.root)
        # Immutable repositories: a tag once pushed names its image for good. The tag says what
        # the images were built from, so one already there is this delivery's, built before.
        digests: dict[str, str] = {}
        for kind in images.KINDS:
            reference = f"{run.in_registry(repositories[kind])}:{tag}"
            existing = registry.inspect(reference)
            if existing:
                refuse_unless_single_image(reference, existing)
                print(f"==> {reference} already holds {existing.digest}: not pushed again", flush=True)
                digests[kind] = existing.digest
        if len(digests) < len(images.KINDS):
            build = builder(settings, tag, tls_verify=not settings.ecr_standin)
            build.build(bin_dir(settings))
            for kind in images.KINDS:
                if kind not in digests:
                    digests[kind] = build.push(kind, run.in_registry(repositories[kind]), registry)
        else:
            print(f"==> {tag} was delivered before from the same sources: nothing to build or push", flush=True)
    finally:
        registry.close()
    record = DeliveryRecord(
        environment=settings.environment, region=run.caller.region, account=run.caller.account,
        architecture=settings.arch, tag=tag,
        images={kind: {"digest": digests[kind], "repository": repositories[kind]} for kind in images.KINDS})
    record.save(settings.record_path)
    print(f"==> delivered {tag} for {settings.environment} in {run.caller.region} ({settings.arch}): "
          f"{settings.record_path}", flush=True)


def promote(settings: Settings) -> None:
    """Another environment's delivery, promoted: the same images by digest (never rebuilt)
    copied into this environment's repositories, and recorded as this environment's delivery.
    FROM names the environment, or FROM_RECORD the record's file (CI: the delivering run's)."""
    rules.check_environment(settings)
    rules.check_skopeo()
    run = Run(settings)
    source_path = settings.from_record
    if not source_path:
        if not settings.from_environment:
            raise Refusal("promote needs FROM=<environment> or FROM_RECORD=<delivery.json>")
        source_path = settings.deploy_dir / settings.from_environment / "delivery.json"
    if not source_path.exists():
        raise Refusal(f"no delivery record at {source_path}: deliver {settings.from_environment or 'that environment'} first")
    source = DeliveryRecord.load(source_path)
    if source.environment == settings.environment:
        raise Refusal(f"{settings.environment} cannot be promoted from itself")
    if (source.region, source.account) != (run.caller.region, run.caller.account):
        raise Refusal(f"{source.environment}'s images are in {source.account}/{source.region}, this is "
                      f"{run.caller.account}/{run.caller.region}: promotion copies within one registry")
    repositories = run.ensure_repositories()
    # The source's repositories are those of the environment the record names, in this account
    # and region: a record says which images (digests), never where from.
    source_repositories = {kind: uri.replace(f"/{PROJECT}-{settings.environment}-", f"/{PROJECT}-{source.environment}-")
                           for kind, uri in repositories.items()}
    registry = run.registry(repositories)
    try:
        for kind in images.KINDS:
            digest = source.images[kind]["digest"]
            origin = f"{run.in_registry(source_repositories[kind])}@{digest}"
            target = f"{run.in_registry(repositories[kind])}:{source.tag}"
            manifest = registry.inspect(origin)
            if manifest is None:
                raise Refusal(f"{origin} is not in the registry (expired, or its repository destroyed)")
            refuse_unless_single_image(origin, manifest)
            there = registry.inspect(target)
            if there and there.digest == digest:
                print(f"==> {target} already holds {digest}", flush=True)
                continue
            if there:
                raise Refusal(f"{target} already names {there.digest}, not {digest}: the repository's tags are immutable")
            print(f"==> {origin} -> {target}", flush=True)
            registry.copy(origin, target)
            copied = registry.inspect(target)
            if copied is None or copied.digest != digest:
                raise Refusal(f"{target} holds {copied and copied.digest} after the copy, not {digest}")
    finally:
        registry.close()
    DeliveryRecord(
        environment=settings.environment, region=run.caller.region, account=run.caller.account,
        architecture=source.architecture, tag=source.tag,
        images={kind: {"digest": source.images[kind]["digest"], "repository": repositories[kind]}
                for kind in images.KINDS},
        promoted_from=source.environment,
    ).save(settings.record_path)
    print(f"==> {settings.environment} now has {source.environment}'s delivery {source.tag} (the same digests): "
          f"{settings.record_path}", flush=True)


# --- plan, provision, destroy --------------------------------------------------------------------------


def save_plan(run: Run, record: DeliveryRecord) -> Path:
    s = run.settings
    plan_file = s.environment_dir / "plan.tfplan"
    plan_file.unlink(missing_ok=True)
    print(f"==> terraform plan of {s.environment} in {run.caller.region} ({record.tag}, {record.architecture})",
          flush=True)
    run.stack.streamed("plan", "-input=false", "-no-color", *run.variables(record.digests(), record.architecture),
                       f"-out={plan_file}", keep=PLAN_SUMMARY, log=s.environment_dir / "plan.log")
    print(f"==> saved plan: {plan_file} (full text: {s.environment_dir / 'plan.log'}); "
          f"make aws-lambda-provision ENV={s.environment} applies it", flush=True)
    if s.plan_id:
        bucket, key = run.plan_object()
        run.caller.client("s3").upload_file(str(plan_file), bucket, key,
                                             ExtraArgs={"ServerSideEncryption": "AES256"})
        print(f"==> saved plan kept at s3://{bucket}/{key} for the deploy role "
              f"(make aws-lambda-provision ENV={s.environment} PLAN_ID={s.plan_id})", flush=True)
    return plan_file


def plan(settings: Settings) -> None:
    rules.check_environment(settings)
    run = Run(settings)
    save_plan(run, run.read_delivery())


def provision(settings: Settings) -> None:
    rules.check_environment(settings)
    rules.check_skopeo()
    run = Run(settings)
    record = run.read_delivery()
    ensure_account(settings, run.caller)
    plan_file = settings.environment_dir / "plan.tfplan"
    kept = run.plan_object() if settings.plan_id else None
    if kept and not plan_file.exists():
        run.caller.client("s3").download_file(kept[0], kept[1], str(plan_file))
        print(f"==> the saved plan s3://{kept[0]}/{kept[1]}", flush=True)
    if plan_file.exists():
        run.stack  # noqa: B018 - the working directory, initialised
        print(f"==> applying the saved plan of {settings.environment} ({plan_file})", flush=True)
    else:
        save_plan(run, record)
        confirm(settings, f"Apply this plan to {settings.environment} in {run.caller.region}?")
    try:
        # Terraform refuses a plan whose state has changed since (a stale plan) by itself.
        run.stack.streamed("apply", "-input=false", "-no-color", str(plan_file))
    except Refusal:
        raise Refusal(f"terraform apply failed; a stale plan (the state changed since it was made) needs a new one: "
                      f"make aws-lambda-plan ENV={settings.environment}") from None
    finally:
        plan_file.unlink(missing_ok=True)
        if kept:
            run.caller.client("s3").delete_object(Bucket=kept[0], Key=kept[1])
    run.apply_keys()
    release_published(run)
    tag_deployed(run, record)
    print_outputs(run)


def said(line: str) -> None:
    print(f"==> {line}", flush=True)


def release_strategy(run: Run) -> release.Strategy:
    """The environment's way of releasing (Terraform's `release` output, from its tfvars), as
    RELEASE, CANARY_PERCENT and CANARY_MINUTES override it for one provisioning."""
    s = run.settings
    chosen = release.Strategy.of(json.loads(run.stack.output_json("release")))
    try:
        chosen = release.Strategy(s.release or chosen.kind,
                                  float(s.canary_percent) if s.canary_percent else chosen.canary_percent,
                                  float(s.canary_minutes) if s.canary_minutes else chosen.canary_minutes)
    except ValueError:
        raise Refusal(f"CANARY_PERCENT={s.canary_percent} / CANARY_MINUTES={s.canary_minutes}: numbers") from None
    if chosen.kind not in release.STRATEGIES:
        raise Refusal(f"RELEASE={chosen.kind}: one of {', '.join(release.STRATEGIES)}")
    if not (0 < chosen.canary_percent < 100 and chosen.canary_minutes >= 0):
        raise Refusal(f"a canary takes more than 0 and less than 100 percent ({chosen.canary_percent:g}) "
                      f"for 0 minutes or more ({chosen.canary_minutes:g})")
    return chosen


def release_published(run: Run) -> None:
    """The versions this apply published go live: each function's alias moved to its own, at once
    or after a canary watched by the environment's alarms (rolled back, and refused, on one)."""
    published = release.Published.all(json.loads(run.stack.output_json("function_versions")))
    strategy = release_strategy(run)
    lambda_client = run.caller.client("lambda")
    if strategy.kind == "canary":
        release.canary(lambda_client, run.caller.client("cloudwatch"), run.stack.output("name_prefix"), published,
                       strategy, said=said)
    else:
        release.at_once(lambda_client, published, said=said)


def rollback(settings: Settings) -> None:
    """Every function's alias back to the version it ran before the last release (a canary in
    progress: its share taken off): Lambda calls only, no build, no plan."""
    rules.check_environment(settings)
    run = Run(settings)
    functions = release.Published.all(json.loads(run.stack.output_json("function_versions")))
    print(f"==> rolling {settings.environment} back in {run.caller.region}", flush=True)
    release.rollback(run.caller.client("lambda"), functions, said=said)


def tag_deployed(run: Run, record: DeliveryRecord) -> None:
    """Tags the images that now run `deployed-<env>-<time>`: the repositories' lifecycle policy
    never expires the newest deployments' images (terraform/modules/registry)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    repositories = json.loads(run.stack.output_json("repository_urls"))
    registry = run.registry(repositories)
    try:
        for kind in images.KINDS:
            repository = run.in_registry(repositories[kind])
            tag = f"deployed-{run.settings.environment}-{stamp}"
            registry.copy(f"{repository}@{record.images[kind]['digest']}", f"{repository}:{tag}")
            print(f"==> {repository}@{record.images[kind]['digest']} tagged {tag}", flush=True)
    finally:
        registry.close()


def print_outputs(run: Run) -> None:
    s = run.settings
    url = run.stack.output("invoke_url")
    print(f"\nBooks API ({s.environment}, {run.caller.region}): {url}")
    print(f"API key : make -s aws-lambda-api-key ENV={s.environment}")
    print(f'try     : curl -H "x-api-key: $(make -s aws-lambda-api-key ENV={s.environment})" {url}/books')
    print(f"more    : terraform -chdir={run.stack.folder} output")


def outputs(settings: Settings) -> None:
    rules.check_environment(settings)
    print_outputs(Run(settings))


def api_key(settings: Settings) -> None:
    """The default key, or with CLIENT=<name> the newest key of that client (api_clients), alone
    on stdout (everything else goes to stderr)."""
    rules.check_environment(settings)
    stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        run = Run(settings)
        if not settings.client:
            value = run.keys.output("api_key_value")
        else:
            values = json.loads(run.keys.output_json("client_key_values"))
            if settings.client not in values:
                raise Refusal(f"no API client {settings.client!r} in this environment (its clients: {sorted(values)}; "
                              "see api_clients)")
            value = values[settings.client]
    finally:
        sys.stdout = stdout
    print(value)


def verify(settings: Settings) -> None:
    rules.check_environment(settings)
    stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        run = Run(settings)
        outputs_json = json.dumps(run.outputs())
    finally:
        sys.stdout = stdout
    books_local = settings.books_local or settings.root / "target" / "debug" / "books-local"
    if not books_local.exists():
        raise Refusal(f"{books_local} is missing: make build-debug (or set BOOKS_LOCAL)")
    command = [str(books_local), "verify", "--region", run.caller.region]
    if settings.verify_url:
        command += ["--url", settings.verify_url]
    if settings.verify_wait_secs:
        command += ["--wait-secs", settings.verify_wait_secs]
    # The outputs (the API key among them) go through a pipe only.
    if subprocess.run(command, input=outputs_json, text=True).returncode != 0:
        raise Refusal(f"{settings.environment} did not pass its checks (above)")


def repair(settings: Settings, what: str) -> None:
    """books-repair on the environment's tables (and failure queue), with the caller's own
    credentials: `replay` or `rebuild-view` (crate functions/repair)."""
    rules.check_environment(settings)
    stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        run = Run(settings)
        outputs = run.outputs()
    finally:
        sys.stdout = stdout
    binary = settings.books_repair or settings.root / "target" / "debug" / "books-repair"
    if not binary.exists():
        raise Refusal(f"{binary} is missing: make build-debug (or set BOOKS_REPAIR)")
    tables = outputs["table_names"]["value"]
    command = [str(binary), what, "--view-table", tables["books_view"]]
    if what == "replay":
        command += ["--queue", outputs["projector_failure_queue"]["value"]]
    else:
        command += ["--table", tables["books"]]
    environment = {**os.environ, "AWS_REGION": run.caller.region}
    if subprocess.run(command, env=environment).returncode != 0:
        raise Refusal(f"{what} of {settings.environment} did not complete (above)")


def logs(settings: Settings) -> None:
    """A function's lines (FUNCTION, SINCE, FILTER, FOLLOW, JSON): ENV's in CloudWatch Logs, or
    with ENV=local the local cloud `make run` serves (scripts/deploy/logs.py)."""
    request = logs_reader.Request(function=settings.function,
                                  start_ms=logs_reader.since_ms(settings.since, int(time.time() * 1000)),
                                  pattern=settings.filter_pattern, follow=settings.follow, raw=settings.raw_json)
    if settings.environment == logs_reader.LOCAL:
        build = settings.root / ".build"
        cloud = logs_reader.LocalCloud(settings.local_ready or build / "local.ready.json",
                                       settings.local_tfstate or build / "local-data" / "terraform.tfstate")
        client, outputs = cloud.open()
    else:
        rules.check_environment(settings)
        stdout = sys.stdout
        sys.stdout = sys.stderr
        try:
            run = Run(settings)
            outputs = json.loads(run.stack.output_json())
            client = run.caller.client("logs")
        finally:
            sys.stdout = stdout
    logs_reader.print_logs(client, outputs, request)


def replay(settings: Settings) -> None:
    repair(settings, "replay")


def rebuild_view(settings: Settings) -> None:
    repair(settings, "rebuild-view")


def destroy_blockers(run: Run, state: dict) -> list[str]:
    """What would stop a destroy half-way: tables with deletion protection, repositories that
    hold images and may not be deleted so."""
    def resources(module: dict):
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from resources(child)

    blockers = []
    ecr = run.caller.client("ecr")
    for resource in resources((state.get("values") or {}).get("root_module", {})):
        values = resource.get("values", {})
        if resource["type"] == "aws_dynamodb_table" and values.get("deletion_protection_enabled"):
            blockers.append(f"table {values['name']} has deletion protection")
        if resource["type"] == "aws_ecr_repository" and not values.get("force_delete"):
            try:
                held = ecr.list_images(repositoryName=values["name"], maxResults=1).get("imageIds")
            except ecr.exceptions.RepositoryNotFoundException:
                held = []
            if held:
                blockers.append(f"repository {values['repository_url']} holds images")
    return blockers


def destroy(settings: Settings) -> None:
    rules.check_environment(settings)
    run = Run(settings)
    if not run.stack.state_list():
        print(f"==> {settings.environment} has nothing deployed in {run.caller.region} (empty state)", flush=True)
        settings.record_path.unlink(missing_ok=True)
        (settings.environment_dir / "plan.tfplan").unlink(missing_ok=True)
        return
    images_variable = (DeliveryRecord.load(settings.record_path).digests() if settings.record_path.exists()
                       else PLACEHOLDER_IMAGES)
    variables = run.variables(images_variable, settings.arch)
    # Checked before anything is deleted: either everything goes, or nothing.
    blockers = destroy_blockers(run, json.loads(run.stack.show_json()))
    if blockers and not settings.destroy_data:
        print("\n".join(f"    {blocker}" for blocker in blockers), file=sys.stderr)
        raise Refusal(f"destroying {settings.environment} would stop half-way on the above: nothing was deleted. "
                      f"To delete its data and images too: make aws-lambda-destroy ENV={settings.environment} DESTROY_DATA=1")
    print(f"==> what destroying {settings.environment} in {run.caller.region} deletes", flush=True)
    run.stack.streamed("plan", "-destroy", "-input=false", "-no-color", *variables,
                       keep=PLAN_SUMMARY)
    for blocker in blockers:
        print(f"    and, with DESTROY_DATA=1: {blocker}")
    confirm(settings, f"Destroy {settings.environment} in {run.caller.region}?")
    if blockers:
        print(f"==> lifting the protection of {settings.environment}'s data (DESTROY_DATA=1)", flush=True)
        unprotected = ["-var", "deletion_protection=false", "-var", "force_delete_images=true"]
        run.stack.streamed("apply", "-input=false", "-no-color", "-auto-approve", *variables, *unprotected,
                           "-target=module.tables", "-target=module.registry",
                           keep=APPLY_SUMMARY)
        variables += unprotected
    if run.keys.state_list():
        run.keys.streamed("destroy", "-input=false", "-no-color", "-auto-approve", "-compact-warnings",
                          *run.keys_variables(), keep=KEYS_SUMMARY)
    run.stack.streamed("destroy", "-input=false", "-no-color", "-auto-approve", *variables,
                       keep=APPLY_SUMMARY, log=settings.environment_dir / "destroy.log")
    settings.record_path.unlink(missing_ok=True)
    (settings.environment_dir / "plan.tfplan").unlink(missing_ok=True)
    print(f"==> {settings.environment} destroyed in {run.caller.region}; the region's account-wide stack stays "
          "(make aws-account)", flush=True)


# --- the account-wide stack of a region ---------------------------------------------------------------


def account_stack(settings: Settings, caller: aws.Caller) -> Stack:
    """terraform/account's working directory for this account and region, on local state or,
    with ACCOUNT_BACKEND=s3 (once the state bucket exists), in it (migrated there the first time)."""
    rules.check_terraform(settings.terraform)
    folder = settings.deploy_dir / f"account-{caller.account}-{caller.region}"
    folder.mkdir(parents=True, exist_ok=True)
    remembered_file = folder / "backend"
    remembered = remembered_file.read_text().strip() if remembered_file.exists() else "local"
    kind = settings.account_backend or remembered
    if kind == "s3":
        defaults = folder / "backend.hcl"
        defaults.write_text(rules.s3_backend_defaults("", f"{PROJECT}/account/terraform.tfstate", caller.account,
                                                      caller.region, settings.endpoint_url))
        backend = Backend("s3", config_files=(defaults,), declared_local=True)
    else:
        backend = Backend("local", declared_local=True)
    stack = Stack(settings.terraform, settings.root / "terraform" / "account", folder / "stack",
                  f"the account stack of {caller.region}")
    migrate = kind != remembered and (folder / "terraform.tfstate").exists()
    if migrate:
        print(f"==> moving the account stack's state from {remembered} to {kind}", flush=True)
    stack.prepare(backend, migrate=migrate)
    remembered_file.write_text(kind + "\n")
    return stack


def apply_account(settings: Settings, caller: aws.Caller, changes: dict) -> Stack:
    """Applies the account stack with its settings: those of earlier applies (kept in its folder)
    plus `changes`; shows the plan and asks first, like an environment's provisioning."""
    stack = account_stack(settings, caller)
    settings_file = stack.folder.parent / "settings.tfvars.json"
    saved = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    saved.update({"project": PROJECT, "region": caller.region, **changes})
    if settings.endpoint_url:
        saved["aws_endpoint_url"] = settings.endpoint_url
    if settings.github_oidc_provider_arn:
        saved["github_oidc_provider_arn"] = settings.github_oidc_provider_arn
    settings_file.write_text(json.dumps(saved, indent=2) + "\n")
    plan_file = stack.folder.parent / "plan.tfplan"
    print(f"==> the account-wide stack of {caller.region} (terraform/account; state and settings in "
          f"{stack.folder.parent})", flush=True)
    output = stack.streamed("plan", "-input=false", "-no-color", f"-var-file={settings_file}", f"-out={plan_file}",
                            keep=PLAN_SUMMARY, log=stack.folder.parent / "plan.log")
    if "No changes." not in output:
        confirm(settings, f"Apply this plan to the account-wide stack of {caller.region}?")
    try:
        stack.streamed("apply", "-input=false", "-no-color", str(plan_file),
                       keep=APPLY_SUMMARY)
    finally:
        plan_file.unlink(missing_ok=True)
    return stack


def ensure_account(settings: Settings, caller: aws.Caller) -> None:
    """Stage logging needs the region's API Gateway CloudWatch role. Whoever set it owns it; if
    nobody has, the account stack does."""
    role = caller.client("apigateway").get_account().get("cloudwatchRoleArn", "")
    if role:
        print(f"==> API Gateway logging role of {caller.region}: {role}", flush=True)
        return
    print(f"==> no API Gateway logging role in {caller.region} yet: the account stack sets it (once per region)",
          flush=True)
    apply_account(settings, caller, {})


def account(settings: Settings) -> None:
    apply_account(settings, aws.identify(settings.region), {"state_bucket": True} if settings.state_bucket else {})


def state_bucket(settings: Settings) -> None:
    caller = aws.identify(settings.region)
    stack = apply_account(settings, caller, {"state_bucket": True})
    print(f"==> state bucket: {stack.output('state_bucket')} (BACKEND=s3 uses it)", flush=True)


def ci_bootstrap(settings: Settings, github_repository: str | None) -> None:
    """CI's side in AWS, once per account and region: GitHub's OIDC provider (or the account's
    own, GITHUB_OIDC_PROVIDER_ARN), a plan and a deploy role per environment that only that
    repository's workflows may assume, and the state bucket."""
    import re

    if not github_repository or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", github_repository):
        raise Refusal("set GITHUB_REPOSITORY=<owner>/<name> (your fork)")
    caller = aws.identify(settings.region)
    stack = apply_account(settings, caller, {"state_bucket": True, "github_repository": github_repository})
    roles = json.loads(stack.output_json("ci_roles"))
    # Each environment's repositories, once, with these credentials: CI's plan roles copy promoted
    # images into them and may create nothing.
    for environment in roles:
        each = dataclasses.replace(settings, environment=environment, backend="s3")
        rules.check_environment(each)
        Run(each).ensure_repositories()
    print(f"==> CI roles (set the repository variables AWS_ACCOUNT_ID={caller.account} and AWS_REGION={caller.region}):")
    for environment, role in roles.items():
        print(f"    {environment:<8} plan {role['plan']}\n             deploy {role['deploy']}")


# --- provenance ------------------------------------------------------------------------------------

DELIVER_WORKFLOW = ".github/workflows/deliver.yml"


def run_problems(run: dict, repository: str) -> list[str]:
    """Why a GitHub Actions run is not one whose delivery records may be deployed: only a
    completed, successful run of this repository's deliver workflow, started on main by ci's
    completion (deliver.yml), is."""
    expected = {
        "path": DELIVER_WORKFLOW,
        "event": "workflow_run",
        "head_branch": "main",
        "status": "completed",
        "conclusion": "success",
    }
    problems = [f"its {field} is {run.get(field)!r}, not {value!r}" for field, value in expected.items()
                if run.get(field) != value]
    for field in ("repository", "head_repository"):
        name = (run.get(field) or {}).get("full_name")
        if name != repository:
            problems.append(f"its {field} is {name!r}, not {repository!r}")
    return problems


def provenance(settings: Settings) -> None:
    """RUN_ID's delivery records may be deployed (rollback.yml, before it downloads one): checked
    through GitHub's record of the run, never through the file itself."""
    import os
    import urllib.request

    run_id, repository = os.environ.get("RUN_ID", ""), os.environ.get("GITHUB_REPOSITORY", "")
    if not run_id.isdigit() or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise Refusal("provenance needs RUN_ID=<a workflow run id> and GITHUB_REPOSITORY=<owner>/<name>")
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    request = urllib.request.Request(f"{api}/repos/{repository}/actions/runs/{run_id}",
                                     headers={"Accept": "application/vnd.github+json"})
    token = os.environ.get("GITHUB_TOKEN")
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            run = json.load(answer)
    except OSError as error:
        raise Refusal(f"GitHub did not describe run {run_id} of {repository}: {error}") from None
    problems = run_problems(run, repository)
    if problems:
        raise Refusal(f"run {run_id} is not a successful deliver run on main of {repository}: " + "; ".join(problems))
    print(f"==> run {run_id}: deliver on main of {repository}, {run.get('head_sha', '')[:12]}, succeeded", flush=True)
