# OncoServe — one entry point. `make serve` and `make test` set themselves up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_SAM := .venv-sam
PY := $(VENV)/bin/python
# Backbones tuned end to end by `make finetune-<task>` (committed; WEIGHTS=default trains on the ImageNet ones)
BRAIN_WEIGHTS := train/weights/brain/backbone.weights.h5
SKIN_WEIGHTS := train/weights/skin/backbone.weights.h5
SKIN_SECOND_WEIGHTS := train/weights/skin/seed2018/backbone.weights.h5
# Skin v1.5.0 runs images and backbone at 256 px (chosen on validation); INPUT_SIZE=224 rebuilds v1.4.0
SKIN_INPUT_SIZE := 256
SAM := SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam
RIE := build/bin/aws-lambda-rie
LAMBDA_BASE := ../shared/tools/lambda-base
export ONCOSERVE_DATA_ROOT ?= $(abspath ../shared/data)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup serve test browser openapi test-fast replay events lint-template train-leukemia train-breast-survival train-histopathology experiment-histopathology train-brain train-skin finetune-brain finetune-skin finetune-histopathology pack-brain pack-skin pack-histopathology train-all bench loadtest wheels images images-test images-clean clean

help: ## list the targets
	@grep -E '^[a-z -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

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

train-leukemia: $(VENV)/.installed ## train, convert and evaluate the leukemia model (~6 min CPU)
	$(PY) -m train.leukemia

train-breast-survival: $(VENV)/.installed ## survival groups: K-Means vs ridge / elastic-net Cox, chosen on val, cross-validated estimate (~2 min)
	$(PY) -m train.breast_survival

train-histopathology: $(VENV)/.installed ## CancerNet, two stain-robust variants and MobileNetV2 (tuned backbone, committed) + linear head, chosen on val (~25 min CPU; WEIGHTS=default: ImageNet)
	$(PY) -m train.histopathology $(if $(WEIGHTS),--weights $(WEIGHTS))

experiment-histopathology: $(VENV)/.installed ## MobileNetV2 (ImageNet) frozen / last stage tuned on upscaled patches, validation only (~8 min CPU)
	$(PY) -m train.histopathology_transfer

train-brain: $(VENV)/.installed ## MobileNetV2 (tuned backbone, committed) + linear heads, CAM (~5 min CPU; WEIGHTS=default: ImageNet; BACKBONE=xception WEIGHTS=path)
	$(PY) -m train.brain --backbone $(or $(BACKBONE),mobilenet_v2) --weights $(or $(WEIGHTS),$(if $(BACKBONE),default,$(BRAIN_WEIGHTS))) $(if $(FINE_TUNE_EPOCHS),--fine-tune-epochs $(FINE_TUNE_EPOCHS))

train-skin: $(VENV)/.installed ## MobileNetV2 (tuned backbone, committed; last stage tuned again) + colour constancy + linear head, 8-view CAM graph; a second tuned backbone as a candidate, at 256 px (~80 min CPU; INPUT_SIZE=224: v1.4.0; WEIGHTS=default: ImageNet; BACKBONE=vgg16 WEIGHTS=path)
	$(PY) -m train.skin --backbone $(or $(BACKBONE),mobilenet_v2) --weights $(or $(WEIGHTS),$(if $(BACKBONE),default,$(SKIN_WEIGHTS))) $(if $(or $(BACKBONE),$(WEIGHTS)),,--second-weights $(SKIN_SECOND_WEIGHTS)) $(if $(FINE_TUNE_EPOCHS),--fine-tune-epochs $(FINE_TUNE_EPOCHS)) $(if $(FULL_FINE_TUNE_EPOCHS),--full-fine-tune-epochs $(FULL_FINE_TUNE_EPOCHS)) $(if $(or $(INPUT_SIZE),$(if $(BACKBONE),,$(SKIN_INPUT_SIZE))),--input-size $(or $(INPUT_SIZE),$(SKIN_INPUT_SIZE)))

finetune-brain finetune-skin finetune-histopathology: $(VENV)/.installed ## tune every backbone layer → build/<task>/finetuned (CPU: brain ~27 min, skin ~2 h, histopathology ~27; PACK=devicepack/<task>.npz on a GPU machine)
	$(PY) -m train.finetune run $(@:finetune-%=%) --out build/$(@:finetune-%=%)/finetuned $(if $(PACK),--pack $(PACK))

pack-brain pack-skin pack-histopathology: $(VENV)/.installed ## train+val images for a GPU machine → devicepack/<task>.npz (README: fine-tuning on a GPU)
	$(PY) -m train.finetune pack $(@:pack-%=%)

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
