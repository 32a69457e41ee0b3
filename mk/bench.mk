# `make bench`: every benchmark, side by side in one run, into bench/report.md and its plots.
# Included by the root Makefile (uses its BUILD, VENV, CARGO, TARGET_DIR, TERRAFORM, WITH_ENDPOINT
# and mk/images.mk's release-binaries).

# What is measured is what ships: the static release binaries, built for this machine
# (HOST_ARCH, HOST_RELEASE_DIR: mk/images.mk).
BENCH_RELEASE_DIR = $(HOST_RELEASE_DIR)
BENCH_DIR = $(abspath $(BUILD))/bench
# The other local Lambda emulators of the comparison: cargo-lambda from PyPI, pinned, in a venv of
# the bench's own (make test never installs it); lambda-simulator is bench/peers' dependency.
CARGO_LAMBDA_VERSION := 1.9.2
PEERS_VENV = $(BENCH_DIR)/peers-venv
BENCH_ZIGBUILD = PATH="$(abspath $(VENV))/bin:$$PATH"

.PHONY: bench tools-bench
bench: venv check-rust check-terraform tools-bench build-debug $(TF_CLI_CONFIG_FILE) ## Benchmarks side by side in one run: cold starts, extension cost, telemetry and API throughput, a peer extension, the data plane, our stack alone (with a perf profile), other local Lambda emulators; writes bench/report.md
	@scripts/apt-tools perf:linux-perf
	@mkdir -p $(BENCH_DIR)
	@echo "==> [1/5] handlers vs. the bare DynamoDB calls they make"
	$(WITH_ENDPOINT) -- $(CARGO) bench -p books --bench handlers --locked | tee $(BENCH_DIR)/handlers.txt
	@echo "==> [2/5] telemetry pipeline throughput, one core"
	BENCH_JSON=$(BENCH_DIR)/pipeline.json $(EXTENSION_BUILD_ENV) $(CARGO) bench -p books-telemetry --bench pipeline --locked
	@echo "==> [3/5] release binaries for $(HOST_ARCH), as the images hold them; the peer and the floor built the same way"
	$(BENCH_ZIGBUILD) $(EXTENSION_BUILD_ENV) $(CARGO) zigbuild --release --locked --target $(HOST_RUST_TARGET) -p books-telemetry \
	  --config 'profile.release.package.books-telemetry.strip="none"'
	cp $(BENCH_RELEASE_DIR)/books-telemetry $(BENCH_DIR)/books-telemetry.symbols
	+$(MAKE) release-binaries ARCH=$(HOST_ARCH)
	$(BENCH_ZIGBUILD) $(EXTENSION_BUILD_ENV) $(CARGO) zigbuild --release --locked --target $(HOST_RUST_TARGET) -p books-bench-peer
	$(BENCH_ZIGBUILD) $(CARGO) zigbuild --release --locked --target $(HOST_RUST_TARGET) -p books-bench-ping -p books-bench-bare --bin books-bench-ping --bin bare-function
	$(BENCH_ZIGBUILD) $(EXTENSION_BUILD_ENV) $(CARGO) zigbuild --release --locked --target $(HOST_RUST_TARGET) -p books-bench-bare --bin bare-extension
	@echo "==> [4/5] books-bench, books-local and the peers' harness (release), cargo-lambda $(CARGO_LAMBDA_VERSION)"
	$(CARGO) build --release --locked -p books-bench -p books-local
	$(CARGO) build --release --locked --manifest-path bench/peers/Cargo.toml --target-dir $(abspath $(TARGET_DIR))
	@$(PEERS_VENV)/bin/cargo-lambda lambda --version 2>/dev/null | grep -q ' $(CARGO_LAMBDA_VERSION) ' || { \
	  $(PYTHON) -m venv $(PEERS_VENV) && $(PEERS_VENV)/bin/pip install --quiet cargo-lambda==$(CARGO_LAMBDA_VERSION); }
	@echo "==> [5/5] measuring in the local cloud"
	RELEASE_DIR=$(abspath $(BENCH_RELEASE_DIR)) PEER=$(abspath $(BENCH_RELEASE_DIR))/peer-telemetry PING=$(abspath $(BENCH_RELEASE_DIR))/books-bench-ping \
	  BARE_FUNCTION=$(abspath $(BENCH_RELEASE_DIR))/bare-function BARE_EXTENSION=$(abspath $(BENCH_RELEASE_DIR))/bare-extension \
	  EXTENSION_SYMBOLS=$(BENCH_DIR)/books-telemetry.symbols \
	  BENCH_BIN=$(abspath $(TARGET_DIR))/release/books-bench BOOKS_LOCAL=$(abspath $(TARGET_DIR))/release/books-local \
	  PEERS_BIN=$(abspath $(TARGET_DIR))/release/books-bench-peers CARGO_LAMBDA=$(PEERS_VENV)/bin/cargo-lambda \
	  PIPELINE=$(BENCH_DIR)/pipeline.json HANDLERS=$(BENCH_DIR)/handlers.txt BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) \
	  $(WITH_ENDPOINT) -- scripts/bench

# The load generator: Debian's wrk. `make bench` also profiles with perf (Debian's linux-perf;
# the short run in make test does not: perf is a kernel-version-bound tool CI runners may lack).
tools-bench:
	@scripts/apt-tools wrk

# What an environment costs a month and what 10,000 requests/s would take, from the figures the
# last `make bench` measured (bench/cost-figures.json) and the committed price table
# (bench/prices.json). Nothing to build: it reads two files and the environment's tfvars.
RATE ?= 100
READS ?= 90
COST_FIGURES ?= bench/cost-figures.json
.PHONY: cost
cost: check-python ## An environment's monthly bill, itemised, and its capacity at 10,000 requests/s, from make bench's measurements (ENV=dev RATE=100 requests/s READS=90 %)
	@$(PYTHON) scripts/cost.py report --figures $(COST_FIGURES) --env $(ENV) --rate $(RATE) --reads $(READS)

# A short run of the whole of `make bench` into .build/bench-smoke, part of `make test`: keeps the
# benchmark working (its figures mean nothing; 64 connections would only measure two cores
# scaling out). It runs the binaries the image tests and the end-to-end run use (TEST_PROFILE,
# this machine's architecture), driven by the shared debug build's books-bench and books-local.
.PHONY: test-bench test-bench-run
test-bench: venv check-terraform tools-bench local-build $(TF_CLI_CONFIG_FILE) ## A short make bench on the binaries make test builds (keeps the benchmark working)
	+$(MAKE) test-binaries-$(HOST_ARCH)
	+$(MAKE) test-bench-run
test-bench-run:
	@echo "==> a short make bench (keeps it working; figures meaningless)"
	RELEASE_DIR=$(abspath $(call TEST_BIN_DIR,$(HOST_ARCH))) PEER=$(abspath $(TARGET_DIR))/debug/peer-telemetry PING=$(abspath $(TARGET_DIR))/debug/books-bench-ping PROFILE_SECONDS=0 \
	  BARE_FUNCTION=$(abspath $(TARGET_DIR))/debug/bare-function BARE_EXTENSION=$(abspath $(TARGET_DIR))/debug/bare-extension FLOOR_INVOCATIONS=300 FLOOR_PROFILE_INVOCATIONS=0 \
	  BENCH_BIN=$(abspath $(TARGET_DIR))/debug/books-bench BOOKS_LOCAL=$(abspath $(TARGET_DIR))/debug/books-local \
	  COST_REQUESTS=10 COST_BINARIES=$(TEST_PROFILE) COLD_STARTS=2 INVOCATIONS=100 WRK_SECONDS=2 WRK_WARMUP_SECONDS=1 WRK_SETTLE_SECONDS=3 WRK_CONNECTIONS='1 8' DATA_PLANE_SIZES='0 1000' DATA_PLANE_ROUNDS=3 BENCH_OUT=$(abspath $(BUILD))/bench-smoke \
	  BUILD=$(abspath $(BUILD)) LOCAL_CLOUD_NAME=bench-smoke TERRAFORM=$(TERRAFORM) $(WITH_ENDPOINT) -- scripts/bench
	$(VENV_PY) scripts/check_bench.py $(BUILD)/bench-smoke
	+$(MAKE) cost ENV=prod RATE=250 READS=80 COST_FIGURES=$(BUILD)/bench-smoke/cost-figures.json
