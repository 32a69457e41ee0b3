//! Reads the records moto's DynamoDB Streams produced for a table and hands them over in the
//! shape Lambda's event source mapping delivers them (`aws_lambda_events` DynamoDB records).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde_json::{json, Value};

/// Follows every shard of a table's stream from its start.
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// Next iterator per shard id.
    iterators: HashMap<String, Option<String>>,
}

impl StreamReader {
    /// A reader of `table`'s stream, from its first record.
    pub async fn new(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Self {
        let config = crate::aws_config().await;
        let described = dynamodb.describe_table().table_name(table).send().await.expect("describe table");
        let stream_arn =
            described.table.and_then(|t| t.latest_stream_arn).expect("the table has a stream (see tables.json)");
        Self { client: aws_sdk_dynamodbstreams::Client::new(&config), stream_arn, iterators: HashMap::new() }
    }

    /// Every record written since the previous call, in stream order.
    pub async fn next_records(&mut self) -> Vec<EventRecord> {
        let stream = self.client.describe_stream().stream_arn(&self.stream_arn).send().await.expect("describe stream");
        let shards = stream.stream_description.and_then(|d| d.shards).unwrap_or_default();
        let mut records = Vec::new();
        for shard in shards {
            let shard_id = shard.shard_id.expect("shard id");
            if !self.iterators.contains_key(&shard_id) {
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard_id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .expect("shard iterator")
                    .shard_iterator;
                self.iterators.insert(shard_id.clone(), iterator);
            }
            while let Some(Some(iterator)) = self.iterators.get(&shard_id).cloned() {
                let page = self.client.get_records().shard_iterator(iterator).send().await.expect("get records");
                let got = page.records.unwrap_or_default();
                let empty = got.is_empty();
                records.extend(got.into_iter().map(|r| self.lambda_record(r)));
                self.iterators.insert(shard_id.clone(), page.next_shard_iterator);
                if empty {
                    break;
                }
            }
        }
        records
    }

    /// The record as Lambda's event source mapping would put it in the event.
    fn lambda_record(&self, record: aws_sdk_dynamodbstreams::types::Record) -> EventRecord {
        let change = record.dynamodb.expect("stream record body");
        let image = |image: Option<HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| -> Value {
            image.map_or(Value::Null, |image| serde_json::to_value(serde_dynamo::Item::from(image)).expect("image"))
        };
        let event = json!({
            "eventID": record.event_id,
            "eventName": record.event_name.map(|n| n.as_str().to_owned()),
            "eventVersion": record.event_version,
            "eventSource": record.event_source,
            "awsRegion": record.aws_region,
            "dynamodb": {
                "ApproximateCreationDateTime": change.approximate_creation_date_time.map(|t| t.secs()),
                "Keys": image(change.keys),
                "NewImage": image(change.new_image),
                "OldImage": image(change.old_image),
                "SequenceNumber": change.sequence_number,
                "SizeBytes": change.size_bytes,
                "StreamViewType": change.stream_view_type.map(|v| v.as_str().to_owned()),
            },
            "eventSourceARN": self.stream_arn,
        });
        let cleaned = strip_nulls(event);
        serde_json::from_value(cleaned).expect("aws_lambda_events reads the record")
    }
}

/// An event of several records, as one Lambda invocation receives them.
pub fn event(records: Vec<EventRecord>) -> Event {
    let mut event = Event::default();
    event.records = records;
    event
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        other => other,
    }
}
