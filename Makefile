# `make test` and `make demo` each set up .venv from a clean clone (so do `make docs` and `make typecheck`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test demo lint bench docs typecheck clean

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
	$(PY) -m pytest -n 2 --dist loadgroup -q

# The main job on today's MLP runs, a CNN, and the article's two examples (LSTM, ResNet-18); --html report.
demo: $(VENV)/.stamp-compare
	$(VENV)/bin/jaxopt-losses compare --model mlp,cnn,lstm,resnet18 --html

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check jaxopt_losses tests examples benchmarks docs

bench: $(VENV)/.stamp-test
	$(PY) -m benchmarks

# The documentation site (mkdocs.yml) into site/; --strict turns every warning (a broken reference) into an error.
docs: $(VENV)/.stamp-test
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# pyright with pyproject's [tool.pyright] settings (tests/test_typing.py runs it too). The variable skips
# pyright-python's online version check, so it runs offline.
typecheck: $(VENV)/.stamp-test
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(VENV)/bin/pyright --pythonpath $(PY)

clean:
	rm -rf $(VENV) build dist site *.egg-info
