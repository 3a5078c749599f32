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
# The Subsonic playback test's player: Debian's Mopidy (GStreamer's Python
# bindings come only with the system) and Mopidy-Subidy from PyPI, in a
# venv that sees the system's packages. Best effort: where it cannot be
# made (no apt-get), that one test is skipped.
PLAYER_VENV ?= .venv-player
PLAYER_STAMP := $(PLAYER_VENV)/.installed

.PHONY: demo test versions lint typecheck docs bench clean

COMMA := ,
# The demo installs what it runs: the [essentia] extra, and [clap] when
# CLAP_MODEL is set; no browser, no test or docs tools.
DEMO_EXTRAS := essentia$(if $(CLAP_MODEL),$(COMMA)clap)
DEMO_STAMP := $(VENV)/.demo-$(subst $(COMMA),-,$(DEMO_EXTRAS))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	scripts/system-deps.sh
	$(BIN)/pip install -q -c constraints.txt -e '.[$(DEMO_EXTRAS)]'
	touch $@

$(STAMP): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	scripts/system-deps.sh --browser
	$(BIN)/pip install -q -c constraints.txt -e '.[essentia,test,lint,docs]'
	touch $(STAMP)

$(TF_STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/pip install -q -c constraints.txt -e '.[tensorflow]' pytest onnx onnxruntime
	touch $(TF_STAMP)

$(PLAYER_STAMP):
	scripts/system-deps.sh --player
	/usr/bin/python3 -m venv --system-site-packages $(PLAYER_VENV)
	$(PLAYER_VENV)/bin/pip install -q -c constraints.txt mopidy-subidy
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

# The last step, the release tests (a few minutes): the wheel built and
# installed per set of extras into fresh environments outside the tree,
# and the demo both ways.
test: $(STAMP) $(TF_STAMP)
	-$(MAKE) --no-print-directory $(PLAYER_STAMP)
	MOPIDY_PYTHON=$(abspath $(PLAYER_VENV))/bin/python $(BIN)/python -m pytest
	$(TF_VENV)/bin/python -m pytest -m tensorflow tests/test_classifiers.py
	$(BIN)/python -m pytest -m release tests/test_wheel.py tests/test_demo.py

# tox.ini's beets-oldest and beets-newest: the ends of the beets range
# setup.cfg accepts, the newest on the newest Python here (pyenv's too;
# without a 3.13 or newer, on this machine's python3).
NEWEST_PYTHON ?= $(lastword $(sort $(wildcard /usr/bin/python3.1[3-9] $(HOME)/.pyenv/versions/3.1[3-9]*/bin/python3.1[3-9])))
versions: $(STAMP)
	$(BIN)/tox -e beets-oldest,beets-newest $(if $(NEWEST_PYTHON),--discover $(NEWEST_PYTHON),--override testenv:beets-newest.basepython=python3)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/sphinx-build -W -q -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/essentia_throughput.py

clean:
	rm -rf $(VENV) $(TF_VENV) $(PLAYER_VENV) .tox docs/_build .pytest_cache .mypy_cache .ruff_cache
