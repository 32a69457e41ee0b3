# `make fuzz`: every parser at the system's edges under coverage-guided fuzzing (cargo fuzz,
# libFuzzer; fuzz/README.md). Included by the root Makefile (uses its BUILD and VENV_PY).
# cargo fuzz needs a nightly toolchain (its instrumentation flags are unstable); the rest of the
# project builds on stable.

# Pinned by date, so every machine fuzzes with the same compiler: CI installs this one
# (.github/workflows/ci.yml, a step scripts/check_workflows.py requires); change both together.
FUZZ_TOOLCHAIN ?= nightly-2026-05-20
# Pinned like the Python tools: installed into cargo's bin folder by `make fuzz-tools`, built with
# the dev profile (--debug): it only drives cargo, and builds in half the CPU time (31 s, not 62).
CARGO_FUZZ_VERSION := 0.13.2
# Per target. `make fuzz` for minutes each; make test's short run for seconds.
FUZZ_SECONDS ?= 300
FUZZ_SANITIZER ?= address
FUZZ_TEST_SECONDS ?= 10

# FUZZ_TOOLCHAIN as rustup has it, found without a download: FUZZ_TOOLCHAIN itself when rustup
# has it; else the channel `nightly` when its manifest is of the pinned date (the same compiler,
# installed as `rustup toolchain install nightly` on that day); else nothing, and fuzz-tools
# installs it. `rustup run` never installs (`cargo +toolchain` does where rustup auto-installs).
FUZZ_PINNED_DATE = $(patsubst nightly-%,%,$(filter nightly-%,$(FUZZ_TOOLCHAIN)))
FUZZ_INSTALLED_TOOLCHAIN = $(shell \
  if rustup run $(FUZZ_TOOLCHAIN) rustc --version >/dev/null 2>&1; then echo $(FUZZ_TOOLCHAIN); \
  elif [ -n "$(FUZZ_PINNED_DATE)" ] && sysroot=$$(rustup run nightly rustc --print sysroot 2>/dev/null) \
    && grep -qx 'date = "$(FUZZ_PINNED_DATE)"' "$$sysroot/lib/rustlib/multirust-channel-manifest.toml" 2>/dev/null; \
  then echo nightly; fi)
# What scripts/fuzz.py builds with (cargo +<this>): expanded when its recipe runs, after fuzz-tools.
FUZZ_RUN_TOOLCHAIN = $(or $(FUZZ_INSTALLED_TOOLCHAIN),$(error no Rust $(FUZZ_TOOLCHAIN) installed (cargo fuzz needs it). Fix: make fuzz-tools))

.PHONY: fuzz fuzz-tools test-fuzz test-fuzz-run
fuzz: fuzz-tools ## Fuzz every parser for FUZZ_SECONDS each (default 300, AddressSanitizer); failing inputs land in fuzz/regressions, which cargo test replays
	BUILD=$(abspath $(BUILD)) FUZZ_TOOLCHAIN=$(FUZZ_RUN_TOOLCHAIN) $(PYTHON) scripts/fuzz.py --seconds $(FUZZ_SECONDS) --sanitizer $(FUZZ_SANITIZER) $(TARGETS)

fuzz-tools: check-rust ## The pinned nightly (FUZZ_TOOLCHAIN; installed by rustup only when no installed one is it) and the pinned cargo-fuzz
	@installed='$(FUZZ_INSTALLED_TOOLCHAIN)'; \
	if [ -z "$$installed" ]; then \
	  echo "==> installing Rust $(FUZZ_TOOLCHAIN) for cargo fuzz: rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal"; \
	  rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal || { \
	    echo "error: could not install Rust $(FUZZ_TOOLCHAIN) (cargo fuzz needs it). Fix: with rustup (https://rustup.rs) and static.rust-lang.org reachable, rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal; or fuzz with an installed nightly (rustup toolchain list): FUZZ_TOOLCHAIN=<its name>"; exit 1; }; \
	elif [ "$$installed" != '$(FUZZ_TOOLCHAIN)' ]; then \
	  echo "==> cargo fuzz builds with Rust $$installed: it is $(FUZZ_TOOLCHAIN) (its manifest's date)"; \
	fi
	@$(CARGO) fuzz --version 2>/dev/null | grep -q ' $(CARGO_FUZZ_VERSION)$$' || { \
	  echo "==> installing cargo-fuzz $(CARGO_FUZZ_VERSION) (crates.io)"; \
	  $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --debug; }

# The short form in make test: every target for FUZZ_TEST_SECONDS, without AddressSanitizer (a
# third less to build; the targets' properties are checked the same way). The corpora and saved
# inputs are also replayed by cargo test, without the fuzzer.
test-fuzz: fuzz-tools ## A short fuzz run of every target (make test runs it)
	+$(MAKE) test-fuzz-run
test-fuzz-run:
	BUILD=$(abspath $(BUILD)) FUZZ_TOOLCHAIN=$(FUZZ_RUN_TOOLCHAIN) $(PYTHON) scripts/fuzz.py --seconds $(FUZZ_TEST_SECONDS) --sanitizer none
