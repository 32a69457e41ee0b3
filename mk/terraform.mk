# Terraform: validation, scanning, and a real apply / re-plan / check / destroy against moto.
# Included by the root Makefile (uses its BUILD, VENV, VENV_PY and WITH_ENDPOINT).

TERRAFORM ?= terraform
TF_DIR    := terraform
TF_BUILD  := $(abspath $(BUILD))/terraform

# Where a machine may keep a filesystem mirror of the providers (a folder holding
# registry.terraform.io). When one exists, init installs from it and needs no network;
# otherwise init downloads from the registry as usual. Override with TF_MIRROR=/path.
TF_MIRROR_CANDIDATES ?= /opt/tf-plugins /usr/share/terraform/plugins /usr/local/share/terraform/plugins \
	$(HOME)/.terraform.d/plugins $(HOME)/.local/share/terraform/plugins
TF_MIRROR ?= $(firstword $(foreach dir,$(TF_MIRROR_CANDIDATES),$(if $(wildcard $(dir)/registry.terraform.io),$(dir))))

# Our own CLI config, generated below: the mirror when there is one, else empty (plain registry
# installs). A machine-wide TF_CLI_CONFIG_FILE may name a file that does not exist, or a
# provider_installation that would disagree with the mirror.
export TF_CLI_CONFIG_FILE := $(TF_BUILD)/terraformrc
export TF_IN_AUTOMATION := 1
export TF_INPUT := 0
export CHECKPOINT_DISABLE := 1

# The local test deployment: its own data dir and state file under .build/, never a real
# deployment's (the root module has no backend block; a real deployment adds its own).
TF_TEST_DATA  := $(TF_BUILD)/test-data
TF_TEST_STATE := $(TF_BUILD)/test.tfstate
# The API keys' root module (terraform/keys): its own data dir; its state is $(TF_TEST_STATE).keys.
TF_KEYS_DIR       := $(TF_DIR)/keys
TF_TEST_KEYS_DATA := $(TF_BUILD)/test-keys-data
# The variables of the local cloud (tests/local.tfvars: fake image digests, moto pulls nothing);
# tests/local_cycle.py adds non-default limits and checks that they arrive.
TF_TEST_VARS  := -var-file=tests/local.tfvars

.PHONY: check-terraform
check-terraform:
	@command -v $(TERRAFORM) >/dev/null || { echo "error: terraform not found on PATH. Install Terraform >= 1.11: https://developer.hashicorp.com/terraform/install (or set TERRAFORM=/path/to/terraform)"; exit 1; }
	@$(TERRAFORM) version -json | python3 -c 'import json, re, sys; v = json.load(sys.stdin)["terraform_version"]; sys.exit(tuple(map(int, re.findall(r"\d+", v)[:2])) < (1, 11))' 2>/dev/null \
	  || { echo "error: $$($(TERRAFORM) version | head -1) is older than 1.11 (S3 state locking, write-only arguments). Install Terraform >= 1.11: https://developer.hashicorp.com/terraform/install"; exit 1; }

# Rewritten only when its content changes (e.g. a mirror appears), so it is never stale.
.PHONY: tf-cli-config-always
$(TF_CLI_CONFIG_FILE): tf-cli-config-always
	@mkdir -p $(@D)
	@if [ -n "$(TF_MIRROR)" ]; then \
	  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n' "$(TF_MIRROR)"; \
	fi > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; \
	  if [ -n "$(TF_MIRROR)" ]; then echo "==> terraform providers from the local mirror $(TF_MIRROR)"; \
	  else echo "==> terraform providers from the registry (no local mirror found)"; fi; fi

.PHONY: test-terraform tf-init tf-static tf-static-run tf-local tf-local-run tf-account tf-account-run
test-terraform: tf-static tf-local tf-account ## Terraform: fmt, validate, checkov, then apply + re-plan + checks + destroy against moto (the environment's module and its keys, and the account stack with CI's roles)

# The provider's lock file (terraform/.terraform.lock.hcl) is committed with every platform's
# hashes (versions.tf says how): init verifies against it and leaves it as it is.
# make test runs init once, before the phases that use Terraform (they run side by side).
tf-init: check-terraform $(TF_CLI_CONFIG_FILE)
	TF_DATA_DIR=$(TF_TEST_DATA) $(TERRAFORM) -chdir=$(TF_DIR) init -backend=false -input=false -no-color >/dev/null
	TF_DATA_DIR=$(TF_TEST_KEYS_DATA) $(TERRAFORM) -chdir=$(TF_KEYS_DIR) init -backend=false -input=false -no-color >/dev/null

tf-static: tf-init venv
	+$(MAKE) tf-static-run
# checkov's venv is this step's own (make test's phases call tf-static-run).
tf-static-run: $(CHECKOV_VENV)/.installed
	@echo "==> terraform fmt / validate"
	$(TERRAFORM) fmt -check -recursive $(TF_DIR)
	TF_DATA_DIR=$(TF_TEST_DATA) $(TERRAFORM) -chdir=$(TF_DIR) validate -no-color
	TF_DATA_DIR=$(TF_TEST_KEYS_DATA) $(TERRAFORM) -chdir=$(TF_KEYS_DIR) validate -no-color
	TF_DATA_DIR=$(TF_BUILD)/account-validate $(TERRAFORM) -chdir=$(TF_DIR)/account init -backend=false -input=false -no-color >/dev/null
	TF_DATA_DIR=$(TF_BUILD)/account-validate $(TERRAFORM) -chdir=$(TF_DIR)/account validate -no-color
	@echo "==> checkov (every skipped check carries its reason inline: #checkov:skip=ID:reason)"
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --framework terraform --directory $(TF_DIR) \
	  --download-external-modules false --skip-download --skip-path tests

tf-local: tf-init venv build-debug
	+$(MAKE) tf-local-run
tf-local-run:
	@echo "==> terraform apply / plan / checks / destroy against a private moto server"
	@rm -f $(TF_TEST_STATE) $(TF_TEST_STATE).backup $(TF_TEST_STATE).keys $(TF_TEST_STATE).keys.backup
	$(WITH_ENDPOINT) -- env TF_DATA_DIR=$(TF_TEST_DATA) TF_TEST_STATE=$(TF_TEST_STATE) \
	  TF_KEYS_DIR=$(TF_KEYS_DIR) TF_KEYS_DATA_DIR=$(TF_TEST_KEYS_DATA) TF_TEST_VARS='$(TF_TEST_VARS)' \
	  TERRAFORM=$(TERRAFORM) TF_DIR=$(TF_DIR) $(VENV_PY) $(TF_DIR)/tests/local_cycle.py

# The account-wide stack with CI's roles (terraform/account), applied to its own moto in
# eu-central-1; who may assume each role and what each may do, read back; destroyed.
tf-account: check-terraform venv build-debug $(TF_CLI_CONFIG_FILE)
	+$(MAKE) tf-account-run
tf-account-run:
	@echo "==> terraform/account with CI roles: apply / plan / checks / destroy against a private moto server"
	@rm -f $(TF_BUILD)/account-test.tfstate $(TF_BUILD)/account-test.tfstate.backup
	$(WITH_ENDPOINT) -- env TF_DATA_DIR=$(TF_BUILD)/account-test-data TF_TEST_STATE=$(TF_BUILD)/account-test.tfstate \
	  TERRAFORM=$(TERRAFORM) $(VENV_PY) $(TF_DIR)/tests/account_cycle.py
