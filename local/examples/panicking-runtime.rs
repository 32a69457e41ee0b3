//! `panicking-runtime`: a function on the `lambda_runtime` crate, as the Books functions are
//! built, whose handler panics when the event says `{"panic": true}` and otherwise answers its
//! process id. The conformance tests run it to show what a handler panic does under the
//! workspace's panic strategy (see `[profile.release]` in the workspace's Cargo.toml).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    assert!(event.payload["panic"] != json!(true), "the handler panicked on purpose");
    Ok(json!({"pid": std::process::id()}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
