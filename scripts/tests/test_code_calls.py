"""Tests of terraform/tests/code_calls.py: the actions read from the code."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "terraform" / "tests"))
import code_calls  # noqa: E402

STORE = """
impl Store {
    pub async fn get(&self, id: &str) -> Result<Item, E> {
        self.item(format!("BOOK#{id}")).await
    }
    async fn item(&self, pk: String) -> Result<Item, E> {
        let output = self.client.get_item().key("pk", pk).send().await?;
        Ok(output.into())
    }
    pub async fn rename(&self, book: &Book) -> Result<(), E> {
        let put = Put::builder().item("pk", book.pk()).build()?;
        let old = Update::builder().key("pk", book.old()).build()?;
        self.transact(vec![put.into(), old.into()]).await
    }
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), E> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await?;
        Ok(())
    }
    fn declared_only(&self);
    pub async fn list(&self) -> Result<Page, E> {
        let page = self.client.query().send().await?;
        Ok(page.into())
    }
}
"""


class Operations(unittest.TestCase):
    def setUp(self):
        self.bodies = code_calls.functions_of(STORE)

    def test_a_method_needs_what_its_helpers_call(self):
        self.assertEqual(code_calls.operations(self.bodies, "get"), {"dynamodb:GetItem"})

    def test_a_transaction_needs_the_action_of_each_kind_of_item_and_no_other(self):
        self.assertEqual(code_calls.operations(self.bodies, "rename"), {"dynamodb:PutItem", "dynamodb:UpdateItem"})

    def test_methods_are_apart(self):
        self.assertEqual(code_calls.operations(self.bodies, "list"), {"dynamodb:Query"})
        self.assertNotIn("declared_only", self.bodies)
        self.assertEqual(code_calls.operations(self.bodies, "missing"), set())


class TheFunctions(unittest.TestCase):
    """Read from this repository: each function works on the table its role names."""

    def test_each_function_builds_one_store(self):
        tables = {function: code_calls.dynamodb_needs(function)[0] for function in ("command", "query", "projector")}
        self.assertEqual(tables, {"command": "books", "query": "books_view", "projector": "books_view"})

    def test_the_extension_only_writes_logs(self):
        self.assertLessEqual(code_calls.extension_logs_needs(), {"logs:CreateLogStream", "logs:PutLogEvents"})
        self.assertIn("logs:PutLogEvents", code_calls.extension_logs_needs())


if __name__ == "__main__":
    unittest.main()
