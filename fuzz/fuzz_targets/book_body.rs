#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| books::fuzzing::book_body(data));
