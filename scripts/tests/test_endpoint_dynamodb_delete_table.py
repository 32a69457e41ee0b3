"""Tests of scripts/local_endpoint/dynamodb_delete_table.py. Behaviour 4: DeleteTable of a table already gone."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import boto3  # noqa: E402
from support import create_table, in_moto_mock  # noqa: E402


class DeleteTable(unittest.TestCase):
    @in_moto_mock
    def test_a_table_already_gone_is_named_as_dynamodb_names_it(self):
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "books")
        dynamodb.delete_table(TableName="books")
        with self.assertRaises(dynamodb.exceptions.ResourceNotFoundException) as raised:
            dynamodb.delete_table(TableName="books")
        # What the AWS provider of Terraform matches to treat a retried delete as done.
        self.assertEqual(raised.exception.response["Error"]["Message"],
                         "Requested resource not found: Table: books not found")
