"""DeleteTable of a table already gone, named as DynamoDB names it.

DeleteTable on a table that is already gone answers "Requested resource not found" where
DynamoDB answers "Requested resource not found: Table: <name> not found". The AWS provider
of Terraform recognises only the latter as "already deleted", so a DeleteTable retried on a
loaded machine (the first call went through) failed the whole destroy. Here it is DynamoDB's.

AWS documentation followed:
- https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteTable.html (ResourceNotFoundException)
"""

from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


_delete_table = DynamoDBBackend.delete_table


def _delete_table_as_dynamodb(self, name):
    try:
        self.get_table(name)
    except ResourceNotFoundException:
        raise ResourceNotFoundException(table_name=name.rsplit("/", 1)[-1]) from None
    return _delete_table(self, name)


def apply():
    DynamoDBBackend.delete_table = _delete_table_as_dynamodb
