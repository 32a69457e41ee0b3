"""Lambda's versions are immutable, and an alias is a resource of its own.

What moto does differently, each of which the deployment (versions published by every apply, the
alias `live` moved by the deployment program) would meet and AWS would not do:

- `PublishVersion` made a version as a shallow copy of `$LATEST`: the version shared its code,
  environment, image configuration and resource policy with `$LATEST`, so the next
  `UpdateFunctionCode` (which moto applies in place) changed the image of every published
  version (a rollback to the previous version would have run the new code), and a permission
  given to an alias showed on `$LATEST` and every version alike. A version here is a snapshot:
  its own code, environment, image configuration and layers, and its own (empty) policy.
- `AddPermission` and `GetPolicy` with an alias as qualifier work on the version the alias names
  at the time: with versions owning their policies, a permission given to the alias would be
  gone once the alias moved; `RemovePermission` ignored its qualifier. An alias here has its own
  policy, as Lambda's does (it does not follow the versions the alias names).
- `CreateEventSourceMapping` on an alias recorded the version the alias named (`…:1`) as the
  mapping's `FunctionArn`; Lambda keeps the alias's ARN, and invokes whatever version the alias
  names at each batch.
- `CreateAlias`/`UpdateAlias` took any routing configuration; Lambda takes at most one additional
  version, published (not `$LATEST`), other than the alias's own, at a weight from 0 to 1.

AWS documentation followed:
- https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html (versions immutable)
- https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html (alias policies,
  weighted aliases and their requirements)
- https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html (Qualifier)
- https://docs.aws.amazon.com/lambda/latest/api/API_AliasRoutingConfiguration.html
- https://docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingConfiguration.html
"""

import copy
from urllib.parse import unquote

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, LambdaStorage
from moto.awslambda.policy import Policy
from moto.awslambda.responses import LambdaResponse

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

# What a published version holds of its own: everything the function's configuration can change.
SNAPSHOT = ("code", "environment_vars", "image_config", "layers", "_vpc_config", "tracing_config",
            "ephemeral_storage", "architectures")

_publish_version = LambdaStorage.publish_version
_put_alias = LambdaStorage.put_alias
_update_alias = LambdaStorage.update_alias
_add_permission = LambdaBackend.add_permission
_get_policy = LambdaBackend.get_policy
_create_event_source_mapping = LambdaBackend.create_event_source_mapping
_update_event_source_mapping = LambdaBackend.update_event_source_mapping


def _publish_snapshot(self, name_or_arn, description=""):
    """A new version owns copies of what `$LATEST` will go on changing, and a policy of its own."""
    function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
    before = len(self._functions.get(function.function_name, {}).get("versions", ()))
    version = _publish_version(self, name_or_arn, description)
    if version is not None and len(self._functions[function.function_name]["versions"]) > before:
        for attribute in SNAPSHOT:
            if hasattr(version, attribute):
                setattr(version, attribute, copy.deepcopy(getattr(version, attribute)))
        version.policy = Policy(version)
        version.event_invoke_config = []
        version.url_config = None
    return version


def _split(function_name, qualifier):
    """(name or unqualified ARN, qualifier) from a name, a qualified name or a (qualified) ARN."""
    if function_name.startswith("arn:"):
        parts = function_name.split(":")
        if len(parts) == 8:
            return ":".join(parts[:7]), parts[7]
        return function_name, qualifier
    if ":" in function_name:
        name, in_name = function_name.split(":", 1)
        return name, in_name
    return function_name, qualifier


def _alias(backend, function_name, qualifier):
    """The alias `qualifier` names on the function, or None when it names a version or nothing."""
    name, qualifier = _split(function_name, qualifier)
    if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
        return None, name
    return backend._lambdas.get_alias(qualifier, name), name


def _alias_policy(backend, alias, name):
    policy = getattr(alias, "books_policy", None)
    if policy is None:
        # Its statements' Resource is the alias's ARN (the unqualified function's, qualified).
        policy = alias.books_policy = Policy(backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(name))
    return policy


def _add_alias_permission(self, function_name, qualifier, raw):
    alias, name = _alias(self, function_name, qualifier)
    if alias is None:
        return _add_permission(self, function_name, qualifier, raw)
    statement, _ = _alias_policy(self, alias, name).add_statement(raw, alias.name)
    return statement


def _get_alias_policy(self, function_name, qualifier=None):
    alias, name = _alias(self, function_name, qualifier)
    if alias is None:
        return _get_policy(self, function_name, qualifier)
    return _alias_policy(self, alias, name).wire_format()


def _remove_qualified_permission(self):
    """RemovePermission on the policy its Qualifier names (moto's always took `$LATEST`'s)."""
    function_name = unquote(self.path.split("/")[-3])
    statement_id = self.path.split("/")[-1].split("?")[0]
    revision = self.querystring.get("RevisionId", [""])[0]
    qualifier = self.querystring.get("Qualifier", [None])[0]
    alias, name = _alias(self.backend, function_name, qualifier)
    if alias is not None:
        policy = _alias_policy(self.backend, alias, name)
    else:
        policy = self.backend.get_function(function_name, qualifier).policy
    policy.del_statement(statement_id, revision)
    return 204, {"status": 204}, "{}"


def _check_routing(self, function_name, function_version, routing_config):
    weights = (routing_config or {}).get("AdditionalVersionWeights") or {}
    if not weights:
        return
    if len(weights) > 1:
        raise InvalidParameterValueException("An alias can route to one additional version only.")
    (version, weight), = weights.items()
    if not (0.0 <= float(weight) <= 1.0):
        raise InvalidParameterValueException(
            f"The weight of version {version} must be between 0.0 and 1.0: {weight}")
    if function_version == "$LATEST" or version == "$LATEST" or not str(version).isdigit():
        raise InvalidParameterValueException(
            "Routing configuration takes published versions only: neither the alias's version nor the "
            "additional one can be $LATEST.")
    if str(version) == str(function_version):
        raise InvalidParameterValueException(
            f"The additional version {version} is the alias's own version.")
    # Raises ResourceNotFoundException, as Lambda does, for a version that does not exist.
    self.get_function_by_name_or_arn_with_qualifier(function_name, str(version))


def _put_checked_alias(self, name, function_name, function_version, description, routing_config):
    _check_routing(self, function_name, function_version, routing_config)
    return _put_alias(self, name, function_name, function_version, description, routing_config)


def _update_checked_alias(self, name, function_name, function_version, description, routing_config):
    if routing_config is not None:
        target = function_version or self.get_alias(name, function_name).function_version
        _check_routing(self, function_name, target, routing_config)
    return _update_alias(self, name, function_name, function_version, description, routing_config)


def _qualified_arn(backend, function_name):
    """The ARN a mapping keeps for `function_name`: qualified as given (alias or version)."""
    name, qualifier = _split(function_name, None)
    function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(name)
    return function.function_arn + (f":{qualifier}" if qualifier and qualifier != "$LATEST" else "")


def _create_mapping_on_qualifier(self, spec):
    mapping = _create_event_source_mapping(self, spec)
    mapping.function_arn = _qualified_arn(self, spec["FunctionName"])
    return mapping


def _update_mapping_on_qualifier(self, uuid, spec):
    mapping = _update_event_source_mapping(self, uuid, spec)
    if mapping is not None and spec.get("FunctionName"):
        mapping.function_arn = _qualified_arn(self, spec["FunctionName"])
    return mapping


def apply():
    LambdaStorage.publish_version = _publish_snapshot
    LambdaStorage.put_alias = _put_checked_alias
    LambdaStorage.update_alias = _update_checked_alias
    LambdaBackend.add_permission = _add_alias_permission
    LambdaBackend.get_policy = _get_alias_policy
    LambdaResponse.remove_permission = _remove_qualified_permission
    LambdaBackend.create_event_source_mapping = _create_mapping_on_qualifier
    LambdaBackend.update_event_source_mapping = _update_mapping_on_qualifier
