# Images, delivery and provisioning: static release binaries cross-built with cargo-zigbuild,
# the two images from docker/Dockerfile, pushes with recorded digests, Terraform apply/destroy.
# Included by the root Makefile (uses its BUILD, VENV, VENV_PY, CARGO, TARGET_DIR, TERRAFORM).

ARCH ?= arm64
RUST_TARGET_arm64  := aarch64-unknown-linux-musl
RUST_TARGET_x86_64 := x86_64-unknown-linux-musl
RUST_TARGET := $(or $(RUST_TARGET_$(ARCH)),$(error ARCH must be arm64 or x86_64))
FUNCTION_BINS := books-command books-query books-projector
# The cargo profile of the binaries: release is what ships; make test builds image-check (see
# Cargo.toml and TEST_PROFILE below).
PROFILE ?= release
# How the extension is built (on its own): release, optimised for size (for every profile, as
# `make bench` measures its pipeline with the bench profile).
EXTENSION_BUILD_ENV := CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_BENCH_OPT_LEVEL=s
RELEASE_DIR = $(TARGET_DIR)/$(RUST_TARGET)/$(PROFILE)
# The tag of `make images` (the delivery tags by what it built from: scripts/aws-lambda).
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
# The images have no base image (docker/Dockerfile says why); BASE_IMAGE builds them on one.
BASE_IMAGE ?=
CONTAINER_TOOL ?=
# Where a push to REGISTRY (make test-images) writes the pushed digests; the AWS path keeps its
# delivery record per environment (.deploy/<env>/delivery.json).
DIGESTS ?= $(abspath $(BUILD))/delivery/images.json

IMAGE_ENV = BIN_DIR=$(abspath $(RELEASE_DIR)) ARCH=$(ARCH) TAG=$(IMAGE_TAG) BASE_IMAGE=$(BASE_IMAGE) \
	CONTAINER_TOOL=$(CONTAINER_TOOL) DIGESTS=$(DIGESTS) VENV_PY=$(abspath $(VENV_PY)) TERRAFORM=$(TERRAFORM)

.PHONY: release-binaries release-binaries-run rust-targets images hadolint aws-lambda-delivery aws-lambda-provision aws-lambda-destroy

# The musl targets of both architectures (rustup), for the static binaries.
rust-targets: check-rust
	@for target in $(RUST_TARGET_arm64) $(RUST_TARGET_x86_64); do \
	  rustup target list --installed 2>/dev/null | grep -qx $$target || rustup target add $$target; done

release-binaries: venv rust-targets ## Static release binaries for ARCH (arm64|x86_64), cross-linked by cargo-zigbuild (PROFILE=release)
	+$(MAKE) release-binaries-run
# In release, the extension is built on its own: with the functions, cargo would unify their
# features into it (env-filter's regex, the functions' tokio and hyper features), what it does
# not use; and optimised for size: it is loaded into every cold start, and its pipeline loses
# < 10% (make bench measures it so). Other profiles build all four binaries at once.
ZIGBUILD = PATH="$(abspath $(VENV))/bin:$$PATH" $(CARGO) zigbuild --profile $(PROFILE) --locked --target $(RUST_TARGET)
EXTENSION_ALONE = $(filter release,$(PROFILE))
release-binaries-run:
	@echo "==> cargo zigbuild --profile $(PROFILE) --target $(RUST_TARGET)"
	+$(ZIGBUILD) $(addprefix -p ,$(FUNCTION_BINS) $(if $(EXTENSION_ALONE),,books-telemetry))
	+$(if $(EXTENSION_ALONE),$(EXTENSION_BUILD_ENV) $(ZIGBUILD) -p books-telemetry,@true)

hadolint: venv ## Lint docker/Dockerfile (hadolint, pinned in requirements.txt)
	$(VENV)/bin/hadolint docker/Dockerfile

images: release-binaries hadolint ## Build both images (CONTAINER_TOOL=docker|podman|buildah, ARCH)
	$(IMAGE_ENV) scripts/aws-lambda build

# --- the AWS path: ENV, region, state, plan before apply (scripts/deploy says how) -------------
ENV ?= dev
AWS_VAULT ?=
BACKEND ?=
ACCOUNT_BACKEND ?=
GITHUB_OIDC_PROVIDER_ARN ?=
AUTO_APPROVE ?=
DESTROY_DATA ?=
DEPLOY_DIR ?= $(CURDIR)/.deploy
ECR_STANDIN ?=
FROM ?=
FROM_RECORD ?=
# CI: the id under which a saved plan is kept in the state bucket between its plan and apply jobs.
PLAN_ID ?=
# Whether ARCH was chosen (on the command line or in the environment) rather than defaulted:
# provisioning then refuses images of another architecture.
ARCH_EXPLICIT := $(filter command line environment environment override,$(origin ARCH))
AWS_ENV = $(IMAGE_ENV) ENV=$(ENV) AWS_VAULT=$(AWS_VAULT) BACKEND=$(BACKEND) ACCOUNT_BACKEND=$(ACCOUNT_BACKEND) \
	GITHUB_OIDC_PROVIDER_ARN=$(GITHUB_OIDC_PROVIDER_ARN) AUTO_APPROVE=$(AUTO_APPROVE) \
	DESTROY_DATA=$(DESTROY_DATA) DEPLOY_DIR=$(DEPLOY_DIR) ECR_STANDIN=$(ECR_STANDIN) FROM=$(FROM) FROM_RECORD=$(FROM_RECORD) \
	ARCH_EXPLICIT=$(ARCH_EXPLICIT) REGISTRY=$(REGISTRY) PLAN_ID=$(PLAN_ID)
AWS_LAMBDA = $(AWS_ENV) scripts/aws-lambda

.PHONY: aws-lambda-rollback aws-lambda-logs aws-lambda-provenance aws-lambda-promote aws-lambda-plan aws-lambda-outputs aws-lambda-api-key aws-lambda-verify aws-lambda-replay aws-lambda-rebuild-view aws-account aws-state-bucket aws-ci-bootstrap
aws-lambda-delivery: venv $(TF_CLI_CONFIG_FILE) ## Build and push both images to ENV's ECR repositories (ARCH, AWS_REGION, AWS_VAULT); record what was delivered
	$(AWS_LAMBDA) preflight
	+$(MAKE) --no-print-directory release-binaries hadolint
	$(AWS_LAMBDA) delivery

# `make aws-lambda-delivery aws-lambda-plan aws-lambda-provision` runs them in that order, even
# under make -j.
aws-lambda-plan: | $(filter aws-lambda-delivery aws-lambda-promote,$(MAKECMDGOALS))
aws-lambda-provision: | $(filter aws-lambda-delivery aws-lambda-promote aws-lambda-plan,$(MAKECMDGOALS))
aws-lambda-promote: venv $(TF_CLI_CONFIG_FILE) ## Give ENV the images FROM=<env> runs (FROM_RECORD=<delivery.json> in CI): copied by digest, never rebuilt
	$(AWS_LAMBDA) promote


aws-lambda-plan: venv $(TF_CLI_CONFIG_FILE) ## Save a plan of ENV with its delivered images and print what it changes
	$(AWS_LAMBDA) plan

aws-lambda-provision: venv $(TF_CLI_CONFIG_FILE) ## Apply ENV's saved plan (or plan and ask; AUTO_APPROVE=1 for automation), release the new versions (at once or canary: RELEASE, CANARY_PERCENT, CANARY_MINUTES); prints the URL
	$(AWS_LAMBDA) provision

aws-lambda-rollback: venv $(TF_CLI_CONFIG_FILE) ## Move ENV's functions back to the versions they ran before the last release, in seconds (no build, no plan)
	$(AWS_LAMBDA) rollback

aws-lambda-outputs: venv $(TF_CLI_CONFIG_FILE) ## ENV's URL and how to read its API key
	@$(AWS_LAMBDA) outputs

aws-lambda-api-key: venv $(TF_CLI_CONFIG_FILE) ## ENV's API key, alone (CLIENT=<name>: that client's newest key); curl -H "x-api-key: $(make -s aws-lambda-api-key)"
	@CLIENT=$(CLIENT) $(AWS_LAMBDA) api-key

# The check is books-local's (`books-local verify`): built here unless BOOKS_LOCAL names one.
aws-lambda-verify: venv $(if $(BOOKS_LOCAL),,build-debug) $(TF_CLI_CONFIG_FILE) ## After provisioning: a little traffic through ENV's API with its key, then its logs, metrics and alarms checked in CloudWatch; a short report
	BOOKS_LOCAL=$(or $(BOOKS_LOCAL),$(abspath $(TARGET_DIR))/debug/books-local) $(AWS_LAMBDA) verify

# A function's lines from CloudWatch Logs; ENV=local reads the local cloud make run serves.
# FUNCTION only when the user gave it (the Makefile's default is make invoke's): all without.
# FILTER as typed: a JSON pattern's `$.field` is not a make variable.
LOGS_FUNCTION = $(if $(filter command line environment,$(origin FUNCTION)),$(FUNCTION))
aws-lambda-logs: venv $(TF_CLI_CONFIG_FILE) ## ENV's function lines, readable: FUNCTION=command|query|projector|api (all without), SINCE=10m, FILTER=<CloudWatch pattern>, FOLLOW=1, JSON=1; ENV=local: make run's
	@FUNCTION=$(LOGS_FUNCTION) SINCE=$(SINCE) FILTER='$(subst ','\'',$(value FILTER))' FOLLOW=$(FOLLOW) JSON=$(JSON) \
	  LOCAL_READY=$(or $(LOCAL_READY),$(abspath $(BUILD))/local.ready.json) LOCAL_TFSTATE=$(or $(LOCAL_TFSTATE),$(LOCAL_DATA)/terraform.tfstate) $(AWS_LAMBDA) logs

# The repairs are books-repair's (functions/repair), run with the caller's own credentials.
aws-lambda-replay: venv $(if $(BOOKS_REPAIR),,build-debug) $(TF_CLI_CONFIG_FILE) ## Apply again the batches ENV's projector gave up on (its failure queue); what cannot be replayed stays queued, named
	BOOKS_REPAIR=$(or $(BOOKS_REPAIR),$(abspath $(TARGET_DIR))/debug/books-repair) $(AWS_LAMBDA) replay

aws-lambda-rebuild-view: venv $(if $(BOOKS_REPAIR),,build-debug) $(TF_CLI_CONFIG_FILE) ## Make ENV's read model show its write model again, while the API and the projector go on
	BOOKS_REPAIR=$(or $(BOOKS_REPAIR),$(abspath $(TARGET_DIR))/debug/books-repair) $(AWS_LAMBDA) rebuild-view

aws-lambda-destroy: venv $(TF_CLI_CONFIG_FILE) ## Show what goes, ask, destroy ENV entirely (DESTROY_DATA=1 to delete protected tables and images too)
	$(AWS_LAMBDA) destroy

aws-account: venv $(TF_CLI_CONFIG_FILE) ## The region's account-wide settings (API Gateway logging role); provisioning runs it when missing
	$(AWS_LAMBDA) account

aws-ci-bootstrap: venv $(TF_CLI_CONFIG_FILE) ## Once per account and region: GitHub OIDC, a plan and a deploy role per environment for GITHUB_REPOSITORY=<owner>/<name>, the state bucket
	GITHUB_REPOSITORY=$(GITHUB_REPOSITORY) $(AWS_LAMBDA) ci-bootstrap

# rollback.yml, before it downloads a run's delivery record: whose run it is, asked of GitHub.
aws-lambda-provenance: venv ## RUN_ID=<id> is a successful deliver run on main of GITHUB_REPOSITORY (GITHUB_TOKEN to read it)
	RUN_ID=$(RUN_ID) GITHUB_REPOSITORY=$(GITHUB_REPOSITORY) $(AWS_LAMBDA) provenance

aws-state-bucket: venv $(TF_CLI_CONFIG_FILE) ## The region's S3 bucket for Terraform state (BACKEND=s3), versioned, encrypted, locked per state
	$(AWS_LAMBDA) state-bucket

# The rehearsal of the AWS path (scripts/rehearsal): the README's commands as CI runs them, against
# moto and a registry standing in for ECR's (scripts/ecr_standin.py), the account stack and two
# environments in eu-west-1, the provisioned images run by books-local. make test's binaries
# (TEST_PROFILE) for this machine's architecture.
.PHONY: test-deploy test-deploy-run
test-deploy: tools-images venv rust-targets build-debug $(TF_CLI_CONFIG_FILE) ## Rehearse the deployment: the README's aws-lambda-* commands as CI runs them, against moto and an ECR-like registry
	+$(MAKE) test-binaries-$(HOST_ARCH)
	+$(MAKE) test-deploy-run
# The endpoint's Lambda checks every image a function names against its ECR (what the registry
# standing in for ECR records there), as Lambda does; the endpoint records every call with its
# caller (BOOKS_RECORD_CALLS), which the rehearsal checks against CI's roles' policies.
test-deploy-run:
	@rm -f $(abspath $(BUILD))/rehearsal-calls.jsonl
	MOTO_LAMBDA_STUB_ECR=false BOOKS_RECORD_CALLS=$(abspath $(BUILD))/rehearsal-calls.jsonl $(WITH_ENDPOINT) --log $(abspath $(BUILD))/rehearsal-moto.log -- env PROFILE=$(TEST_PROFILE) ARCH=$(HOST_ARCH) \
	  BOOKS_LOCAL=$(abspath $(TARGET_DIR))/debug/books-local BUILD=$(abspath $(BUILD)) scripts/rehearsal

# The tools the image tests need: Debian's buildah, skopeo, umoci and docker-registry.
IMAGE_TOOLS := buildah skopeo umoci docker-registry
.PHONY: tools-images
tools-images:
	@scripts/apt-tools $(IMAGE_TOOLS)

# Without Docker or AWS: both images built by buildah on a scratch base, for arm64 (what ships)
# and x86_64, pushed through the delivery target to a registry on 127.0.0.1, pulled back by
# digest, unpacked and inspected; the root file systems for this machine's architecture are
# what test-local-e2e runs.
#
# The binaries make test builds for the images, the end-to-end run and the bench smoke run:
# image-check, release without its optimisations (static, stripped, panic = unwind alike; see
# Cargo.toml). The release profile's fat LTO was 14 of make test's 40 CPU-minutes. To test
# exactly what ships: make test TEST_PROFILE=release (about twice as long).
TEST_PROFILE ?= image-check
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
OTHER_ARCH := $(if $(filter arm64,$(HOST_ARCH)),x86_64,arm64)
HOST_RUST_TARGET = $(RUST_TARGET_$(HOST_ARCH))
HOST_RELEASE_DIR = $(TARGET_DIR)/$(HOST_RUST_TARGET)/release
TEST_BIN_DIR = $(TARGET_DIR)/$(RUST_TARGET_$(1))/$(TEST_PROFILE)

.PHONY: test-images test-images-run test-binaries-arm64 test-binaries-x86_64
test-images: tools-images venv rust-targets ## Build, push (local registry), pull back and inspect both images for both architectures; no Docker, no AWS
	+$(MAKE) test-binaries-$(HOST_ARCH)
	+$(MAKE) test-binaries-$(OTHER_ARCH)
	+$(MAKE) test-images-run
test-binaries-arm64 test-binaries-x86_64:
	+$(MAKE) release-binaries-run ARCH=$(@:test-binaries-%=%) PROFILE=$(TEST_PROFILE)
test-images-run:
	$(VENV)/bin/hadolint docker/Dockerfile
	HOST_ARCH=$(HOST_ARCH) BUILD=$(abspath $(BUILD)) TAG=$(IMAGE_TAG) \
	  BIN_DIR_arm64=$(abspath $(call TEST_BIN_DIR,arm64)) BIN_DIR_x86_64=$(abspath $(call TEST_BIN_DIR,x86_64)) \
	  scripts/test-images
