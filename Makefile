# Two commands do all the set-up on a fresh Linux machine with Python 3.10-3.12:
#   make run    create .venv, install the locked versions, start the app on the demo model + samples
#   make test   create .venv, install the locked versions, run the tests
# Installs come from the lock (exact versions and hashes), never from whatever is newest:
#   requirements.lock      the dependencies + the dev extra (what CI tests)
#   requirements-gpu.lock  the same + the gpu extra (onnxruntime-gpu's CUDA 13 / cuDNN 9 wheels)
# `make run GPU=1` / `make test GPU=1` install the second; `make lock` refreshes both, and
# tests/test_lock.py fails when a lock no longer satisfies pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := $(if $(GPU),requirements-gpu.lock,requirements.lock)
STAMP := $(VENV)/.installed-$(LOCK)
# uv resolves one lock for every supported Python (markers fork where a package dropped 3.10).
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.10 --generate-hashes --quiet --custom-compile-command "make lock"

.PHONY: run test lint lock demo-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	rm -f $(VENV)/.installed-*
	$(BIN)/pip install --require-hashes -r $(LOCK)
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/retinanet-studio

test: $(STAMP)
	$(BIN)/python -m pytest
	$(BIN)/lint-imports
	$(BIN)/ruff check app model tests bench docs

# Rebuilds resources/demo_model.onnx and resources/samples/ from scratch: synthetic data,
# training (28 epochs), evaluation on an unseen seed (about 50 min on 2 idle CPU cores).
demo-model: $(STAMP)
	$(BIN)/python -m model.tf.demo --work runs/demo --resources resources

# Refresh both locks from pyproject.toml's ranges (newest versions that satisfy them).
lock: $(STAMP)
	$(UV_COMPILE) --extra dev -o requirements.lock
	$(UV_COMPILE) --extra dev --extra gpu -o requirements-gpu.lock

clean:
	rm -rf $(VENV) build *.egg-info
