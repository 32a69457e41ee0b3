# Terraform: validation, scanning, and a real apply / re-plan / check / destroy against moto.

TERRAFORM ?= terraform
TF_DIR    := terraform
TF_BUILD  := $(abspath $(BUILD))/terraform
# Where a machine may keep a filesystem mirror of the providers (a folder holding
# registry.terraform.io). When one exists, init installs from it and needs no network.
TF_MIRROR_CANDIDATES ?= /opt/tf-plugins /usr/share/terraform/plugins /usr/local/share/terraform/plugins \
	$(HOME)/.terraform.d/plugins $(HOME)/.local/share/terraform/plugins
TF_MIRROR := $(firstword $(foreach dir,$(TF_MIRROR_CANDIDATES),$(if $(wildcard $(dir)/registry.terraform.io),$(dir))))

# Our own CLI config (a machine-wide one may point at a file that does not exist).
export TF_CLI_CONFIG_FILE := $(TF_BUILD)/terraformrc
export TF_IN_AUTOMATION := 1
export TF_INPUT := 0
export CHECKPOINT_DISABLE := 1

# The local test deployment: its own data dir and state, never a real deployment's.
TF_TEST_DATA  := $(TF_BUILD)/test-data
TF_TEST_STATE := $(TF_BUILD)/test.tfstate
TF_TEST_VARS  := -var-file=tests/local.tfvars

.PHONY: check-terraform
check-terraform:
	@command -v $(TERRAFORM) >/dev/null || { echo "error: terraform not found. Install Terraform >= 1.5: https://developer.hashicorp.com/terraform/install"; exit 1; }

$(TF_CLI_CONFIG_FILE): mk/terraform.mk
	@mkdir -p $(TF_BUILD)
	@if [ -n "$(TF_MIRROR)" ]; then \
	  echo "==> terraform providers from the local mirror $(TF_MIRROR)"; \
	  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n' "$(TF_MIRROR)" > $@; \
	else \
	  echo "==> terraform providers from the registry (no local mirror found)"; \
	  : > $@; \
	fi

.PHONY: test-terraform tf-static tf-local
test-terraform: tf-static tf-local ## Terraform: fmt, validate, checkov, then apply + re-plan + checks + destroy against moto

tf-static: check-terraform venv $(TF_CLI_CONFIG_FILE)
	@echo "==> terraform fmt / init / validate"
	$(TERRAFORM) fmt -check -recursive $(TF_DIR)
	TF_DATA_DIR=$(TF_TEST_DATA) $(TERRAFORM) -chdir=$(TF_DIR) init -backend=false -input=false -no-color >/dev/null
	TF_DATA_DIR=$(TF_TEST_DATA) $(TERRAFORM) -chdir=$(TF_DIR) validate -no-color
	@echo "==> checkov"
	$(VENV)/bin/checkov --quiet --compact --framework terraform --directory $(TF_DIR) --download-external-modules false --skip-download --skip-path tests

tf-local: check-terraform venv $(TF_CLI_CONFIG_FILE)
	@echo "==> terraform apply / plan / checks / destroy against a private moto server"
	@rm -f $(TF_TEST_STATE) $(TF_TEST_STATE).backup
	TF_DATA_DIR=$(TF_TEST_DATA) $(TERRAFORM) -chdir=$(TF_DIR) init -backend=false -input=false -no-color >/dev/null
	$(WITH_MOTO) -- env TF_DATA_DIR=$(TF_TEST_DATA) TF_TEST_STATE=$(TF_TEST_STATE) TF_TEST_VARS='$(TF_TEST_VARS)' \
	  TERRAFORM=$(TERRAFORM) TF_DIR=$(TF_DIR) $(VENV_PY) $(TF_DIR)/tests/local_cycle.py

test: test-terraform
