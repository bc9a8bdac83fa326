"""PEP 562 lazy re-exports read from the package's own ``if TYPE_CHECKING:`` block.

A package ``__init__`` lists each public name once, as a plain import under ``if TYPE_CHECKING:``::

    if TYPE_CHECKING:
        from ._adam import adam as adam   # one line per public name

Type checkers and editors read that block and see the real objects (``X as X`` marks a re-export). At run
time the block does not execute: :func:`lazy_exports` parses it (only the ``__init__`` source, no import) and
returns the package's ``__getattr__``, ``__dir__`` and ``__all__``, so ``import jaxopt_losses.optim`` stays
cheap and the private module is imported on first access to one of its names (the scientific-python
``lazy_loader.attach_stub`` pattern, with the stub inline). ``from . import optim as optim`` exports a
submodule. tests/test_package.py checks that every name resolves and matches what pyright sees.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from typing import Any


def _type_checking_imports(init_file: str) -> dict[str, tuple[str, str | None]]:
    """``name -> (relative module, attribute, or None for a submodule)`` from the TYPE_CHECKING block."""
    with open(init_file, encoding="utf-8") as f:
        tree = ast.parse(f.read(), init_file)
    table: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        test = node.test if isinstance(node, ast.If) else None
        is_tc = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        if not is_tc:
            continue
        assert isinstance(node, ast.If)
        for imp in node.body:
            if not isinstance(imp, ast.ImportFrom) or imp.level == 0:
                continue
            base = "." * imp.level + (imp.module or "")
            for alias in imp.names:
                if imp.module is None:  # ``from . import sub as sub``: a submodule
                    table[alias.asname or alias.name] = (base + alias.name, None)
                else:
                    table[alias.asname or alias.name] = (base, alias.name)
    return table


def lazy_exports(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` from the TYPE_CHECKING block of
    ``init_file`` (the package's ``__file__``)."""
    table = _type_checking_imports(init_file)

    def __getattr__(name: str) -> Any:
        entry = table.get(name)
        if entry is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = entry
        value = importlib.import_module(module, package)
        if attr is not None:
            value = getattr(value, attr)
        importlib.import_module(package).__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__, sorted(table)
