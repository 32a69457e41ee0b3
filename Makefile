# Books CQRS on AWS Lambda — every entry point. `make help` lists the public targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON  ?= python3
VENV    ?= .venv
BUILD   ?= .build
CARGO   ?= cargo
VENV_PY := $(VENV)/bin/python
WITH_MOTO := scripts/with-moto

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Parts kept in their own files (Terraform, ...). Included here, before the rules that use
# their variables.
# terraform.mk first: the others name its TF_CLI_CONFIG_FILE as a prerequisite.
-include mk/terraform.mk
-include $(filter-out mk/terraform.mk,$(wildcard mk/*.mk))

.PHONY: help
help: ## List the public targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[1m%-24s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- tools ------------------------------------------------------------------------------------

.PHONY: check-rust check-python
check-rust:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo not found. Install Rust: https://rustup.rs"; exit 1; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || { echo "error: clippy missing. Fix: rustup component add clippy"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || { echo "error: rustfmt missing. Fix: rustup component add rustfmt"; exit 1; }

check-python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Install Python 3.11+ (e.g. apt-get install python3 python3-venv)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "error: Python venv support missing. Fix: apt-get install python3-venv"; exit 1; }

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the pinned Python tools (moto server, scanners)
$(VENV)/.installed: requirements.txt | check-python
	@echo "==> creating $(VENV) with the pinned tools from requirements.txt"
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# --- tests ------------------------------------------------------------------------------------

.PHONY: test test-rust lint
test: test-rust test-scripts lint ## Everything: Rust tests against moto, clippy, rustfmt, Terraform against moto, the images, the local cloud end to end

test-rust: venv check-rust ## Unit and integration tests of the workspace, against a private moto server
	@echo "==> cargo test --workspace (moto server started for the run)"
	$(WITH_MOTO) -- $(CARGO) test --workspace --locked

.PHONY: test-scripts
test-scripts: venv ## Tests of the Python tools (dashboard drift check and renderer) against a moto server
	$(VENV_PY) -m unittest discover -s scripts/tests

lint: check-rust ## cargo fmt --check and clippy with warnings denied
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

.PHONY: fmt
fmt: ## Format the Rust code
	$(CARGO) fmt --all

# --- the local cloud ----------------------------------------------------------------------------

PORT ?= 3000
LOCAL_BINS := books-command books-query books-projector books-telemetry books-local
# Where cargo puts its builds (honours CARGO_TARGET_DIR like cargo does).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: run local-build
run: venv check-rust check-terraform local-build $(TF_CLI_CONFIG_FILE) ## The local cloud: moto + Terraform + books-local on http://127.0.0.1:$(PORT)/v1
	@echo "==> starting the local AWS endpoint (moto)"
	BUILD=$(abspath $(BUILD)) PORT=$(PORT) TERRAFORM=$(TERRAFORM) $(WITH_MOTO) -- scripts/local-cloud

.PHONY: test-local-e2e
test-local-e2e: test-images venv check-rust check-terraform local-build $(TF_CLI_CONFIG_FILE) ## End to end through the local cloud running the unpacked images (Terraform on moto, books-local, the gateway)
	@echo "==> end-to-end tests through the local cloud, functions and extension from the images"
	BUILD=$(abspath $(BUILD)) ROOTFS=$(abspath $(BUILD))/image-rootfs TERRAFORM=$(TERRAFORM) CARGO=$(CARGO) \
	  $(WITH_MOTO) -- scripts/e2e-local

test: test-local-e2e test-bench

local-build: check-rust
	@echo "==> building the functions, the extension and books-local"
	$(CARGO) build --locked $(addprefix --bin ,$(LOCAL_BINS))
	@mkdir -p $(BUILD)/bin
	@cp -f $(TARGET_DIR)/debug/books-local $(BUILD)/bin/books-local
	scripts/stage-rootfs $(TARGET_DIR)/debug $(BUILD)/rootfs $(TARGET_DIR)/debug/books-telemetry

.PHONY: dashboard-preview
dashboard-preview: venv ## Draw the dashboards from what a running local cloud emitted (make run prints the command)
	@test -n "$$AWS_ENDPOINT_URL" || { echo "error: set AWS_ENDPOINT_URL to the local cloud's moto endpoint (make run prints it)"; exit 1; }
	AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-testing} \
	  AWS_REGION=$${AWS_REGION:-us-east-1} $(VENV_PY) scripts/dashboards.py render --log-group-prefix /books/local/ \
	  --out-dir $(BUILD)/dashboards

.PHONY: clean
clean: ## Remove build outputs (keeps .venv)
	$(CARGO) clean
	rm -rf $(BUILD)

