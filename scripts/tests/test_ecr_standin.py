"""Tests of scripts/ecr_standin.py: ECR's registry standing in on the local endpoint, refusing what
ECR refuses. One stand-in (its docker-registry on the endpoint's S3) serves the class; each test
pushes to repositories of its own, images of a few bytes written by hand, with skopeo."""

import base64
import http.client
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import unittest.mock
import urllib.error
import urllib.request

import boto3

import support

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "ecr_standin.py"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# urllib as a client that follows redirects, and never through a proxy of the environment's.
FOLLOWING = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EcrStandIn(unittest.TestCase):
    REGION = "eu-west-1"

    @classmethod
    def setUpClass(cls):
        missing = [tool for tool in ("skopeo", "docker-registry") if shutil.which(tool) is None]
        if missing:
            raise AssertionError(f"{' and '.join(missing)} not found. Fix: make tools-images")
        cls.folder = pathlib.Path(tempfile.mkdtemp(prefix="ecr-standin-"))
        cls.addClassCleanup(shutil.rmtree, cls.folder, ignore_errors=True)
        environment = unittest.mock.patch.dict(os.environ, CREDENTIALS)
        environment.start()
        cls.addClassCleanup(environment.stop)
        os.environ.pop("AWS_PROFILE", None)
        cls.endpoint = support.serve_endpoint(cls.addClassCleanup)
        cls.ecr, cls.lambda_, cls.iam = (boto3.client(service, endpoint_url=cls.endpoint, region_name=cls.REGION)
                                         for service in ("ecr", "lambda", "iam"))
        ready = cls.folder / "ready.json"
        with open(cls.folder / "standin.log", "wb") as log:
            cls.standin = subprocess.Popen(
                [sys.executable, str(SCRIPT), "serve", "--endpoint", cls.endpoint, "--region", cls.REGION,
                 "--dir", str(cls.folder / "standin"), "--ready-file", str(ready)],
                stdout=log, stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls.stop_standin)
        deadline = time.monotonic() + 120
        while not ready.exists():
            if cls.standin.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the stand-in did not start: {(cls.folder / 'standin.log').read_text()}")
            time.sleep(0.1)
        cls.registry = json.loads(ready.read_text())["registry"]
        cls.token = cls.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        cls.authfile = cls.folder / "auth.json"
        cls.authfile.write_text(json.dumps({"auths": {cls.registry: {"auth": cls.token}}}))
        cls.account = cls.ecr.describe_registry()["registryId"]
        cls.images = 0

    @classmethod
    def stop_standin(cls):
        cls.standin.terminate()
        if cls.standin.wait(timeout=60) != 0:
            raise AssertionError(f"the stand-in did not stop cleanly: {(cls.folder / 'standin.log').read_text()}")

    def repository(self, name, mutability="MUTABLE"):
        self.ecr.create_repository(repositoryName=name, imageTagMutability=mutability)
        return name

    def image(self, text, index=False):
        """A new OCI layout holding one image (or an index of it) as `latest`: (layout, layer, digest)."""
        type(self).images += 1
        layout = self.folder / f"oci-{self.images}"
        layer, digest = support.oci_image(layout, text, index=index)
        return layout, layer, digest

    def skopeo(self, source, target, *options, authfile=None):
        return subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests", *options,
                               f"--authfile={authfile or self.authfile}", "--src-tls-verify=false",
                               "--dest-tls-verify=false", source, target],
                              capture_output=True, text=True, timeout=120)

    def push(self, layout, reference, *options):
        copied = self.skopeo(f"oci:{layout}:latest", f"docker://{self.registry}/{reference}", *options)
        self.assertEqual(copied.returncode, 0, copied.stderr)

    def request(self, method, path, credentials=None, body=None, headers=None):
        """One request to the stand-in, redirects not followed: (status, headers, body)."""
        credentials = self.token if credentials is None else credentials
        headers = {**({"Authorization": f"Basic {credentials}"} if credentials else {}), **(headers or {})}
        connection = http.client.HTTPConnection(self.registry, timeout=60)
        try:
            connection.request(method, path, body, headers)
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def error(self, answer):
        status, _, body = answer
        (error,) = json.loads(body)["errors"]
        return status, error["code"], error["message"]

    def test_every_request_needs_ecr_credentials(self):
        status, headers, body = self.request("GET", "/v2/", credentials="")
        self.assertEqual((status, json.loads(body)["errors"][0]["code"]), (401, "DENIED"))
        self.assertRegex(headers["www-authenticate"], r'^Basic realm="[^"]+",service="ecr.amazonaws.com"$')
        wrong = base64.b64encode(b"AWS:not-the-token").decode()
        self.assertEqual(self.request("GET", "/v2/", credentials=wrong)[0], 401)
        self.assertEqual(self.request("GET", "/v2/", credentials=base64.b64encode(b"AWS:").decode())[0], 401)
        self.assertEqual(self.request("GET", "/v2/")[0], 200)
        self.repository("books-credentials")
        self.assertEqual(self.request("GET", "/v2/books-credentials/tags/list", credentials="")[0], 401)

    def test_an_image_pushed_with_an_auth_file_pulls_back_the_same(self):
        layout, layer, digest = self.image("pushed and pulled")
        self.repository("books-roundtrip")
        self.push(layout, "books-roundtrip:v1")
        copied = self.skopeo(f"docker://{self.registry}/books-roundtrip:v1", f"oci:{self.folder / 'pulled'}:v1")
        self.assertEqual(copied.returncode, 0, copied.stderr)
        (pulled,) = json.loads((self.folder / "pulled" / "index.json").read_text())["manifests"]
        self.assertEqual(pulled["digest"], digest)
        self.assertTrue((self.folder / "pulled" / "blobs" / "sha256" / layer["digest"].split(":")[1]).exists())

    def test_a_push_with_a_wrong_password_is_refused(self):
        layout, _, _ = self.image("refused")
        self.repository("books-wrong-password")
        wrong = self.folder / "wrong-auth.json"
        wrong.write_text(json.dumps({"auths": {self.registry: {"auth": base64.b64encode(b"AWS:guess").decode()}}}))
        copied = self.skopeo(f"oci:{layout}:latest", f"docker://{self.registry}/books-wrong-password:v1",
                             authfile=wrong)
        self.assertNotEqual(copied.returncode, 0, "pushed with a wrong password")
        self.assertIn("unauthorized", copied.stderr.lower())

    def test_a_repository_ecr_does_not_have_is_name_unknown(self):
        status, code, message = self.error(self.request("GET", "/v2/books-nowhere/tags/list"))
        self.assertEqual((status, code), (404, "NAME_UNKNOWN"))
        self.assertEqual(message, f"The repository with name 'books-nowhere' does not exist in the registry "
                                  f"with id '{self.account}'")
        layout, _, _ = self.image("nowhere to go")
        pushed = self.skopeo(f"oci:{layout}:latest", f"docker://{self.registry}/books-nowhere:v1")
        self.assertNotEqual(pushed.returncode, 0, "pushed to a repository ECR does not have")

    def test_a_repository_deleted_through_ecr_is_gone_at_once(self):
        layout, _, digest = self.image("deleted with its repository")
        self.push(layout, self.repository("books-deleted") + ":v1")
        self.ecr.delete_repository(repositoryName="books-deleted", force=True)
        for path in ("/v2/books-deleted/tags/list", f"/v2/books-deleted/manifests/{digest}"):
            self.assertEqual(self.error(self.request("GET", path))[:2], (404, "NAME_UNKNOWN"), path)

    def test_a_mount_from_another_repository_starts_a_plain_upload(self):
        layout, layer, _ = self.image("mounted nowhere")
        self.push(layout, self.repository("books-mount-from") + ":v1")
        self.repository("books-mount-to")
        status, headers, _ = self.request(
            "POST", f"/v2/books-mount-to/blobs/uploads/?mount={layer['digest']}&from=books-mount-from")
        self.assertEqual(status, 202, "201 would be a mount, which ECR does not do with BLOB_MOUNTING off")
        self.assertIn(f"{self.registry}/v2/books-mount-to/blobs/uploads/", headers["location"])
        self.assertEqual(self.request("HEAD", f"/v2/books-mount-to/blobs/{layer['digest']}")[0], 404)
        # A client falls back to uploading: the image arrives whole.
        copied = self.skopeo(f"docker://{self.registry}/books-mount-from:v1",
                             f"docker://{self.registry}/books-mount-to:v1")
        self.assertEqual(copied.returncode, 0, copied.stderr)
        self.assertIn(self.request("HEAD", f"/v2/books-mount-to/blobs/{layer['digest']}")[0], (200, 307))

    def blob_location(self, repository, digest):
        status, headers, _ = self.request("GET", f"/v2/{repository}/blobs/{digest}")
        self.assertEqual(status, 307, "a blob is served from S3, not by the registry")
        return headers["location"]

    def test_a_blob_is_a_redirect_to_s3_which_refuses_the_registry_credentials(self):
        layout, layer, _ = self.image("served by S3")
        self.push(layout, self.repository("books-blobs") + ":v1")
        location = self.blob_location("books-blobs", layer["digest"])
        self.assertTrue(location.startswith(f"{self.endpoint}/ecr-standin-"), location)
        self.assertIn("X-Amz-Signature=", location)
        url = f"http://{self.registry}/v2/books-blobs/blobs/{layer['digest']}"

        forwarding = urllib.request.Request(url)
        forwarding.add_header("Authorization", f"Basic {self.token}")  # urllib carries it on the redirect
        with self.assertRaises(urllib.error.HTTPError) as refused:
            FOLLOWING.open(forwarding, timeout=60)
        body = refused.exception.read().decode()
        self.assertEqual(refused.exception.code, 400, body)
        self.assertIn("<Code>InvalidArgument</Code>", body)
        self.assertIn("Only one auth mechanism allowed", body)

        keeping = urllib.request.Request(url)
        keeping.add_unredirected_header("Authorization", f"Basic {self.token}")
        with FOLLOWING.open(keeping, timeout=60) as answer:
            blob = answer.read()
        self.assertEqual(blob, (layout / "blobs" / "sha256" / layer["digest"].split(":")[1]).read_bytes())

    def test_an_expired_presigned_blob_url_is_refused(self):
        layout, layer, _ = self.image("expired")
        self.push(layout, self.repository("books-expired") + ":v1")
        location = self.blob_location("books-expired", layer["digest"])
        signed = location.split("X-Amz-Date=")[1].split("&")[0]
        with self.assertRaises(urllib.error.HTTPError) as refused:
            FOLLOWING.open(location.replace(signed, "20200101T000000Z"), timeout=60)
        body = refused.exception.read().decode()
        self.assertEqual(refused.exception.code, 403, body)
        self.assertIn("<Code>AccessDenied</Code><Message>Request has expired</Message>", body)
        with FOLLOWING.open(location, timeout=60) as answer:
            self.assertEqual(answer.status, 200, "the same URL in time")

    def test_an_immutable_tag_is_never_put_again(self):
        repository = self.repository("books-immutable", "IMMUTABLE")
        first, _, first_digest = self.image("first")
        second, _, _ = self.image("second")
        self.push(first, f"{repository}:v1")

        refused = self.skopeo(f"oci:{second}:latest", f"docker://{self.registry}/{repository}:v1")
        self.assertNotEqual(refused.returncode, 0, "another image was put under an immutable tag")
        self.assertIn("cannot be overwritten because the tag is immutable", refused.stderr)
        status, code, message = self.error(self.request(
            "PUT", f"/v2/{repository}/manifests/v1", body=b"{}", headers={"Content-Type": support.OCI_MANIFEST}))
        self.assertEqual((status, code), (400, "TAG_INVALID"))
        self.assertEqual(message, "The image tag 'v1' already exists in the 'books-immutable' repository and "
                                  "cannot be overwritten because the tag is immutable.")
        # ECR compares tags, not digests: the same image again under its tag is refused too.
        again = self.skopeo(f"oci:{first}:latest", f"docker://{self.registry}/{repository}:v1")
        self.assertNotEqual(again.returncode, 0, "an immutable tag was put again")
        self.assertIn("cannot be overwritten because the tag is immutable", again.stderr)
        self.push(first, f"{repository}:v2")  # a new tag for it is fine

        (image,) = self.ecr.describe_images(repositoryName=repository)["imageDetails"]
        self.assertEqual((image["imageDigest"], sorted(image["imageTags"])), (first_digest, ["v1", "v2"]))
        status, headers, _ = self.request("HEAD", f"/v2/{repository}/manifests/v1",
                                          headers={"Accept": support.OCI_MANIFEST})
        self.assertEqual((status, headers["docker-content-digest"]), (200, first_digest))

    def test_a_mutable_tag_moves_to_the_image_pushed_last(self):
        repository = self.repository("books-mutable")
        first, _, _ = self.image("first, moved from")
        second, _, second_digest = self.image("second, moved to")
        self.push(first, f"{repository}:v1")
        self.push(second, f"{repository}:v1")
        (image,) = self.ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "v1"}])["imageDetails"]
        self.assertEqual(image["imageDigest"], second_digest)

    def test_a_pushed_image_is_in_ecr_with_its_digest_and_media_type(self):
        layout, _, digest = self.image("recorded")
        self.push(layout, self.repository("books-recorded") + ":v7")
        (image,) = self.ecr.describe_images(repositoryName="books-recorded")["imageDetails"]
        self.assertEqual((image["imageDigest"], image["imageTags"], image["imageManifestMediaType"]),
                         (digest, ["v7"], support.OCI_MANIFEST))
        (held,) = self.ecr.batch_get_image(repositoryName="books-recorded", imageIds=[{"imageTag": "v7"}])["images"]
        self.assertEqual(json.loads(held["imageManifest"])["mediaType"], support.OCI_MANIFEST)

    def test_a_manifest_deleted_here_leaves_ecr(self):
        layout, _, digest = self.image("deleted")
        self.push(layout, self.repository("books-manifest-deleted") + ":v1")
        self.assertEqual(self.request("DELETE", f"/v2/books-manifest-deleted/manifests/{digest}")[0], 202)
        self.assertEqual(self.ecr.describe_images(repositoryName="books-manifest-deleted")["imageDetails"], [])

    @unittest.mock.patch.dict(os.environ, {"MOTO_LAMBDA_STUB_ECR": "false"})  # Lambda looks the image up in ECR
    def test_lambda_refuses_an_index_pushed_here_and_takes_its_image(self):
        layout, _, index_digest = self.image("one platform, in an index", index=True)
        repository = self.repository("books-index")
        self.push(layout, f"{repository}:v1", "--all")
        (index,) = self.ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])["images"]
        self.assertEqual(index["imageId"]["imageDigest"], index_digest)
        manifest_digest = json.loads(index["imageManifest"])["manifests"][0]["digest"]
        role = self.iam.create_role(RoleName="books-index", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        uri = f"{self.account}.dkr.ecr.{self.REGION}.amazonaws.com/{repository}"

        with self.assertRaises(self.lambda_.exceptions.InvalidParameterValueException) as refused:
            self.lambda_.create_function(FunctionName="books-index", Role=role, PackageType="Image",
                                         Code={"ImageUri": f"{uri}:v1"})
        self.assertIn("media type for the source image", str(refused.exception))
        created = self.lambda_.create_function(FunctionName="books-index", Role=role, PackageType="Image",
                                               Code={"ImageUri": f"{uri}@{manifest_digest}"})
        self.assertEqual(created["CodeSha256"], manifest_digest.split(":")[1])


if __name__ == "__main__":
    unittest.main()
