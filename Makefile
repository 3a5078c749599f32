# Two commands for a new machine:
#   make demo   set everything up, analyse a small synthesised library, show it
#   make test   run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# essentia-tensorflow replaces the essentia wheel, so the TensorFlow route
# of the classifiers is tested in an environment of its own.
TF_VENV ?= .venv-tf
TF_STAMP := $(TF_VENV)/.installed

.PHONY: demo test lint typecheck docs bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[essentia,test,lint,docs]'
	touch $(STAMP)

$(TF_STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/pip install -q -c constraints.txt -e '.[tensorflow]' pytest onnx onnxruntime
	touch $(TF_STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The last step builds the wheel and installs it, per set of extras, into
# fresh environments outside the tree (tests/test_wheel.py, a few minutes).
test: $(STAMP) $(TF_STAMP)
	$(BIN)/python -m pytest
	$(TF_VENV)/bin/python -m pytest -m tensorflow tests/test_classifiers.py
	$(BIN)/python -m pytest -m wheel tests/test_wheel.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/sphinx-build -W -q -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/essentia_throughput.py

clean:
	rm -rf $(VENV) $(TF_VENV) docs/_build .pytest_cache .mypy_cache .ruff_cache
