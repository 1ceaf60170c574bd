# OncoServe — one entry point. `make serve` and `make test` set themselves up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_SAM := .venv-sam
PY := $(VENV)/bin/python
SAM := SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam
RIE := build/bin/aws-lambda-rie
LAMBDA_BASE := ../shared/tools/lambda-base
export ONCOSERVE_DATA_ROOT ?= $(abspath ../shared/data)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup serve test browser openapi test-fast replay events lint-template experiment-histopathology loso-brain train-all bench loadtest wheels images images-test images-clean clean

help: ## list the targets
	@grep -E '^[a-z% -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/dev.txt requirements/survival-check.txt functions/requirements.txt functions/requirements-tracing.txt functions/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet -e ./functions -e ./client
	touch $@

$(VENV_SAM)/.installed: requirements/sam.txt
	$(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_SAM)/bin/python -m pip install --quiet -r requirements/sam.txt
	touch $@

# The emulator binary ships inside the aws-sam-cli package.
$(RIE): $(VENV_SAM)/.installed
	mkdir -p $(dir $@)
	cp "$$($(VENV_SAM)/bin/python -c 'import samcli, pathlib; print(pathlib.Path(samcli.__file__).parent / "local/rapid/aws-lambda-rie-x86_64")')" $@
	chmod +x $@

setup: $(VENV)/.installed $(VENV_SAM)/.installed $(RIE) ## create .venv and .venv-sam, fetch the emulator, write events
	@if [ -d "$(ONCOSERVE_DATA_ROOT)" ]; then $(PY) -m local.make_events; \
	else echo "note: no data at $(ONCOSERVE_DATA_ROOT); events needing dataset samples not generated"; fi

serve: setup ## the local API: all five functions behind an API key on 127.0.0.1 (PORT, default 3000)
	$(PY) -m local.serve

test: setup lint-template browser ## the full test suite (what CI runs)
	$(PY) -m pytest

browser: ## headless Chromium for the docs-page test (Debian's package chromium; apt-get as root)
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium >/dev/null; }

openapi: $(VENV)/.installed ## regenerate openapi.yaml, functions/model.schema.json and template.yaml's functions (from the routes, the typed contract, tasks.yaml; a test fails when one is stale)
	$(PY) -m contract

test-fast: ## unit tests only, no set-up
	$(PY) -m pytest tests/unit -q

replay: setup ## replay every event in events/ against every function (emulator, no Docker)
	$(PY) -m local.replay

events: ## (re)write events/ (committed) and events/generated/ (from ../shared/data)
	$(PY) -m local.make_events --static

lint-template: $(VENV_SAM)/.installed ## sam validate --lint
	$(SAM) validate --lint

train-%: $(VENV)/.installed ## train, convert, evaluate and card one model as shipped (train/<task>/release.yaml; ARGS="--weights default" etc. override; times in docs/training.md)
	$(PY) -m train.$(subst -,_,$*) $(ARGS)

experiment-histopathology: $(VENV)/.installed ## MobileNetV2 (ImageNet) frozen / last stage tuned on upscaled patches, validation only (~8 min CPU)
	$(PY) -m train.histopathology.transfer_experiment

finetune-%: $(VENV)/.installed ## tune every backbone layer of a task with train/<task>/tuning.py → build/<task>/finetuned (CPU: brain ~27 min, skin ~2 h, histopathology ~27; PACK=devicepack/<task>.npz on a GPU machine)
	$(PY) -m train.finetune run $(subst -,_,$*) --out build/$(subst -,_,$*)/finetuned $(if $(PACK),--pack $(PACK))

pack-%: $(VENV)/.installed ## train+val images of such a task for a GPU machine → devicepack/<task>.npz (docs/training.md)
	$(PY) -m train.finetune pack $(subst -,_,$*)

loso-brain: $(VENV)/.installed ## brain leave-one-source-out with the shipped tuning recipe: a backbone tuned without each MRI source (CPU ≈ 35 min) → functions/brain/leave_one_source_out.json, in the card
	$(PY) -m train.brain.sources

train-all: train-leukemia train-breast-survival train-histopathology train-brain train-skin ## every model, in turn

bench: setup ## LiteRT vs TensorFlow vs ONNX Runtime per model → BENCHMARKS.md (needs build/<task>/saved_model from training; TASKS=skin re-measures skin only, keeping the other sections)
	$(PY) -m pip install --quiet -r requirements/bench.txt
	$(PY) -m bench.run $(if $(TASKS),--rerun $(TASKS))
	$(PY) -m bench.handler

loadtest: setup ## Locust against the local API: 1/8/32 users, the usage plan, a 10,000-request soak → BENCHMARKS.md (~20 min; loopback only)
	$(PY) -m pip install --quiet -r requirements/loadtest.txt
	$(PY) -m bench.loadtest

# Offline image builds: wheels for the local stand-in (CPython 3.11) and the AWS image (3.12).
functions/wheels/.done: functions/requirements.txt functions/requirements-tracing.txt
	for req in functions/requirements.txt functions/requirements-tracing.txt; do \
	  $(LAMBDA_BASE)/wheelhouse.sh $$req functions/wheels && \
	  LAMBDA_PYTHON_VERSION=3.12 $(LAMBDA_BASE)/wheelhouse.sh $$req functions/wheels || exit 1; done
	touch $@

wheels: functions/wheels/.done ## download the function images' wheels (no network inside docker build)

images: $(VENV_SAM)/.installed wheels ## sam build of all five images (starts Docker as ../shared/tools/lambda-base does)
	$(LAMBDA_BASE)/dockerd.sh
	$(LAMBDA_BASE)/build.sh
	$(SAM) build

images-test: setup images ## run every image under the emulator and replay every event against it
	$(PY) -m local.container_images

images-clean: ## remove the function images and SAM's build folder
	-docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^[a-z]+function:' | xargs -r docker rmi -f
	rm -rf .aws-sam

clean: ## remove environments and build outputs
	rm -rf $(VENV) $(VENV_SAM) build .aws-sam events/generated .pytest_cache
