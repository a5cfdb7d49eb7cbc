# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml CMakeLists.txt $(wildcard cpp/*)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a looser spec could pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $(STAMP)

demo: $(STAMP)  ## train CartPole-v1 with SM-G-SUM for about a minute, logging to runs/
	$(VENV)/bin/smevo train --config configs/cartpole.yaml --mutation SM-G-SUM

test: $(STAMP)  ## lint, then the whole test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

bench: $(STAMP)  ## the benchmarks, each printing ratios against a baseline timed in the same run
	$(PY) scripts/bench_mutations.py
	$(PY) scripts/bench_envs.py
	$(PY) scripts/bench_trainer.py

clean:
	rm -rf $(VENV) build runs
