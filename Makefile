# budget-sync: every workflow is a target. Each target installs what it needs into
# project-local virtual environments on first use; nothing is installed by hand.
#   .venv       the project, its tests, linters, moto (the local organisation)
#   .venv-scan  checkov (it pins an old boto3, so it lives alone)
#   .venv-sam   aws-sam-cli (it pins its own boto3, so it lives alone)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCAN_VENV := .venv-scan
SAM_VENV := .venv-sam
CHECKOV_VERSION ?= 3.3.30
SAM_CLI_VERSION ?= 1.170.0
PIP_QUIET ?= -q

TEMPLATES := template-management.yaml template-spoke.yaml template-org-events.yaml
ENV ?= default
EVENT ?= events/insert.json
PORT ?= 5000

export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export PYTHONPATH :=

.PHONY: help venv test unit lint lint-python lint-templates lint-iam scan sam-validate build invoke deploy \
        bench demo local stackset clean browser

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/\$$(PORT)/$(PORT)/g' \
	  | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@echo "==> installing the project into $(VENV) (first use only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) -c constraints.txt -e '.[dev]'
	@touch $@

$(SCAN_VENV)/.installed:
	@echo "==> installing checkov $(CHECKOV_VERSION) into $(SCAN_VENV) (first use only)"
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install $(PIP_QUIET) 'checkov==$(CHECKOV_VERSION)'
	@touch $@

$(SAM_VENV)/.installed:
	@echo "==> installing aws-sam-cli $(SAM_CLI_VERSION) into $(SAM_VENV) (first use only)"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@touch $@

venv: $(STAMP) ## create or update the project's virtual environment

test: lint unit ## everything CI runs: lint, scanners, template checks, all tests

unit: $(STAMP) browser ## the pytest suite (unit, integration, template, spoke, end to end)
	$(BIN)/pytest

# The report's browser test (tests/ops/test_report_browser.py) opens the page in headless
# Chromium. Installed from Debian if missing (CI runs as root; sudo otherwise); where there is no
# apt-get the test is skipped outside CI and fails in CI (CI=true), never silently passed.
browser: ## headless Chromium for the report's browser test (Debian package, installed if missing)
	@if command -v $${CHROMIUM:-chromium} >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing chromium (Debian package, first use only)"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "==> no chromium and no apt-get: install Chromium yourself (or set CHROMIUM=/path)"; \
	  [ "$${CI:-}" != true ] || exit 1; \
	fi

lint: lint-python lint-templates lint-iam scan sam-validate ## ruff, mypy, cfn-lint (+serverless rules), parliament, checkov, sam validate

lint-python: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

lint-templates: $(STAMP)
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- $(TEMPLATES)

lint-iam: $(STAMP) ## parliament over every IAM policy of both templates (findings fixed or justified in place)
	$(BIN)/python -m tests.template.lint_iam

scan: $(SCAN_VENV)/.installed
	$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  $(foreach t,$(TEMPLATES),-f $(t))

sam-validate: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint -t template-management.yaml

build: $(SAM_VENV)/.installed ## sam build (needs a local python3.13 on PATH, as the function's runtime)
	PATH="$$(ls -d $$HOME/.pyenv/versions/3.13*/bin 2>/dev/null | tail -1):$$PATH" \
	  SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build -t template-management.yaml

invoke: $(STAMP) ## run the template's handler on EVENT=events/x.json against the local organisation
	$(BIN)/python -m budget_sync_local invoke $(EVENT)

deploy: build ## sam deploy with samconfig.toml (ENV=default|dev|prod)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam deploy --config-env $(ENV)

bench: $(STAMP) build ## benchmarks that print figures (cold start of the built artifact, handler vs baseline, ...)
	$(BIN)/python -m bench

demo: $(STAMP) ## the whole pipeline on the local organisation, with a summary
	$(BIN)/python -m budget_sync_local demo

local: $(STAMP) ## the local organisation as a server on 127.0.0.1:$(PORT) (PORT=... to change)
	$(BIN)/python -m budget_sync_local serve --port $(PORT)

stackset: $(STAMP) ## spoke StackSet: OUS="ou-..." REGION=... PARAMS="Key=Value ..." [STACKSET_ARGS=--dry-run]
	$(BIN)/python -m budgetctl.stackset --ous $(OUS) --region $(REGION) \
	  --parameter-overrides $(PARAMS) $(STACKSET_ARGS)

clean: ## remove build output and virtual environments
	rm -rf .aws-sam $(VENV) $(SCAN_VENV) $(SAM_VENV) .pytest_cache .mypy_cache .ruff_cache
