# One command sets up a fresh clone and trains, one runs the tests.
# torch==2.13.0 is installed first and alone: on a CPU machine it is the local
# CPU wheel, and a later loose requirement (torch>=2.1) is then already met.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install train test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

train: install
	$(BIN)/w2v train --out runs/default --overwrite

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/vs_gensim.py

clean:
	rm -rf $(VENV) runs build *.egg-info
