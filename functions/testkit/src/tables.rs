//! Tables for one test, created from `terraform/tables.json` under unique names, deleted when
//! the test ends (even when it fails).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

/// One table of `terraform/tables.json`.
#[derive(Debug, Clone)]
pub struct TableSchema(Value);

impl TableSchema {
    /// Reads the schema of a logical table (`books`, `books_view`).
    pub fn load(name: &str) -> Self {
        let path = crate::workspace_root().join("terraform/tables.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let all: Value = serde_json::from_str(&text).expect("tables.json is JSON");
        Self(all.get(name).unwrap_or_else(|| panic!("no table {name} in tables.json")).clone())
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// Creates a table of this schema named `table_name` (stream and TTL included).
    pub async fn create(&self, client: &Client, table_name: &str) {
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let mut schema = vec![key(self.text("hash_key").expect("hash_key"), KeyType::Hash).unwrap()];
        if let Some(range) = self.text("range_key") {
            schema.push(key(range, KeyType::Range).unwrap());
        }
        let attributes: BTreeMap<String, String> =
            serde_json::from_value(self.0["attributes"].clone()).expect("attributes map");
        let definitions = attributes
            .iter()
            .map(|(name, kind)| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .unwrap()
            })
            .collect();
        let indexes: Vec<GlobalSecondaryIndex> = self.0["global_secondary_indexes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|gsi| {
                let mut keys = vec![key(gsi["hash_key"].as_str().unwrap(), KeyType::Hash).unwrap()];
                if let Some(range) = gsi["range_key"].as_str() {
                    keys.push(key(range, KeyType::Range).unwrap());
                }
                GlobalSecondaryIndex::builder()
                    .index_name(gsi["name"].as_str().unwrap())
                    .set_key_schema(Some(keys))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(gsi["projection_type"].as_str().unwrap()))
                            .build(),
                    )
                    .build()
                    .unwrap()
            })
            .collect();
        let mut request = client
            .create_table()
            .table_name(table_name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(schema))
            .set_attribute_definitions(Some(definitions))
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes));
        if let Some(view) = self.text("stream_view_type") {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build()
                    .unwrap(),
            );
        }
        request.send().await.unwrap_or_else(|e| panic!("create table {table_name}: {e:?}"));
        if let Some(ttl) = self.text("ttl_attribute") {
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().enabled(true).attribute_name(ttl).build().unwrap(),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("TTL on {table_name}: {e:?}"));
        }
    }
}

/// The `books` and `books_view` tables of one test.
pub struct TestTables {
    /// A DynamoDB client on moto.
    pub client: Client,
    /// The write model's table.
    pub books: String,
    /// The read model's table.
    pub books_view: String,
}

impl TestTables {
    /// Creates both tables, with names of their own.
    pub async fn create() -> Self {
        let client = Client::new(&crate::aws_config().await);
        let suffix = ulid::Ulid::new().to_string().to_lowercase();
        let books = format!("books-{suffix}");
        let books_view = format!("books_view-{suffix}");
        TableSchema::load("books").create(&client, &books).await;
        TableSchema::load("books_view").create(&client, &books_view).await;
        Self { client, books, books_view }
    }

    /// Every item of a table, for assertions on what was (not) written.
    pub async fn scan(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }
}

impl Drop for TestTables {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be gone: delete from a thread of our own.
        let tables = [self.books.clone(), self.books_view.clone()];
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let client = Client::new(&crate::aws_config().await);
                for table in tables {
                    let _ = client.delete_table().table_name(table).send().await;
                }
            });
        })
        .join();
    }
}
