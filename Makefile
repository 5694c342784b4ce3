# Two entry points, each doing the whole set-up on a fresh machine:
#   make demo   -- create .venv, install everything, run the main job on built-in data
#   make test   -- same set-up, then the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LAVA   := lava-nc==0.10.0
NEUROBENCH := neurobench==2.3.0
SPIKINGJELLY := spikingjelly==2.0.0
LAVA_DL := lava-dl==0.6.0

.PHONY: demo test test-fast bench lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: pip takes the local CPU wheel and nothing pulls a newer torch.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev]'
	# lava-nc 0.10.0 declares Python < 3.11 but runs on 3.11 with hwsim/formats/lava_compat.py;
	# its own pins (numpy<2, networkx<=2.8.7, asteval<0.10, scipy, scikit-learn) are in pyproject.toml.
	$(PY) -m pip install --no-deps --ignore-requires-python $(LAVA)
	# NeuroBench only for its synaptic-operation metric in the tests; its own requirements (torchaudio,
	# tonic, snntorch) would pull another torch, and that metric needs none of them.
	$(PY) -m pip install --no-deps $(NEUROBENCH)
	# NIR conformance readers: spikingjelly 2.0.0 declares torchvision/torchaudio/tensorboard that its NIR
	# exchange does not use (they would pull another torch); lava-dl 0.6.0 pins Python 3.10 and torch < 2.4,
	# and its netx needs neither (hwsim/formats/lava_compat.py stubs the object-detection part it never uses).
	$(PY) -m pip install --no-deps $(SPIKINGJELLY)
	$(PY) -m pip install --no-deps --ignore-requires-python $(LAVA_DL)
	$(PY) -c "import hwsim.formats.lava_compat as c; c.import_lava(); c.import_netx(); print('lava, netx ok')"
	# compile the numba kernels once into the cache: the first command then starts in about a second
	$(PY) -m hwsim.cli.warm
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwsim study --out study

test: $(STAMP)
	$(VENV)/bin/ruff check hwsim methods chips tests benchmarks
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not lava and not slow" tests

bench: $(STAMP)
	$(PY) benchmarks/bench_core.py

lint: $(STAMP)
	$(VENV)/bin/ruff check hwsim methods chips tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
