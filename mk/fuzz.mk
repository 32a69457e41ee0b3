# `make fuzz`: every parser at the system's edges under coverage-guided fuzzing (cargo fuzz,
# libFuzzer; fuzz/README.md). Included by the root Makefile (uses its BUILD and VENV_PY).
# cargo fuzz needs a nightly toolchain (its instrumentation flags are unstable); the rest of the
# project builds on stable.

FUZZ_TOOLCHAIN ?= nightly
# Pinned like the Python tools: installed into cargo's bin folder by `make fuzz-tools`.
CARGO_FUZZ_VERSION := 0.13.2
# Per target. `make fuzz` for minutes each; make test's short run for seconds.
FUZZ_SECONDS ?= 300
FUZZ_SANITIZER ?= address
FUZZ_TEST_SECONDS ?= 10

.PHONY: fuzz fuzz-tools test-fuzz test-fuzz-run
fuzz: fuzz-tools ## Fuzz every parser for FUZZ_SECONDS each (default 300, AddressSanitizer); failing inputs land in fuzz/regressions, which cargo test replays
	BUILD=$(abspath $(BUILD)) FUZZ_TOOLCHAIN=$(FUZZ_TOOLCHAIN) $(PYTHON) scripts/fuzz.py --seconds $(FUZZ_SECONDS) --sanitizer $(FUZZ_SANITIZER) $(TARGETS)

fuzz-tools: check-rust
	@$(CARGO) +$(FUZZ_TOOLCHAIN) --version >/dev/null 2>&1 || { echo "error: no $(FUZZ_TOOLCHAIN) Rust toolchain (cargo fuzz needs one). Fix: rustup toolchain install $(FUZZ_TOOLCHAIN)"; exit 1; }
	@$(CARGO) fuzz --version 2>/dev/null | grep -q ' $(CARGO_FUZZ_VERSION)$$' || { \
	  echo "==> installing cargo-fuzz $(CARGO_FUZZ_VERSION) (crates.io)"; \
	  $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked; }

# The short form in make test: every target for FUZZ_TEST_SECONDS, without AddressSanitizer (a
# third less to build; the targets' properties are checked the same way). The corpora and saved
# inputs are also replayed by cargo test, without the fuzzer.
test-fuzz: fuzz-tools ## A short fuzz run of every target (make test runs it)
	+$(MAKE) test-fuzz-run
test-fuzz-run:
	BUILD=$(abspath $(BUILD)) FUZZ_TOOLCHAIN=$(FUZZ_TOOLCHAIN) $(PYTHON) scripts/fuzz.py --seconds $(FUZZ_TEST_SECONDS) --sanitizer none
