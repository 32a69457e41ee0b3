"""The local AWS endpoint: moto's server with one behaviour switched off.

moto invokes a Lambda function itself (through Docker) whenever a DynamoDB table with an event
source mapping gets a stream record, then drops the records it delivered. In the local cloud
`books-local`'s stream poller plays the event source mapping, reading the stream like Lambda
does; moto's own delivery would fail the write (no Docker here) or steal the records. So this
launcher makes moto keep stream records for readers and invoke nothing. Everything else is
moto's server, unchanged.
"""

import sys

from moto.awslambda.models import LambdaBackend
from moto.server import main


def _deliver_nothing(self, function_arn, items, source):  # noqa: ARG001 - moto's signature
    return None


LambdaBackend.send_dynamodb_items = _deliver_nothing

if __name__ == "__main__":
    sys.exit(main())
