"""The local AWS endpoint: moto's server with twenty-four behaviours, one module each.

moto answers the AWS APIs the local cloud calls; where it answers differently from AWS in a way
the local cloud (or a client that must also work against AWS) would notice, a module here makes
it answer as AWS does, and says which AWS documentation it follows. Two kinds:

- patches of moto's own code (`apply()` replaces a method of one of its models): they read
  moto's private parts, so each names the moto release(s) it was written against in
  `MOTO_VERSIONS`, and `install()` refuses any other release with the fix;
- WSGI middlewares around moto's dispatcher: they see requests and answers only.

| #  | module                          | kind       | what                                                   |
|----|---------------------------------|------------|--------------------------------------------------------|
| 1  | `lambda_stream_delivery`        | patch      | stream records kept for books-local's pollers           |
| 2  | `dynamodb_atomic`               | patch      | DynamoDB's item operations atomic                      |
| 3  | `dynamodb_atomic`               | patch      | transactions undone item by item, streams read locked  |
| 4  | `dynamodb_delete_table`         | patch      | DeleteTable of a table gone, named as DynamoDB does    |
| 5  | `cloudwatch_metric_data`        | patch      | GetMetricData: exact dimensions, percentiles, math     |
| 6  | `logs_ingestion_order`          | patch      | GetLogEvents in ingestion order for a token `i/<n>`    |
| 7  | `apigateway_usage_plan_stages`  | patch      | removing an absent stage of a usage plan is no error   |
| 8  | `retries_answered_once`         | middleware | an SDK retry gets its first attempt's success          |
| 9  | `moto_module_list`              | patch      | moto's package listed once (a cost, not a difference)  |
| 10 | `faults`                        | middleware | faults on demand (`/_books/faults`)                    |
| 11 | `persistence`                   | middleware | the state saved and restored (`/_books/emulator-state`)|
| 12 | `apigateway_policy`             | patch      | a REST API's policy answered escaped                   |
| 13 | `transaction_tokens`            | middleware | TransactWriteItems' ClientRequestToken                 |
| 14 | `whole_bodies`                  | middleware | every request's body read whole first                  |
| 15 | `s3_authentication`             | middleware | S3's refusal of two auth mechanisms, expired URLs      |
| 16 | `lambda_image_index`            | patch      | Lambda refuses an image index                          |
| 17 | `call_recorder`                 | middleware | every call recorded with its caller (`/_books/calls`)  |
| 18 | `rpcv2_cbor`                    | middleware | Smithy RPC v2 CBOR, today's SDKs' CloudWatch protocol  |
| 19 | `logs_filter_patterns`          | patch      | FilterLogEvents: CloudWatch's filter patterns, by time  |
| 20 | `cloudwatch_metric_index`       | patch      | metrics as series: ListMetrics distinct, reads by time  |
| 21 | `logs_retention`                | patch      | log events expire by retention; reads by time           |
| 22 | `logs_insights`                 | patch      | Logs Insights: filter, stats, SOURCE, fields discovered |
| 23 | `lambda_versions`               | patch      | versions immutable, aliases own policies and mappings  |
| 24 | `cloudwatch_describe_alarms`    | patch      | DescribeAlarms applies every filter given              |

Behaviours that are moto's bugs rather than the local cloud's needs are written up for moto in
`upstream/`, ready to send. The endpoint's private protocol with books-local (`/_books/faults`,
`/_books/emulator-state`, the `i/<n>` token) is docs/local-endpoint-protocol.md.

`scripts/moto_server.py` serves it: `install()`, then moto's `main` with `--state FILE`.
"""

import os
import sys

import moto
import moto.server

from local_endpoint import (
    apigateway_policy,
    apigateway_usage_plan_stages,
    call_recorder,
    cloudwatch_describe_alarms,
    cloudwatch_metric_data,
    cloudwatch_metric_index,
    dynamodb_atomic,
    dynamodb_delete_table,
    faults,
    lambda_image_index,
    lambda_stream_delivery,
    lambda_versions,
    logs_filter_patterns,
    logs_insights,
    logs_ingestion_order,
    logs_retention,
    moto_module_list,
    persistence,
    retries_answered_once,
    rpcv2_cbor,
    s3_authentication,
    transaction_tokens,
    whole_bodies,
)

PATCHES = (lambda_stream_delivery, dynamodb_atomic, dynamodb_delete_table, cloudwatch_metric_data,
           logs_ingestion_order, apigateway_usage_plan_stages, moto_module_list, apigateway_policy,
           lambda_image_index, logs_filter_patterns, cloudwatch_metric_index,
           logs_retention, logs_insights, lambda_versions, cloudwatch_describe_alarms)
MIDDLEWARES = (whole_bodies, rpcv2_cbor, call_recorder, persistence, faults, transaction_tokens,
               retries_answered_once, s3_authentication)

_installed = False
_dispatcher = moto.server.DomainDispatcherApplication


class WrongMoto(SystemExit):
    """moto is not a release every behaviour was written against."""


def require_moto(version=None):
    """Refuses (WrongMoto, with the fix) a moto release some module was not written against."""
    version = version or moto.__version__
    strangers = [module.__name__.rsplit(".", 1)[1] for module in PATCHES + MIDDLEWARES
                 if module.MOTO_VERSIONS is not None and version not in module.MOTO_VERSIONS]
    if strangers:
        written = sorted({v for module in PATCHES + MIDDLEWARES for v in module.MOTO_VERSIONS or ()})
        raise WrongMoto(
            f"error: the local endpoint's behaviours {', '.join(strangers)} replace private code of moto "
            f"{' or '.join(written)}; this is moto {version}.\n"
            f"       fix: rm -rf .venv && make venv   (installs the moto of requirements.txt), or port those "
            f"modules of scripts/local_endpoint/ to moto {version} and add it to their MOTO_VERSIONS")


def application(dispatcher):
    """moto's dispatcher inside the middlewares (MIDDLEWARES lists them from the outermost)."""
    app = s3_authentication.S3Authentication(dispatcher)
    app = retries_answered_once.RetriesAnsweredOnce(app)
    app = transaction_tokens.TransactionTokens(app)
    app = faults.Faults(app)
    app = persistence.Persistence(app)
    app = call_recorder.CallRecorder(app, os.environ.get("BOOKS_RECORD_CALLS"))
    # Outside the recorder: a CBOR call is recorded as the JSON call it is carried as.
    app = rpcv2_cbor.RpcV2Cbor(app, dispatcher)
    return whole_bodies.WholeBodies(app)


def install():
    """Every behaviour, once: moto's models patched, and its server's dispatcher wrapped."""
    global _installed
    if _installed:
        return
    require_moto()
    for patch in PATCHES:
        patch.apply()
    moto.server.DomainDispatcherApplication = lambda create_app: application(_dispatcher(create_app))
    _installed = True


def serve(argv):
    """moto's server with every behaviour, its state in `--state FILE` (behaviour 11)."""
    install()
    return persistence.serve(argv)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
