//! Replays a fuzz target's seeds and the inputs a fuzzer once failed on (`fuzz/seeds/TARGET`,
//! `fuzz/regressions/TARGET`) through its entry point, without the fuzzer: each stays a test. Shared
//! by the `tests/fuzz_inputs.rs` of the crates that own the parsers (`#[path]`-included).

use std::path::Path;

/// Runs every input of `target` through `run`; fails when the target has no input at all.
pub(crate) fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|folder| folder.join("fuzz"))
        .find(|fuzz| fuzz.join("seeds").is_dir())
        .expect("the workspace's fuzz/seeds folder");
    let mut inputs = 0;
    for folder in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else { continue };
        for entry in entries {
            let path = entry.expect("a readable folder").path();
            eprintln!("replaying {}", path.display());
            run(&std::fs::read(&path).expect("a readable input"));
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no input for {target}: fuzz/seeds/{target} is empty or missing");
}
