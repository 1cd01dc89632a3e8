# Two commands do all set-up on a fresh machine:
#   make train   install, train Pendulum-v1, write eval.json, learning_curve.png and policy.gif
#   make test    install, lint (Python 3.9 syntax included), run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ENV ?= Pendulum-v1
RUN_DIR ?= runs/$(ENV)
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PYTEST_ARGS ?=
PY39 ?= $(shell for p in python3.9 $$HOME/.pyenv/versions/3.9*/bin/python3.9; do $$p -c '' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: install install-dev train test test-fast test-slow lint bench bench-smoke clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, chosen for the machine: PyPI's default Linux wheel brings several GB of CUDA libraries,
# which a CPU-only machine does not need. An installed torch that satisfies requirements.txt is kept.
$(VENV)/.torch: | $(PY)
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "torch $$($(PY) -c 'import torch; print(torch.__version__)') already installed"; \
	elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PIP) install -q "torch>=2.0"; \
	else \
		$(PIP) install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null \
		|| $(PIP) install -q torch --index-url $(TORCH_CPU_INDEX); \
	fi
	@touch $@

$(VENV)/.installed: requirements.txt pyproject.toml $(VENV)/.torch
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-ray.txt requirements-tune.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt -r requirements-ray.txt -r requirements-tune.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# a second `make train` moves the earlier run aside to $(RUN_DIR).old-<N> (nothing is deleted)
train: install
	$(VENV)/bin/ppolearn train --env $(ENV) --run-dir $(RUN_DIR) --overwrite
	$(VENV)/bin/ppolearn render $(RUN_DIR) --out $(RUN_DIR)/policy.gif --episodes 3
	@echo "done: $(RUN_DIR)/eval.json, $(RUN_DIR)/learning_curve.png, $(RUN_DIR)/policy.gif"

lint: install-dev
	$(VENV)/bin/ruff check ppolearn tests benchmarks examples
	@# The original conda env is Python 3.9: every file must compile there (when a 3.9 interpreter is here).
	@if [ -n "$(PY39)" ]; then $(PY39) -m compileall -q ppolearn tests benchmarks examples >/dev/null \
		&& echo "python3.9 compiles every file"; else echo "no python3.9 here: ruff's py39 target checked syntax"; fi

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: lint
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: install-dev
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# Benchmarks against Stable-Baselines3 (benchmark-only dependency): tables in BENCHMARKS.md, plot in docs/.
bench: install
	$(PIP) install -q -r benchmarks/requirements.txt
	$(PY) -m benchmarks.run

# The same code path with tiny budgets (seconds); writes to runs/bench-smoke, not BENCHMARKS.md.
bench-smoke: install
	$(PY) -m benchmarks.run --smoke

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
