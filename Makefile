# `make test` and `make demo` each set up .venv from a clean clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test demo lint bench clean

$(VENV)/.stamp-test: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test,compare]'
	touch $@

$(VENV)/.stamp-compare: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[compare]'
	touch $@

test: $(VENV)/.stamp-test
	$(PY) -m pytest -n 2 -q

# The main job on today's MLP runs, a CNN, and the article's two examples (LSTM, ResNet-18); --html report.
demo: $(VENV)/.stamp-compare
	$(VENV)/bin/jaxopt-losses compare --model mlp,cnn,lstm,resnet18 --html

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check jaxopt_losses tests examples benchmarks

bench: $(VENV)/.stamp-test
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
