//! `books-query`: the Lambda function behind `GET /books` and `GET /books/{id}`, reading the
//! read model. Builds its DynamoDB client once, then hands every event to `books`.

use books::config::{self, vars};
use books::http::query::{self, Queries};
use books::http::CursorKey;
use books::store::ViewStore;
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (metrics, invocations) = books::telemetry::init(&books::telemetry::service_name("query"))?;
    let table = config::required(vars::BOOKS_VIEW_TABLE)?;
    let cursor_key = CursorKey::new(config::required(vars::BOOKS_CURSOR_KEY)?.as_bytes())
        .map_err(|problem| config::ConfigError { name: vars::BOOKS_CURSOR_KEY, problem })?;
    let aws = config::aws().await;
    // Lives as long as the process: every invocation borrows it.
    let queries: &'static Queries =
        Box::leak(Box::new(Queries { view: ViewStore::new(config::dynamodb(&aws), table), cursor_key }));
    let handler =
        service_fn(
            move |req: Request| async move { Ok::<_, std::convert::Infallible>(query::handle(queries, req).await) },
        );
    lambda_http::runtime(handler).layer(metrics).layer(invocations).run().await
}
