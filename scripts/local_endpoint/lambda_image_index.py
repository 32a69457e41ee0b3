"""Lambda refuses an image index: it runs one image.

Lambda runs one image, so CreateFunction and UpdateFunctionCode refuse an `ImageUri` naming an
image index or a Docker manifest list (what `docker buildx` pushes by default, with its
provenance) with 400 InvalidParameterValueException, "The image manifest, config or layer
media type for the source image ... is not supported." moto never looked at the media type
(and, with MOTO_LAMBDA_STUB_ECR=false, failed with a KeyError on an index). Judged only when
the endpoint's ECR holds the image; an image it does not hold is left to moto (stubbed by
default, ImageNotFoundException with MOTO_LAMBDA_STUB_ECR=false).

AWS documentation followed:
- https://docs.aws.amazon.com/lambda/latest/dg/images-create.html (image requirements)
- https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (InvalidParameterValueException)
"""

import json

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.ecr.models import ecr_backends

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


IMAGE_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json")


def _ecr_media_type(account_id, region, image_uri):
    """The manifest media type of the image `image_uri` names in the endpoint's ECR (its
    repository is the URI's path, whatever its host), or None when ECR does not hold it."""
    path = image_uri.split("/", 1)[-1]
    if "@" in path:
        repository, digest = path.split("@", 1)
        repository = repository.split(":", 1)[0]  # repository:tag@digest names the digest
        matches = lambda image: image.get_image_digest() == digest  # noqa: E731
    else:
        repository, _, tag = path.rpartition(":") if ":" in path else (path, ":", "latest")
        matches = lambda image: tag in image.image_tags  # noqa: E731
    held = ecr_backends[account_id][region].repositories.get(repository)
    for image in held.images if held else ():
        if matches(image):
            return image.image_manifest_media_type or json.loads(image.image_manifest).get("mediaType")
    return None


_set_function_code = LambdaFunction._set_function_code


def _one_image_only(self, updated_spec):
    """Behaviour 16: an image index is refused as Lambda refuses it."""
    uri = updated_spec.get("ImageUri")
    if uri and _ecr_media_type(self.account_id, self.region, uri) in IMAGE_INDEX_TYPES:
        # Lambda's words, as its users quote them: aws/aws-lambda-roadmap#82,
        # terraform-aws-modules/terraform-aws-lambda#741 (older answers said "manifest or layer").
        raise LambdaClientError("InvalidParameterValueException",
                                f"The image manifest, config or layer media type for the source image {uri} "
                                f"is not supported.")
    return _set_function_code(self, updated_spec)


def apply():
    LambdaFunction._set_function_code = _one_image_only
