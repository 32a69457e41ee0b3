//! `books-command`: the Lambda function behind `POST /books`, `PUT` and `DELETE /books/{id}`.
//! Builds its DynamoDB client once, then hands every API Gateway event to `books`.

use books::config::{self, vars};
use books::http::command::{self, Commands};
use books::store::BookStore;
use lambda_http::{service_fn, Error, Request};

// One thread: an invocation at a time, mostly waiting on the network, on a share of one vCPU.
// tokio's multi-thread runtime costs twice the CPU per invocation in wake-ups between its
// threads (bench/report.md, "Against the floor").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (metrics, invocations) = books::telemetry::init(&books::telemetry::service_name("command"))?;
    let table = config::required(vars::BOOKS_TABLE)?;
    let aws = config::aws().await;
    // Lives as long as the process: every invocation borrows it.
    let commands: &'static Commands = Box::leak(Box::new(Commands::new(BookStore::new(config::dynamodb(&aws), table))));
    let handler = service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(command::handle(commands, req).await)
    });
    lambda_http::runtime(handler).layer(metrics).layer(invocations).run().await
}
