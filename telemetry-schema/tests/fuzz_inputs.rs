//! Replays the fuzz targets' seeds and the inputs a fuzzer once failed on (`fuzz/seeds`,
//! `fuzz/regressions`): each stays a test of its parser without the fuzzer (`make fuzz`).

#[path = "../../fuzz/replay.rs"]
mod replay;

#[test]
fn telemetry_delivery() {
    replay::replay("telemetry_delivery", telemetry_schema::fuzzing::telemetry_delivery);
}

#[test]
fn telemetry_subscription() {
    replay::replay("telemetry_subscription", telemetry_schema::fuzzing::telemetry_subscription);
}

#[test]
fn emf() {
    replay::replay("emf", telemetry_schema::fuzzing::emf);
}
