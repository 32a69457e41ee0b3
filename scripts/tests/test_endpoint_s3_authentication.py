"""Tests of scripts/local_endpoint/s3_authentication.py. Behaviour 15: S3's refusals of presigned requests."""

import itertools
import pathlib
import sys
import time
import unittest
import unittest.mock
import urllib.request
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from local_endpoint import s3_authentication  # noqa: E402
from support import serve_endpoint  # noqa: E402


class S3Authentication(unittest.TestCase):
    """Behaviour 15, with presigned URLs boto3 makes: used alone and in time they work; with a
    second authentication, or expired, S3 refuses them."""

    def setUp(self):
        url = serve_endpoint(self.addCleanup)
        self.s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=url,
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = f"blobs-{uuid.uuid4().hex}"  # the endpoint's backends outlive the test
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.s3.put_object(Bucket=bucket, Key="layer", Body=b"a layer")  # signed by its header alone
        v4 = boto3.client("s3", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="testing",
                          aws_secret_access_key="testing", config=Config(signature_version="s3v4"))
        where = {"Params": {"Bucket": bucket, "Key": "layer"}, "ExpiresIn": 600}
        # SigV2's query (Signature, Expires; botocore's default here) and SigV4's (X-Amz-*).
        self.presigned = {"SigV2": self.s3.generate_presigned_url("get_object", **where),
                          "SigV4": v4.generate_presigned_url("get_object", **where)}
        self.assertIn("Signature=", self.presigned["SigV2"])
        self.assertIn("X-Amz-Signature=", self.presigned["SigV4"])

    @staticmethod
    def get(url, headers=None):
        """(status, body) of a GET, through no proxy."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def test_a_presigned_url_alone_is_answered(self):
        for version, url in self.presigned.items():
            self.assertEqual(self.get(url), (200, b"a layer"), version)

    def test_a_presigned_url_with_an_authorization_header_is_refused(self):
        for (version, url), authorization in itertools.product(self.presigned.items(), (
                "Basic QVdTOnRva2Vu", "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/s3/aws4_request")):
            status, body = self.get(url, {"Authorization": authorization})
            self.assertEqual(status, 400, (version, body))
            self.assertIn(b"<Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the "
                          b"X-Amz-Algorithm query parameter, Signature query string parameter or the "
                          b"Authorization header should be specified</Message>", body)

    def test_an_expired_presigned_url_is_refused(self):
        signed_v2 = self.presigned["SigV2"].split("Expires=")[1].split("&")[0]
        signed_v4 = self.presigned["SigV4"].split("X-Amz-Date=")[1].split("&")[0]
        for url in (self.presigned["SigV2"].replace(f"Expires={signed_v2}", f"Expires={int(time.time()) - 1}"),
                    self.presigned["SigV4"].replace(signed_v4, "20200101T000000Z")):
            status, body = self.get(url)
            self.assertEqual(status, 403, body)
            self.assertIn(b"<Code>AccessDenied</Code><Message>Request has expired</Message>", body)

    def test_only_what_moto_dispatches_to_s3_is_judged(self):
        reached = []
        guard = s3_authentication.S3Authentication(self.dispatcher(reached))
        for service, answered in (("sqs", "200 OK"), ("s3", "400 Bad Request")):
            started = []
            environ = {"QUERY_STRING": "AWSAccessKeyId=testing&Signature=x&Expires=1", "PATH_INFO": "/",
                       "HTTP_HOST": "endpoint", "REQUEST_METHOD": "GET",
                       "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/"
                                             f"{service}/aws4_request"}
            b"".join(guard(environ, lambda status, headers: started.append(status)))
            self.assertEqual(started, [answered], service)
        self.assertEqual(reached, ["sqs"], "SQS's request went on to moto, S3's was refused")

    @staticmethod
    def dispatcher(reached):
        """moto's dispatcher, recording which backend each request it is handed goes to."""
        import moto.server
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        class Recording(DomainDispatcherApplication):
            def __call__(self, environ, start_response):
                reached.append(self.get_backend_for_host(self.infer_service_region_host(environ, "/")))
                start_response("200 OK", [])
                return [b""]

        return Recording(moto.server.create_backend_app)
