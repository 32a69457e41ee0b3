"""Stream records kept for their readers: moto's Lambda delivers none.

moto invokes a Lambda function itself (through Docker) whenever a DynamoDB table with an
event source mapping gets a stream record, then drops the records it delivered. In the local
cloud `books-local`'s stream poller plays the event source mapping, reading the stream like
Lambda does; moto's own delivery would fail the write (no Docker here) or steal the records.
So moto keeps stream records for readers and invokes nothing.

AWS documentation followed:
- https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html (the event source mapping polls the stream)
"""

from moto.awslambda.models import LambdaBackend

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


def _deliver_nothing(self, function_arn, items, source):  # noqa: ARG001 - moto's signature
    return None


def apply():
    LambdaBackend.send_dynamodb_items = _deliver_nothing
