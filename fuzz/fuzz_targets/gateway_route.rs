#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| books_local::fuzzing::gateway_route(data));
