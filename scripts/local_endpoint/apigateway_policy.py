"""A REST API's resource policy answered escaped, as API Gateway answers it.

API Gateway answers a REST API's resource policy (`policy` of GetRestApi) with its quotes
escaped (`{\\"Version\\":...}`), and Terraform's provider reads it back that way (it unquotes
what it reads); moto answers it as it was sent, so the provider failed to read any policy
(`invalid character ... after top-level value`) and could neither apply nor destroy one.
Here the policy is answered escaped, as API Gateway does.

AWS documentation followed:
- https://docs.aws.amazon.com/apigateway/latest/api/API_GetRestApi.html (`policy`)
"""

from moto.apigateway.models import RestAPI

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


_rest_api_to_dict = RestAPI.to_dict


def _policy_escaped_as_api_gateway(self, *args, **kwargs):
    """Behaviour 12: the resource policy with its quotes escaped, as GetRestApi answers it."""
    document = _rest_api_to_dict(self, *args, **kwargs)
    policy = document.get("policy")
    if policy and '\\"' not in policy:
        document["policy"] = policy.replace('"', '\\"')
    return document


def apply():
    RestAPI.to_dict = _policy_escaped_as_api_gateway
