# Reliability under faults and time: the consistency checker of the CQRS pair (scripts/consistency.py)
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
