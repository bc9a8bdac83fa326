"""The documentation site: it builds with ``mkdocs build --strict``, and every example in it runs.

Examples are of two kinds, both executed here: the ``>>>`` examples in the public docstrings (rendered on
the API pages; run as doctests, per public object) and the ```python blocks of the pages under docs/ (run
in order, one namespace per page, like tests/test_readme.py does for README). A last test checks that every
public function and class has at least one of the two, so a name added later without an example fails.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pathlib
import re
import shutil
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def _public_objects() -> dict[str, object]:
    """``qualified name -> object`` for every public function and class (modules walked from ``__all__``)."""
    found: dict[str, object] = {}
    seen: set[str] = set()

    def walk(module: types.ModuleType) -> None:
        seen.add(module.__name__)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                if value.__name__ not in seen:
                    walk(value)
            elif callable(value):
                found[f"{module.__name__}.{name}"] = value

    walk(importlib.import_module("jaxopt_losses"))
    return found


def _page_code(page: pathlib.Path) -> list[str]:
    return _BLOCK.findall(page.read_text())


OBJECTS = _public_objects()
_FINDER = doctest.DocTestFinder(recurse=False)


def _doctests(qualname: str) -> list[doctest.DocTest]:
    obj = OBJECTS[qualname]
    module = importlib.import_module(getattr(obj, "__module__", None) or qualname.rsplit(".", 1)[0])
    return [t for t in _FINDER.find(obj, qualname, globs=dict(vars(module))) if t.examples]


def test_site_builds_strict(tmp_path):
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]'): the site build is not checked")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    pages = ("index.html", "api/optim/index.html", "api/compat.optim/index.html", "VALIDATION/index.html")
    for page in pages:
        assert (tmp_path / "site" / page).exists(), page
    # the API pages list the objects themselves, not just the module docstring
    api = (tmp_path / "site" / "api" / "optim" / "index.html").read_text()
    assert 'id="jaxopt_losses.optim.adam"' in api and "arithmatex" in api


def test_pages_have_examples():
    assert len([p for p in PAGES if _page_code(p)]) >= 10


@pytest.mark.parametrize("page", [p for p in PAGES if _page_code(p)], ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page, monkeypatch, tmp_path):
    blocks = _page_code(page)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page.relative_to(ROOT)}[python block {i}]", "exec"), namespace)


@pytest.mark.parametrize("qualname", sorted(q for q in OBJECTS if _doctests(q)))
def test_docstring_examples_run(qualname):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    for test in _doctests(qualname):
        runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)


def test_every_public_callable_has_a_runnable_example():
    code = "\n".join(block for page in PAGES for block in _page_code(page))
    missing = []
    for qualname, obj in OBJECTS.items():
        name = qualname.rsplit(".", 1)[1]
        if _doctests(qualname):
            continue
        # a function must be called; a class in use suffices (a state NamedTuple is made by its optimizer,
        # a base class such as Optimizer is checked with isinstance)
        pattern = rf"\b{re.escape(name)}\b" if inspect.isclass(obj) else rf"\b{re.escape(name)}\("
        if not re.search(pattern, code):
            missing.append(qualname)
    assert not missing, f"public names with no runnable example (docstring or docs page): {missing}"
