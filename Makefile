# Two commands do all the set-up on a fresh machine with Python 3 and pip:
#   make demo   creates .venv, installs the agent and runs `monitor demo`
#   make test   creates .venv, installs the agent with its test extras and runs the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/monitor demo

# every core, a test file per worker: the tests wait on real servers and subprocesses as much as they
# compute, and one file's module fixtures (a Prometheus, a sidecar) stay in one worker
# (the 25 slowest tests are listed at the end: the suite must stay well under CI's 15 minutes)
test: $(BIN)/.installed
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache
