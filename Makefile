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
# checkov's own venv, inside it (requirements-checkov.txt says why).
CHECKOV_VENV := $(VENV)/checkov
# A command against a local AWS endpoint of its own, stopped when it ends (`books-local endpoint`
# of the debug build: every target that uses it has build-debug before it).
WITH_ENDPOINT = $(abspath $(TARGET_DIR))/debug/books-local endpoint

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Parts kept in their own files (Terraform, ...). Included here, before the rules that use
# their variables.
# terraform.mk first: the others name its TF_CLI_CONFIG_FILE as a prerequisite.
-include mk/terraform.mk
-include $(filter-out mk/terraform.mk,$(wildcard mk/*.mk))

.PHONY: help
# The targets a user needs, by what they are doing; every other documented target follows.
HELP_GROUPS := Run locally=run,watch,invoke,logs,reset,check;Test=test,bench,fuzz,reliability;Deploy to AWS=aws-lambda-delivery,aws-lambda-plan,aws-lambda-provision,aws-lambda-promote,aws-lambda-verify,aws-lambda-destroy;Operate=aws-lambda-outputs,aws-lambda-api-key,aws-lambda-rollback,aws-lambda-logs,aws-lambda-replay,aws-lambda-rebuild-view,dashboard-preview,cost
help: ## List the targets: the ones a user needs first, by task, then the rest
	@awk -v groups='$(HELP_GROUPS)' 'BEGIN {FS = ":.*## "} \
	  /^[a-zA-Z0-9_.-]+:.*## / {if (!($$1 in doc)) order[++n] = $$1; doc[$$1] = $$2} \
	  END {g = split(groups, parts, ";"); \
	    for (i = 1; i <= g; i++) {split(parts[i], kv, "="); printf "\n\033[1m%s\033[0m\n", kv[1]; \
	      m = split(kv[2], names, ","); \
	      for (j = 1; j <= m; j++) if (names[j] in doc) {printf "  %-26s %s\n", names[j], doc[names[j]]; shown[names[j]] = 1}} \
	    printf "\n\033[1mEverything else\033[0m (the phases of make test, tools, internals)\n"; \
	    for (i = 1; i <= n; i++) if (!(order[i] in shown)) printf "  %-26s %s\n", order[i], doc[order[i]]}' $(MAKEFILE_LIST)

# --- tools ------------------------------------------------------------------------------------

.PHONY: check-platform check-rust check-python
# make run and make test run the functions as Linux processes (/proc, pidfd, SIGSTOP) and their
# scripts use bash 4 (associative arrays; macOS ships bash 3.2). The AWS targets run on macOS too.
check-platform:
	@[ "$$(uname -s)" = Linux ] || { echo "error: make run and make test need Linux (this is $$(uname -s)); on macOS or Windows use a Linux VM or container (the aws-lambda-* targets run on macOS as they are)"; exit 1; }
	@[ "$${BASH_VERSINFO[0]}" -ge 4 ] || { echo "error: bash $$BASH_VERSION is older than 4. Fix: install bash 4+ (apt-get install bash)"; exit 1; }

check-rust:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo not found. Install Rust: https://rustup.rs"; exit 1; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || { echo "error: clippy missing. Fix: rustup component add clippy"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || { echo "error: rustfmt missing. Fix: rustup component add rustfmt"; exit 1; }

check-python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Install Python 3.11+ (e.g. apt-get install python3 python3-venv)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $$($(PYTHON) --version) is older than 3.11. Install Python 3.11+ (or PYTHON=/path/to/python3.11)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "error: Python venv support missing. Fix: apt-get install python3-venv"; exit 1; }

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the pinned Python tools (moto server, scanners)
$(VENV)/.installed: requirements.txt | check-python
	@echo "==> creating $(VENV) with the pinned tools from requirements.txt"
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# checkov apart: it pins an old boto3 (requirements-checkov.txt says why).
$(CHECKOV_VENV)/.installed: requirements-checkov.txt | check-python
	@echo "==> creating $(CHECKOV_VENV) with checkov from requirements-checkov.txt"
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

# --- builds and checks shared by make run, make check and make test ------------------------------

# One debug build of the whole workspace, for the local cloud and every test: every cargo command
# here selects all packages with their tests, so cargo unifies features the same way each time
# and nothing is compiled twice (a subset of packages, or a feature of one crate, would rebuild
# the AWS SDK clients with other features).
DEBUG_BUILD := $(CARGO) build --workspace --lib --bins --tests --examples --locked

.PHONY: build-debug build-debug-run
build-debug: check-rust ## The debug build of the whole workspace that make run, check and test share
	+$(MAKE) build-debug-run
build-debug-run:
	+$(DEBUG_BUILD)

.PHONY: test-rust test-rust-run
test-rust: venv build-debug ## Unit and integration tests of the workspace, against a private moto server
	+$(MAKE) test-rust-run
test-rust-run:
	@echo "==> cargo test --workspace (moto server started for the run)"
	+$(WITH_ENDPOINT) -- $(CARGO) test --workspace --locked

.PHONY: test-scripts
test-scripts: venv build-debug tools-images ## Tests of the Python tools (the AWS path's decisions, the ECR stand-in, the local endpoint's behaviours, dashboards, bench report)
	$(VENV_PY) -m unittest discover -s scripts/tests

.PHONY: lint fmt-check clippy
lint: fmt-check clippy ## cargo fmt --check and clippy with warnings denied
fmt-check: check-rust
	$(CARGO) fmt --all --check
clippy: check-rust
	+$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

.PHONY: check
check: fmt-check clippy ## The inner loop (a few minutes): rustfmt, clippy and the unit tests; make test is the gate
	+$(CARGO) test --workspace --locked --lib --bins --examples

.PHONY: fmt
fmt: ## Format the Rust code
	$(CARGO) fmt --all

# --- the local cloud ----------------------------------------------------------------------------

PORT ?= 3000
# The local cloud's data: the local endpoint's state (saved when it stops) and the Terraform
# state that created it. `make run` resumes from them; FRESH=1 (or `make reset`) starts empty.
LOCAL_DATA := $(abspath $(BUILD))/local-data
# Where cargo puts its builds (honours CARGO_TARGET_DIR like cargo does).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: run local-build local-build-run
run: check-platform venv check-rust check-terraform local-build $(TF_CLI_CONFIG_FILE) ## The local cloud on http://127.0.0.1:3000/v1, its data kept across runs (PORT=…, FRESH=1 starts empty)
	@if [ -n "$(FRESH)" ]; then echo "==> FRESH=1: forgetting the local data in $(LOCAL_DATA)"; rm -rf $(LOCAL_DATA); fi
	$(BUILD)/bin/books-local up --build $(BUILD) --port $(PORT) --terraform $(TERRAFORM) \
	  --state $(LOCAL_DATA)/endpoint.state --endpoint-log $(LOCAL_DATA)/endpoint.log \
	  --tfstate $(LOCAL_DATA)/terraform.tfstate $(if $(WATCH),--watch)

.PHONY: watch
watch: ## make run in watch mode: a source change rebuilds, and the next invocations run the new code (data kept)
	+$(MAKE) run WATCH=1

.PHONY: reset
reset: ## Forget the local cloud's data (books, logs, metrics, alarms): the next make run starts empty
	rm -rf $(LOCAL_DATA)

FUNCTION ?= query
EVENT ?= events/query-list-books.json
.PHONY: invoke
invoke: local-build ## Invoke one function once with an event, beside the running `make run` (FUNCTION=query EVENT=events/…)
	$(BUILD)/bin/books-local invoke $(FUNCTION) --event $(EVENT) --ready-file $(BUILD)/local.ready.json

.PHONY: logs
logs: ## The local cloud's function lines, as aws-lambda-logs reads an environment's (FUNCTION, SINCE, FILTER, FOLLOW=1, JSON=1)
	+$(MAKE) aws-lambda-logs ENV=local

.PHONY: test-local-e2e test-local-e2e-run
test-local-e2e: test-images venv local-build $(TF_CLI_CONFIG_FILE) ## End to end through the local cloud running the unpacked images (Terraform on moto, books-local, the gateway)
	+$(MAKE) test-local-e2e-run
test-local-e2e-run: check-terraform
	@echo "==> end-to-end tests through the local cloud, functions and extension from the images"
	+BUILD=$(abspath $(BUILD)) ROOTFS=$(abspath $(BUILD))/image-rootfs TERRAFORM=$(TERRAFORM) CARGO=$(CARGO) \
	  BOOKS_LOCAL=$(abspath $(TARGET_DIR))/debug/books-local LOCAL_CLOUD_NAME=e2e scripts/e2e-local

# The developer loop (scripts/dev_loop.py): watch mode rebuilds after a source change, and the
# local data survives restarts without anything delivered or counted twice. It edits a source
# file for a while (and puts it back): make test runs it after the phases that build from it.
.PHONY: test-dev-loop test-dev-loop-run
test-dev-loop: venv local-build $(TF_CLI_CONFIG_FILE) ## The developer loop end to end: make watch picks up a change, make run resumes its data
	+$(MAKE) test-dev-loop-run
test-dev-loop-run: check-terraform local-build-run
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/dev_loop.py

# The binaries of the local cloud: the shared debug build, laid out as the images hold them.
local-build: build-debug
	+$(MAKE) local-build-run
local-build-run:
	@mkdir -p $(BUILD)/bin
	@cp -f $(TARGET_DIR)/debug/books-local $(BUILD)/bin/books-local
	@cp -f $(TARGET_DIR)/debug/books-linearizability $(BUILD)/bin/books-linearizability
	scripts/stage-rootfs $(TARGET_DIR)/debug $(BUILD)/rootfs $(TARGET_DIR)/debug/books-telemetry

# The GitHub Actions workflows: actionlint (pinned in requirements.txt), then what it cannot know
# (the make targets they call exist, pinning, permissions, environments: scripts/check_workflows.py).
.PHONY: lint-workflows
lint-workflows: venv ## Lint .github/workflows: actionlint, and the project's own structural checks
	$(VENV)/bin/actionlint
	$(VENV_PY) scripts/check_workflows.py

# The architecture picture from its source (Graphviz); the SVG records the source's SHA-256,
# which make test compares (scripts/tests/test_docs.py), so an edit not drawn fails.
.PHONY: architecture
architecture: ## Draw docs/architecture.svg from docs/architecture.dot (Graphviz's dot, installed with apt-get when missing)
	@scripts/apt-tools dot:graphviz
	dot -Tsvg docs/architecture.dot | sed "1a <!-- drawn from docs/architecture.dot sha256:$$(sha256sum docs/architecture.dot | cut -d' ' -f1) -->" > docs/architecture.svg.tmp
	mv docs/architecture.svg.tmp docs/architecture.svg

.PHONY: dashboard-preview
dashboard-preview: venv ## Draw the dashboards from GetMetricData of a running local cloud (make run prints the command)
	@test -n "$$AWS_ENDPOINT_URL" || { echo "error: set AWS_ENDPOINT_URL to the local cloud's moto endpoint (make run prints it)"; exit 1; }
	AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-testing} \
	  AWS_REGION=$${AWS_REGION:-us-east-1} $(VENV_PY) scripts/dashboards.py render --out-dir $(BUILD)/dashboards

.PHONY: clean
clean: ## Remove build outputs (keeps .venv)
	$(CARGO) clean
	rm -rf $(BUILD)

