//! `books-bench-ping`: the function `make bench` puts behind the local gateway to measure the
//! path this project wrote — gateway, Lambda emulator, function runtime, extension — without
//! DynamoDB. It is built like the Books functions (the same runtime, the same JSON logs and EMF
//! metrics through `books::telemetry`, so the extension has the same work per invocation), and
//! its handler answers a small JSON document without calling anything. Never shipped.

use lambda_http::{service_fn, Body, Error, Request, Response};

// As the Books functions: one thread (see functions/command/src/main.rs).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (metrics, invocations) = books::telemetry::init(&books::telemetry::service_name("ping"))?;
    let handler = service_fn(|_: Request| async {
        tracing::info!("pong");
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"pong":true}"#))
            .map_err(Error::from)
    });
    lambda_http::runtime(handler).layer(metrics).layer(invocations).run().await
}
