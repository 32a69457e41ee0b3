//! Replays the fuzz targets' seeds and the inputs a fuzzer once failed on (`fuzz/seeds`,
//! `fuzz/regressions`): each stays a test of its parser without the fuzzer (`make fuzz`).

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut inputs = 0;
    for folder in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            eprintln!("replaying {}", path.display());
            run(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no input for {target}: fuzz/seeds/{target} is empty or missing");
}

#[test]
fn book_body() {
    replay("book_body", books::fuzzing::book_body);
}

#[test]
fn preconditions() {
    replay("preconditions", books::fuzzing::preconditions);
}

#[test]
fn cursor() {
    replay("cursor", books::fuzzing::cursor);
}
