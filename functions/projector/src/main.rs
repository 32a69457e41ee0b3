//! `books-projector`: the Lambda function on the `books` table's stream that keeps the read
//! model `books_view` up to date, reporting records it could not apply as batch item failures.

use aws_lambda_events::event::dynamodb::Event;
use books::config::{self, vars};
use books::projector::project_batch;
use books::store::ViewStore;
use lambda_runtime::{service_fn, Error, LambdaEvent, Runtime};

// One thread: an invocation at a time, mostly waiting on the network, on a share of one vCPU.
// tokio's multi-thread runtime costs twice the CPU per invocation in wake-ups between its
// threads (bench/report.md, "Against the floor").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (metrics, invocations) = books::telemetry::init(&books::telemetry::service_name("projector"))?;
    let table = config::required(vars::BOOKS_VIEW_TABLE)?;
    let aws = config::aws().await;
    // Lives as long as the process: every invocation borrows it.
    let view: &'static ViewStore = Box::leak(Box::new(ViewStore::new(config::dynamodb(&aws), table)));
    let handler = service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(project_batch(view, event.payload, chrono::Utc::now().timestamp()).await)
    });
    Runtime::new(handler).layer(metrics).layer(invocations).run().await
}
