# Reliability under faults and time: the consistency checker of the CQRS pair (scripts/consistency.py),
# the soak run (scripts/soak.py)
# and `make reliability`, the report that gathers them with the fuzzing figures. Included by the
# root Makefile.

# The long run: 20 minutes over 160 ISBNs (ten times the short form's 2 minutes over 16, which
# the report showed too narrow); make test's short form keeps 16 ISBNs, so creates collide.
CONSISTENCY_SECONDS ?= 1200
CONSISTENCY_CLIENTS ?= 8
CONSISTENCY_ISBNS ?= 160

.PHONY: consistency test-consistency test-consistency-run
consistency: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## Jepsen-style history of concurrent clients under DynamoDB errors, lost answers, timeouts, a failing projector, reordered stream reads and killed environments, checked, each book's writes for linearizability too (CONSISTENCY_SECONDS, default 1200; CONSISTENCY_ISBNS, default 160)
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/consistency.py --seconds $(CONSISTENCY_SECONDS) --clients $(CONSISTENCY_CLIENTS) --isbns $(CONSISTENCY_ISBNS) $(if $(SEED),--seed $(SEED))

# The short form in make test: the same faults and checks over 30 seconds of history.
test-consistency: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## A short consistency check (make test runs it)
	+$(MAKE) test-consistency-run
test-consistency-run: check-terraform local-build-run
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/consistency.py --seconds 30 --clients 6

SOAK_SECONDS ?= 600
SOAK_RATE ?= 20

.PHONY: soak test-soak test-soak-run
soak: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## Steady traffic through the local cloud for SOAK_SECONDS (default 600): memory and descriptors of every process, telemetry shipped against produced; then the endpoint aged two weeks
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/soak.py --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE)
	BUILD=$(abspath $(BUILD)) $(VENV_PY) scripts/ageing.py --days 14 --every-s $(AGEING_EVERY_S)

# The local endpoint after two weeks of a request per route every AGEING_EVERY_S seconds
# (scripts/ageing.py): calls, idle CPU and restart against a fresh one. make test: every 10 min.
AGEING_EVERY_S ?= 60

# The short form in make test: a minute, sampled every 2 s (growth bounds hold the same way), and
# two weeks of ageing at a request per route every ten minutes (about a minute).
test-soak: venv check-terraform local-build $(TF_CLI_CONFIG_FILE) ## A one-minute soak run (make test runs it)
	+$(MAKE) test-soak-run
test-soak-run: check-terraform local-build-run
	BUILD=$(abspath $(BUILD)) TERRAFORM=$(TERRAFORM) $(VENV_PY) scripts/soak.py --seconds 60 --rate 10 --sample-every 2
	BUILD=$(abspath $(BUILD)) $(VENV_PY) scripts/ageing.py --days 14 --every-s 600

# `make reliability`: the three for real, one after the other (none disturbs another's figures),
# then reliability/report.md and its plot. The report is written whatever failed, and says so.
RELIABILITY_FUZZ_SECONDS ?= 60

.PHONY: reliability
reliability: venv fuzz-tools check-terraform local-build $(TF_CLI_CONFIG_FILE) ## Fuzzing, the consistency checker and a soak run for real, into reliability/report.md (about 45 minutes)
	@status=0; \
	$(MAKE) fuzz FUZZ_SECONDS=$(RELIABILITY_FUZZ_SECONDS) || status=1; \
	$(MAKE) consistency || status=1; \
	$(MAKE) soak || status=1; \
	BUILD=$(abspath $(BUILD)) $(VENV_PY) scripts/reliability_report.py || status=1; \
	exit $$status
