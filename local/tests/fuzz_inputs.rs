//! Replays the fuzz targets' seeds and the inputs a fuzzer once failed on (`fuzz/seeds`,
//! `fuzz/regressions`): each stays a test of its parser without the fuzzer (`make fuzz`).

#[path = "../../fuzz/replay.rs"]
mod replay;

#[test]
fn gateway_route() {
    replay::replay("gateway_route", books_local::fuzzing::gateway_route);
}

#[test]
fn gateway_query() {
    replay::replay("gateway_query", books_local::fuzzing::gateway_query);
}

#[test]
fn gateway_response() {
    replay::replay("gateway_response", books_local::fuzzing::gateway_response);
}
