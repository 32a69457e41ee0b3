//! `bare-extension`: the floor books-telemetry is measured against in `make bench`. It is the
//! `lambda-extension` crate's own example and nothing more: it registers, then waits for the next
//! event (INVOKE or SHUTDOWN) and does nothing with it, on tokio's current-thread runtime as
//! books-telemetry runs. Never shipped.

use lambda_extension::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_extension::run(service_fn(|_: LambdaEvent| async { Ok::<_, Error>(()) })).await
}
