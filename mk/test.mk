# `make test`: the complete gate, as phases that run side by side where two cores allow, each with
# its own log (.build/phases/<phase>.log) and wall time, and a table of them at the end (also
# when a phase fails). Included by the root Makefile; the phases call the same targets a
# developer runs one by one (their `-run` halves, without the prerequisites this graph orders).
#
# Every build is compiled once: one debug build of the workspace (tests, the local cloud, the
# bench driver) and one static build per architecture with TEST_PROFILE (mk/images.mk): both
# architectures' images, and this machine's for the end-to-end and bench smoke runs.

# Phases at once. Every cargo build joins make's jobserver (the `+` recipes), so builds side by
# side share the cores instead of each taking them all; one more job than cores lets a build
# keep going while another phase waits on moto, a download or a single-threaded link.
TEST_JOBS ?= 3
PHASE := scripts/phase run

.PHONY: test test-phases
test: check-platform ## Everything, the gate CI runs: every Rust test against moto, lint, Terraform against moto, the images, the local cloud end to end, the deployment rehearsal, a short bench; prints its phases' wall times
	@scripts/phase reset
	+@status=0; $(MAKE) -j$(TEST_JOBS) test-phases || status=$$?; scripts/phase table; exit $$status

# Listed in the order make should start them when a job slot frees: the long builds first.
test-phases: phase-build-debug phase-venv phase-binaries-host phase-deploy phase-binaries-other phase-tools \
  phase-tf-init phase-terraform-moto phase-clippy phase-rust-tests phase-images phase-e2e \
  phase-fuzz phase-supply-chain phase-consistency phase-soak phase-bench-smoke phase-dev-loop phase-terraform-account phase-terraform-static \
  phase-python-tests phase-workflows phase-fmt

# --- set-up: installs on a fresh machine, seconds afterwards --------------------------------------
.PHONY: phase-venv phase-tools phase-rust-targets phase-tf-init
phase-venv: check-python
	@$(PHASE) venv -- $(MAKE) venv
phase-tools:
	@$(PHASE) tools -- scripts/apt-tools $(IMAGE_TOOLS) wrk
phase-rust-targets: check-rust
	@$(PHASE) rust-targets -- $(MAKE) rust-targets
# Once, before the phases that run Terraform side by side (init writes the module's lock file).
phase-tf-init: check-terraform $(TF_CLI_CONFIG_FILE)
	@$(PHASE) terraform-init -- $(MAKE) tf-init

# --- builds -----------------------------------------------------------------------------------------
.PHONY: phase-build-debug phase-binaries-host phase-binaries-other phase-clippy phase-fmt
phase-build-debug: check-rust
	+@$(PHASE) build-debug -- $(MAKE) build-debug-run
phase-binaries-host: phase-venv phase-rust-targets
	+@$(PHASE) binaries-$(HOST_ARCH) -- $(MAKE) test-binaries-$(HOST_ARCH)
phase-binaries-other: phase-venv phase-rust-targets
	+@$(PHASE) binaries-$(OTHER_ARCH) -- $(MAKE) test-binaries-$(OTHER_ARCH)
# After the debug build and before the phases that call cargo test: clippy locks the same build
# folder, and a test phase would wait for it with the local cloud running.
phase-clippy: phase-build-debug
	+@$(PHASE) clippy -- $(MAKE) clippy
phase-fmt: check-rust
	@$(PHASE) fmt -- $(MAKE) fmt-check

# --- tests ------------------------------------------------------------------------------------------
.PHONY: phase-fuzz phase-supply-chain phase-consistency phase-soak phase-rust-tests phase-python-tests phase-terraform-static phase-terraform-moto phase-images \
  phase-e2e phase-bench-smoke phase-deploy phase-dev-loop phase-terraform-account phase-workflows
phase-rust-tests: phase-build-debug phase-venv | phase-clippy
	+@$(PHASE) rust-tests -- $(MAKE) test-rust-run
phase-python-tests: phase-venv phase-build-debug phase-tools
	@$(PHASE) python-tests -- $(MAKE) test-scripts
phase-terraform-static: phase-venv phase-tf-init
	@$(PHASE) terraform-static -- $(MAKE) tf-static-run
phase-terraform-moto: phase-venv phase-tf-init phase-build-debug
	@$(PHASE) terraform-moto -- $(MAKE) tf-local-run
phase-images: phase-binaries-host phase-binaries-other phase-tools phase-venv
	@$(PHASE) images -- $(MAKE) test-images-run
phase-e2e: phase-images phase-build-debug phase-tf-init | phase-clippy
	+@$(PHASE) e2e -- $(MAKE) test-local-e2e-run
phase-terraform-account: phase-venv phase-tf-init phase-build-debug
	@$(PHASE) terraform-account -- $(MAKE) tf-account-run
phase-workflows: phase-venv
	@$(PHASE) workflows -- $(MAKE) lint-workflows
# The longest phase (a quarter hour, mostly waiting on Terraform and the endpoint), so it starts
# as soon as this machine's binaries are built. It runs no cargo command on the debug build (the
# delivery's zigbuild is of the binaries' own target folder), so clippy need not come first.
phase-deploy: phase-binaries-host phase-build-debug phase-tools phase-venv phase-tf-init
	+@$(PHASE) deploy-rehearsal -- $(MAKE) test-deploy-run
# It edits a source file of the functions for a minute or two (and puts it back): after every
# phase that compiles the functions into something a later check reads (the tests, clippy, the
# images' binaries, the rehearsal's deliveries, which also check that the checkout is unchanged).
# A cargo command of another phase meanwhile only compiles more.
phase-dev-loop: phase-build-debug phase-venv phase-tf-init | phase-rust-tests phase-clippy phase-binaries-host phase-binaries-other phase-consistency phase-soak phase-deploy
	+@$(PHASE) dev-loop -- $(MAKE) test-dev-loop-run
# The reliability phases (a local cloud each, and fuzz's own instrumented build) start once the
# images are built: a job slot they took earlier delayed the images and the end-to-end run, the
# longest chain. The consistency checker and the soak run use the staged debug binaries, before the
# developer loop restages them.
phase-consistency: phase-build-debug phase-venv phase-tf-init | phase-clippy phase-images
	+@$(PHASE) consistency -- $(MAKE) test-consistency-run
phase-soak: phase-build-debug phase-venv phase-tf-init | phase-clippy phase-images
	+@$(PHASE) soak -- $(MAKE) test-soak-run
phase-fuzz: check-rust | phase-clippy phase-images
	+@$(PHASE) fuzz -- $(MAKE) test-fuzz
# cargo deny's install is a build of its own: after the images too.
phase-supply-chain: check-rust | phase-clippy phase-images
	+@$(PHASE) supply-chain -- $(MAKE) deny audit-selftest
phase-bench-smoke: phase-build-debug phase-binaries-host phase-tools phase-tf-init | phase-clippy
	+@$(PHASE) bench-smoke -- $(MAKE) test-bench-run
