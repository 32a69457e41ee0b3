"""Behaviour 18: Smithy RPC v2 CBOR, the protocol today's AWS SDKs speak to CloudWatch.

CloudWatch's current model lists `smithy-rpc-v2-cbor` first (then `json`, then `query`), and
SDKs generated from it with one protocol send only CBOR: the Rust SDK's `aws-sdk-cloudwatch` after
1.99 does, for instance (`POST /service/GraniteServiceVersion20100801/operation/GetMetricData`,
header `smithy-protocol: rpc-v2-cbor`). moto 5.2.1 had no route for it (404); 5.2.6 answers it
(upstream/cloudwatch-rpcv2-cbor.md). The rest of this endpoint reads requests by their
`X-Amz-Target` and JSON body, though: the fault switch matches them so, the call recorder maps
them so to IAM actions, a transaction token or an SDK retry is recognised so. So CBOR is carried
here, before all of them, through the JSON protocol they and moto already speak; and what moto
cannot answer (an operation it has not implemented or does not know) is a CBOR error, not
werkzeug's HTML page.

Here a CBOR request of a service whose model also lists `json` is carried by moto's JSON
protocol: decoded with botocore's CBOR parser against the operation's input shape, written as
the JSON request botocore's JSON serialiser makes of the same parameters, answered by moto, and
the answer read with botocore's JSON parser and written back in CBOR with botocore's CBOR
serialiser against the output shape. Errors keep their status, code and message, and the
`x-amzn-query-error` header of services that are query compatible (CloudWatch is). Only botocore
knows the shapes, so only botocore's code reads and writes them; nothing here parses CBOR.

AWS documentation followed:
- Smithy RPC v2 CBOR protocol: https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html
  (path `/service/{ServiceName}/operation/{OperationName}`, `smithy-protocol: rpc-v2-cbor` on
  both sides, errors as a map with `__type`, no body for an operation without output);
- request compression: https://smithy.io/2.0/spec/behavior-traits.html#requestcompression-trait
  (gzip, `Content-Encoding`; CloudWatch's PutMetricData carries the trait);
- query-compatible errors: https://smithy.io/2.0/aws/protocols/aws-query-protocol.html#aws-protocols-awsquerycompatible-trait
  (`x-amzn-query-error: Code;Fault`).
"""

import gzip
import re

import botocore.parsers
import botocore.serialize
import botocore.session

from local_endpoint.wsgi import environ_with_body, run, whole_body

PROTOCOL = "rpc-v2-cbor"
# The moto release(s) whose private code this module was written against (checked by install()):
# it asks moto's dispatcher which service a request is for.
MOTO_VERSIONS = ("5.2.6",)
_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")
# A request's headers that describe the CBOR it was sent as, not the JSON it is carried as.
_CBOR_HEADERS = ("HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_ENCODING")


class RpcV2Cbor:
    """WSGI middleware: RPC v2 CBOR requests carried through moto's JSON protocol.

    `dispatcher` is moto's, asked which service a request is for (its own inference from the
    credential scope), so that only that service's model is read, once."""

    def __init__(self, app, dispatcher):
        self.app = app
        self.dispatcher = dispatcher
        self._loader = botocore.session.get_session().get_component("data_loader")
        self._models = {}  # (moto's service name, target prefix): botocore ServiceModel or None

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        path = _PATH.match(environ.get("PATH_INFO", ""))
        if environ.get("HTTP_SMITHY_PROTOCOL") != PROTOCOL or path is None:
            return self.app(environ, start_response)
        model = self._model(environ, path["service"])
        if model is None:
            return _cbor_error(start_response, 404, "UnknownOperationException",
                               f"the local endpoint serves no service {path['service']} in RPC v2 CBOR "
                               f"(only services whose model also lists the JSON protocol, which moto serves)")
        if path["operation"] not in model.operation_names:
            return _cbor_error(start_response, 404, "UnknownOperationException",
                               f"{path['service']} has no operation {path['operation']}")
        operation = model.operation_model(path["operation"])
        try:
            parameters = _decoded(_uncompressed(environ, whole_body(environ)), operation.input_shape)
        except Exception as error:  # noqa: BLE001 - any undecodable body is the client's
            return _cbor_error(start_response, 400, "SerializationException",
                               f"the body is not CBOR of {operation.name}'s input: {error}")
        request = botocore.serialize.create_serializer("json", include_validation=False).serialize_to_request(
            parameters, operation)
        carried = environ_with_body(environ, request["body"], drop=_CBOR_HEADERS)
        carried["PATH_INFO"] = "/"
        carried["CONTENT_TYPE"] = request["headers"]["Content-Type"]
        for name, value in request["headers"].items():
            if name.lower() != "content-type":
                carried["HTTP_" + name.upper().replace("-", "_")] = value
        try:
            status, headers, body = run(self.app, carried)
        except Exception as error:  # noqa: BLE001 - werkzeug would answer its HTML page, not CBOR
            return _cbor_error(start_response, 500, "InternalFailure", f"the local endpoint failed: {error}")
        return _answered_in_cbor(start_response, operation, status, headers, body)

    def _model(self, environ, target_prefix):
        host = self.dispatcher.infer_service_region_host(environ, environ.get("PATH_INFO", ""))
        service = self.dispatcher.get_backend_for_host(host) if host else None
        key = (service, target_prefix)
        if key not in self._models:
            self._models[key] = None
            if service in self._loader.list_available_services("service-2"):
                model = botocore.session.get_session().get_service_model(service)
                if model.metadata.get("targetPrefix") == target_prefix and "json" in model.metadata.get("protocols", []):
                    self._models[key] = model
        return self._models[key]


def _uncompressed(environ, body):
    """The body as it was before the client compressed it: SDKs gzip the operations with Smithy's
    `requestCompression` trait (CloudWatch's PutMetricData) once a body reaches their minimum
    size (10 KiB by default; the Rust SDK's too), saying so in `Content-Encoding`."""
    encodings = [e.strip().lower() for e in environ.get("HTTP_CONTENT_ENCODING", "").split(",") if e.strip()]
    for encoding in reversed(encodings):
        if encoding != "gzip":
            raise ValueError(f"content encoding {encoding!r} is not one CloudWatch takes (gzip)")
        body = gzip.decompress(body)
    return body


def _decoded(body, shape):
    """The parameters a CBOR body holds, read by botocore's CBOR parser against `shape`."""
    if shape is None or not body:
        return {}
    parser = botocore.parsers.create_parser("smithy-rpc-v2-cbor")
    parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _answered_in_cbor(start_response, operation, status, headers, body):
    code = int(status.split(" ", 1)[0])
    kept = [(name, value) for name, value in headers
            if name.lower() in ("x-amzn-requestid", "x-amzn-query-error", "date")]
    response = {"body": body, "headers": {name.lower(): value for name, value in headers}, "status_code": code}
    json_parser = botocore.parsers.create_parser("json")
    if code >= 300:
        error = json_parser.parse(response, None)["Error"]
        return _cbor_error(start_response, code, error.get("Code") or str(code), error.get("Message", ""), kept,
                           reason=status)
    shape = operation.output_shape
    if shape is None:
        return _start(start_response, status, b"", kept)
    parsed = json_parser.parse(response, shape)
    parsed.pop("ResponseMetadata", None)
    return _start(start_response, status, _encoded(parsed, shape), kept)


def _encoded(value, shape):
    """`value` in CBOR, written by botocore's CBOR serialiser against `shape` (an output shape:
    the serialiser's public entry point writes whole requests, so its item writer is used)."""
    serialized = bytearray()
    botocore.serialize.RpcV2CBORSerializer()._serialize_data_item(serialized, value, shape)  # noqa: SLF001
    return bytes(serialized)


class _ErrorShape:
    """The members an RPC v2 error body carries, for the serialiser: `__type` and `message`."""

    type_name = "structure"
    serialization = {}

    class _Text:
        type_name = "string"
        serialization = {}

    members = {"__type": _Text(), "message": _Text()}


def _cbor_error(start_response, code, error_code, message, headers=(), reason=None):
    body = _encoded({"__type": error_code, "message": message}, _ErrorShape())
    return _start(start_response, reason or f"{code} Error", body, list(headers))


def _start(start_response, status, body, headers):
    answer = [("smithy-protocol", PROTOCOL), ("Content-Length", str(len(body))), *headers]
    if body:
        answer.append(("Content-Type", "application/cbor"))
    start_response(status, answer)
    return [body]
