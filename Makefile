# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The trainer benchmark's own venv: .venv's packages (seen through a .pth file) plus EvoTorch,
# its baseline, which is neither in .venv nor a smevo dependency.
BENCH_VENV  := .venv-bench
BENCH_PY    := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
VENV_SITE   := $(abspath $(VENV))/lib/python3.11/site-packages

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml CMakeLists.txt $(wildcard cpp/*)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a looser spec could pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ray,pixels]"
	touch $(STAMP)

demo: $(STAMP)  ## train CartPole-v1 with SM-G-SUM for about a minute, logging to runs/
	$(VENV)/bin/smevo train --config configs/cartpole.yaml --mutation SM-G-SUM

# ATen picks its CPU kernels at run time (x86: default < avx2 < avx512), and kernels of different
# vector widths round differently. The tests marked bitexact (promises of bit-identical results)
# run again under each kernel set below this CPU's own, so that none holds by a kernel's luck
# (but for those marked processes, slow to start, whose arithmetic in-process tests repeat).
OTHER_KERNELS = $(shell $(PY) -c 'import torch; kernels = ["default", "avx2", "avx512"]; \
	own = torch.backends.cpu.get_cpu_capability().lower(); \
	print(*kernels[:kernels.index(own)] if own in kernels else ["default"])')

test: $(STAMP)  ## lint, the whole test suite, then its bit-exact tests on the other CPU kernels
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest
	for kernels in $(OTHER_KERNELS); do \
		ATEN_CPU_CAPABILITY=$$kernels $(VENV)/bin/pytest -q -m 'bitexact and not processes' \
			|| exit 1; \
	done

# pip sees .venv's packages as installed and adds only evotorch and what they lack (cma, pandas...).
$(BENCH_STAMP): $(STAMP)
	test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	# addsitedir, not a bare path: .venv's own .pth files (smevo's editable install) must run too.
	echo 'import site; site.addsitedir("$(VENV_SITE)")' \
		> $(BENCH_VENV)/lib/python3.11/site-packages/smevo-venv.pth
	$(BENCH_PY) -m pip install -q evotorch==0.6.1
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)  ## the benchmarks, each printing ratios against a baseline timed in the same run
	$(PY) scripts/bench_mutations.py
	$(PY) scripts/bench_envs.py
	$(BENCH_PY) scripts/bench_trainer.py
	$(PY) scripts/bench_scale.py
	$(PY) scripts/bench_a2c.py
	$(PY) scripts/bench_pixels.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) build runs
