//! `books-command`: the Lambda function behind `POST /books`, `PUT` and `DELETE /books/{id}`.
//! Builds its DynamoDB client once, then hands every API Gateway event to `books`.

use books::config::{self, vars};
use books::http::command::{self, Commands};
use books::store::BookStore;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    books::telemetry::init();
    let table = config::required(vars::BOOKS_TABLE)?;
    let aws = config::aws().await;
    let commands = Commands::new(BookStore::new(config::dynamodb(&aws), table));
    run(service_fn(|req: Request| {
        let commands = &commands;
        async move { Ok::<_, std::convert::Infallible>(command::handle(commands, req).await) }
    }))
    .await
}
