"""mkdocs hooks (mkdocs.yml ``hooks:``): an API page for a module needs only its nav line.

A nav entry ``api/<dotted.module.name>.md`` with no such file under docs/ gets a generated page holding
``::: <dotted.module.name>`` (the module's docstring and its public members), so documenting a new module is
one line in mkdocs.yml. Write the page by hand (as docs/api/optim.md) to add prose or examples around it.
"""

from __future__ import annotations

import re
from typing import Any

from mkdocs.structure.files import File, Files

_API_PAGE = re.compile(r"^api/((?:\w+\.)*\w+)\.md$")


def _nav_paths(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_paths(v)]
    if isinstance(nav, list):
        return [p for v in nav for p in _nav_paths(v)]
    return []


def on_files(files: Files, config: Any) -> Files:
    for path in _nav_paths(config["nav"]):
        m = _API_PAGE.match(path)
        if m and files.get_file_from_path(path) is None:
            module = m.group(1)
            content = f"# `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"
            files.append(File.generated(config, path, content=content))
    return files
