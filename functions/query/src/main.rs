//! `books-query`: the Lambda function behind `GET /books` and `GET /books/{id}`, reading the
//! read model. Builds its clients once (the cursor keys are read when a list first needs them),
//! then hands every event to `books`.

use books::config::{self, vars};
use books::http::query::{self, Queries};
use books::store::ViewStore;
use lambda_http::{service_fn, Error, Request};

// One thread: an invocation at a time, mostly waiting on the network, on a share of one vCPU.
// tokio's multi-thread runtime costs twice the CPU per invocation in wake-ups between its
// threads (bench/report.md, "Against the floor").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (metrics, invocations) = books::telemetry::init(&books::telemetry::service_name("query"))?;
    let table = config::required(vars::BOOKS_VIEW_TABLE)?;
    let aws = config::aws().await;
    let cursor_keys = config::cursor_keyring(&aws)?;
    // Lives as long as the process: every invocation borrows it.
    let queries: &'static Queries =
        Box::leak(Box::new(Queries { view: ViewStore::new(config::dynamodb(&aws), table), cursor_keys }));
    let handler =
        service_fn(
            move |req: Request| async move { Ok::<_, std::convert::Infallible>(query::handle(queries, req).await) },
        );
    lambda_http::runtime(handler).layer(metrics).layer(invocations).run().await
}
