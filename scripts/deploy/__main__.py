"""scripts/aws-lambda STEP: the steps of the AWS path (make calls them; docs/deploying.md).

  preflight     the tools and credentials a delivery needs, in seconds
  build         both images built (make images), nothing pushed
  delivery      the environment's ECR repositories, both images built and pushed (unless the
                registry holds them already), recorded in $DEPLOY_DIR/<env>/delivery.json
  promote       FROM=<env>'s delivery (or FROM_RECORD=<file>): the same digests copied into this
                environment's repositories and recorded
  plan          a saved plan of the environment with its delivery
  provision     apply the saved plan (or plan, show and ask); release the versions it published
                (at once, or a canary watched by the alarms); tag what runs
  rollback      every function's alias back to the version it ran before the last release
  outputs       the environment's URL and how to read its key
  api-key       the value of its API key (CLIENT=<name>: that client's), alone on stdout
  verify        a little traffic with its key, then its logs, metrics and alarms read back
  logs          a function's lines (FUNCTION, SINCE, FILTER, FOLLOW=1, JSON=1); ENV=local: make run's
  replay        the batches the projector gave up on (its failure queue) applied again
  rebuild-view  the read model made to show the write model, while the API goes on
  destroy       show what goes, check what would block it, ask, destroy
  account       the account-wide stack of the region (terraform/account), shown and asked
  state-bucket  the same, with the S3 bucket for remote state
  ci-bootstrap  the same, with CI's OIDC roles for GITHUB_REPOSITORY
  provenance    RUN_ID is a successful deliver run on main of GITHUB_REPOSITORY (rollback.yml)

Settings come from the environment, as make passes them: ENV, AWS_REGION, AWS_VAULT, ARCH,
BACKEND, ACCOUNT_BACKEND, AUTO_APPROVE, FROM, FROM_RECORD, DESTROY_DATA, DEPLOY_DIR,
CONTAINER_TOOL, BASE_IMAGE, GITHUB_OIDC_PROVIDER_ARN, CLIENT, VERIFY_URL, VERIFY_WAIT_SECS, BOOKS_REPAIR,
FUNCTION, SINCE, FILTER, FOLLOW, JSON, LOCAL_READY, LOCAL_TFSTATE, RELEASE, CANARY_PERCENT,
CANARY_MINUTES; and for the
rehearsals REGISTRY (push there, no AWS) and ECR_STANDIN (the registry standing in for ECR's
beside a local AWS endpoint).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from . import steps
from .errors import Refusal
from .settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
STEPS = {
    "preflight": steps.preflight,
    "build": steps.build,
    "delivery": steps.delivery,
    "promote": steps.promote,
    "plan": steps.plan,
    "provision": steps.provision,
    "rollback": steps.rollback,
    "outputs": steps.outputs,
    "api-key": steps.api_key,
    "verify": steps.verify,
    "logs": steps.logs,
    "replay": steps.replay,
    "rebuild-view": steps.rebuild_view,
    "destroy": steps.destroy,
    "account": steps.account,
    "state-bucket": steps.state_bucket,
    "ci-bootstrap": lambda settings: steps.ci_bootstrap(settings, os.environ.get("GITHUB_REPOSITORY")),
    "provenance": steps.provenance,
}


def under_aws_vault(argv: list[str]) -> None:
    """AWS_VAULT=<profile>: the whole step runs under `aws-vault exec <profile> --`. aws-vault
    refuses to nest, so its marker is cleared for the call and ours keeps us from wrapping twice;
    credentials a user's own `aws-vault exec p -- make …` exported are used as they are."""
    profile = os.environ.get("AWS_VAULT")
    if not profile or os.environ.get("BOOKS_UNDER_AWS_VAULT") or os.environ.get("AWS_ACCESS_KEY_ID"):
        return
    if not shutil.which("aws-vault"):
        raise Refusal(f"AWS_VAULT={profile} but aws-vault is not installed: "
                      "https://github.com/99designs/aws-vault#installing")
    print(f"==> under aws-vault profile {profile}", file=sys.stderr, flush=True)
    environment = {key: value for key, value in os.environ.items() if key != "AWS_VAULT"}
    environment["BOOKS_UNDER_AWS_VAULT"] = "1"
    command = ["aws-vault", "exec", profile, "--", sys.executable, "-m", "deploy", *argv]
    os.execvpe("aws-vault", command, environment)


def main(argv: list[str]) -> int:
    try:
        under_aws_vault(argv)
        if not argv or argv[0] not in STEPS:
            print(f"usage: scripts/aws-lambda {' | '.join(STEPS)}", file=sys.stderr)
            return 2
        STEPS[argv[0]](Settings.from_environ(dict(os.environ), ROOT))
    except Refusal as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
