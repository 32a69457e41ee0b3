//! `bare-function`: the floor a Books function is measured against in `make bench`. It is the
//! `lambda_runtime` crate's own example and nothing more — one `next` and one response per
//! invocation, no logging, no metrics — answering an API Gateway event with a constant response,
//! on tokio's current-thread runtime as the Books functions run (the example's multi-thread
//! default costs about twice the CPU per invocation: not a floor). Never shipped.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(
            json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": r#"{"pong":true}"#}),
        )
    }))
    .await
}
