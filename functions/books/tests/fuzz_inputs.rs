//! Replays the fuzz targets' seeds and the inputs a fuzzer once failed on (`fuzz/seeds`,
//! `fuzz/regressions`): each stays a test of its parser without the fuzzer (`make fuzz`).

#[path = "../../../fuzz/replay.rs"]
mod replay;

#[test]
fn book_body() {
    replay::replay("book_body", books::fuzzing::book_body);
}

#[test]
fn preconditions() {
    replay::replay("preconditions", books::fuzzing::preconditions);
}

#[test]
fn cursor() {
    replay::replay("cursor", books::fuzzing::cursor);
}
