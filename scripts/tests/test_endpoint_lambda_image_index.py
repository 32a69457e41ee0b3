"""Tests of scripts/local_endpoint/lambda_image_index.py. Behaviour 16: Lambda refuses an image index."""

import json
import os
import pathlib
import sys
import unittest
import unittest.mock
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402

from support import serve_endpoint  # noqa: E402


class LambdaImageIndex(unittest.TestCase):
    """Behaviour 16, on images put in the endpoint's ECR: Lambda takes one image, not an index."""

    INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:" + "1" * 64, "platform": {"architecture": "amd64", "os": "linux"}}]}
    MANIFEST = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": "sha256:" + "2" * 64},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 3,
                            "digest": "sha256:" + "3" * 64}]}

    def setUp(self):
        options = dict(region_name="eu-west-1", endpoint_url=serve_endpoint(self.addCleanup),
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        self.ecr, self.lambda_ = boto3.client("ecr", **options), boto3.client("lambda", **options)
        self.name = f"books-{uuid.uuid4().hex}"  # the endpoint's backends outlive the test
        self.role = boto3.client("iam", **options).create_role(
            RoleName=self.name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.ecr.create_repository(repositoryName=self.name)
        uri = f"{self.ecr.describe_registry()['registryId']}.dkr.ecr.eu-west-1.amazonaws.com/{self.name}"
        self.index, self.image = f"{uri}:index", f"{uri}:image"
        for tag, manifest, media_type in (
                ("index", self.INDEX, "application/vnd.oci.image.index.v1+json"),
                ("list", {**self.INDEX, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"},
                 "application/vnd.docker.distribution.manifest.list.v2+json"),
                ("image", self.MANIFEST, "application/vnd.oci.image.manifest.v1+json")):
            self.ecr.put_image(repositoryName=self.name, imageTag=tag, imageManifest=json.dumps(manifest),
                               imageManifestMediaType=media_type)

    def create(self, name, image_uri):
        return self.lambda_.create_function(FunctionName=name, Role=self.role, PackageType="Image",
                                            Code={"ImageUri": image_uri})

    def assert_refused(self, call, image_uri):
        with self.assertRaises(self.lambda_.exceptions.InvalidParameterValueException) as refused:
            call()
        self.assertEqual(refused.exception.response["Error"]["Message"],
                         f"The image manifest, config or layer media type for the source image {image_uri} "
                         f"is not supported.")

    @unittest.mock.patch.dict(os.environ, {"MOTO_LAMBDA_STUB_ECR": "false"})
    def test_an_index_or_a_manifest_list_is_refused_and_an_image_is_created(self):
        self.assert_refused(lambda: self.create(f"{self.name}-index", self.index), self.index)
        listed = self.index.replace(":index", ":list")
        self.assert_refused(lambda: self.create(f"{self.name}-list", listed), listed)
        created = self.create(self.name, self.image)
        self.assertEqual(created["PackageType"], "Image")
        self.assert_refused(lambda: self.lambda_.update_function_code(FunctionName=self.name, ImageUri=self.index),
                            self.index)
        self.assertEqual(self.lambda_.get_function(FunctionName=self.name)["Code"]["ImageUri"], self.image)

    def test_with_ecr_stubbed_an_index_ecr_holds_is_still_refused_and_anything_else_is_moto_s(self):
        os.environ.pop("MOTO_LAMBDA_STUB_ECR", None)
        self.assert_refused(lambda: self.create(f"{self.name}-index", self.index), self.index)
        elsewhere = self.index.replace(f"{self.name}:index", "not-in-ecr:v1")
        self.assertEqual(self.create(f"{self.name}-stubbed", elsewhere)["PackageType"], "Image")


if __name__ == "__main__":
    unittest.main()
