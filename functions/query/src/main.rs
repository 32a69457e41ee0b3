//! `books-query`: the Lambda function behind `GET /books` and `GET /books/{id}`, reading the
//! read model. Builds its DynamoDB client once, then hands every event to `books`.

use books::config::{self, vars};
use books::http::query::{self, Queries};
use books::http::CursorKey;
use books::store::ViewStore;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    books::telemetry::init();
    let table = config::required(vars::BOOKS_VIEW_TABLE)?;
    let cursor_key = CursorKey::new(config::required(vars::BOOKS_CURSOR_KEY)?.as_bytes())
        .map_err(|problem| config::ConfigError { name: vars::BOOKS_CURSOR_KEY, problem })?;
    let aws = config::aws().await;
    let queries = Queries { view: ViewStore::new(config::dynamodb(&aws), table), cursor_key };
    run(service_fn(|req: Request| {
        let queries = &queries;
        async move { Ok::<_, std::convert::Infallible>(query::handle(queries, req).await) }
    }))
    .await
}
