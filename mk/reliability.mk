# Reliability under faults and time: the consistency checker of the CQRS pair (scripts/consistency.py),
# the soak run (scripts/soak.py)
# and the report that gathers it with the fuzzing figures. Included by the root Makefile.

CONSISTENCY_SECONDS ?= 120
CONSISTENCY_CLIENTS ?= 8

.PHONY: consistency test-consistency test-consistency-run
consistency: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## Jepsen-style history of concurrent clients under DynamoDB faults, lost answers, a failing projector and killed environments, checked (CONSISTENCY_SECONDS, default 120)
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/consistency.py --seconds $(CONSISTENCY_SECONDS) --clients $(CONSISTENCY_CLIENTS) $(if $(SEED),--seed $(SEED))

# The short form in make test: the same faults and checks over 30 seconds of history.
test-consistency: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## A short consistency check (make test runs it)
	+$(MAKE) test-consistency-run
test-consistency-run: check-terraform local-build-run
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/consistency.py --seconds 30 --clients 6

SOAK_SECONDS ?= 600
SOAK_RATE ?= 20

.PHONY: soak test-soak test-soak-run
soak: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## Steady traffic through the local cloud for SOAK_SECONDS (default 600): memory and descriptors of every process, telemetry shipped against produced
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/soak.py --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE)

# The short form in make test: a minute, sampled every 2 s (growth bounds hold the same way).
test-soak: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## A one-minute soak run (make test runs it)
	+$(MAKE) test-soak-run
test-soak-run: check-terraform local-build-run
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/soak.py --seconds 60 --rate 10 --sample-every 2
