//! `books-projector`: the Lambda function on the `books` table's stream that keeps the read
//! model `books_view` up to date, reporting records it could not apply as batch item failures.

use aws_lambda_events::event::dynamodb::Event;
use books::config::{self, vars};
use books::projector::project_batch;
use books::store::ViewStore;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    books::telemetry::init();
    let table = config::required(vars::BOOKS_VIEW_TABLE)?;
    let aws = config::aws().await;
    let view = ViewStore::new(config::dynamodb(&aws), table);
    run(service_fn(|event: LambdaEvent<Event>| {
        let view = &view;
        async move { Ok::<_, Error>(project_batch(view, event.payload, chrono::Utc::now().timestamp()).await) }
    }))
    .await
}
