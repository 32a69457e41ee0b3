"""The account, region and caller of the credentials the usual AWS chain finds, and ECR's
registry credentials. The region found here is exported so that Terraform, boto3 and the
container tools all agree on it."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import boto3
import botocore.exceptions

from .errors import Refusal


@dataclass(frozen=True)
class Caller:
    region: str
    account: str
    arn: str
    session: boto3.session.Session

    def client(self, service: str):
        return self.session.client(service)


def identify(region: str | None) -> Caller:
    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise Refusal("no region: set AWS_REGION (or AWS_DEFAULT_REGION, or region in the profile)")
    try:
        identity = session.client("sts").get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise Refusal(
            f"no usable AWS credentials ({error}). Configure them the usual way (aws configure, AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_VAULT=<profile>) and a region (AWS_REGION)"
        ) from None
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = session.region_name
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    print(f"==> AWS account {identity['Account']} in {session.region_name} as {identity['Arn']}"
          + (f" (endpoint {endpoint})" if endpoint else ""), flush=True)
    return Caller(session.region_name, identity["Account"], identity["Arn"], session)


def registry_credentials(caller: Caller) -> tuple[str, str]:
    """ECR's registry login: user AWS and the password of an authorization token (valid 12 h)."""
    token = caller.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    return user, password
