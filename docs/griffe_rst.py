"""A griffe extension (mkdocs.yml) rendering the reST bits of the docstrings as Markdown for the site.

The docstrings are Google style with a few Sphinx roles, kept so ``help()`` and editors read well:
``:math:`x``` becomes ``$x$`` (MathJax via pymdownx.arithmatex), a ``.. math::`` block ``$$ ... $$``,
``:func:`~a.b``` / ``:class:`` / ``:mod:`` / ... become code spans (``b``, or the full path without ``~``),
a paragraph ending in ``::`` (a reST literal block) ends in ``:`` with its indented block fenced as code, and
doctest runs (``>>>``) are fenced as ``pycon``.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import griffe

_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Classes built from tables at run time have a ``(params, **kwargs)`` signature there; their real one is in
# the stubs tests/stubgen.py generates (what type checkers read), shown on the site instead.
_STUBS = {
    "jaxopt_losses.compat.optim": "jaxopt_losses/compat/optim/_signatures.pyi",
    "jaxopt_losses.compat.nn": "jaxopt_losses/compat/nn/_loss.pyi",
}
_stub_modules: dict[str, griffe.Module] = {}


def _stub_init(module: str, name: str) -> griffe.Object | griffe.Alias | None:
    path = _STUBS.get(module)
    if path is None:
        return None
    if module not in _stub_modules:
        file = _ROOT / path
        _stub_modules[module] = griffe.visit(f"{module}._stub", file, file.read_text())
    cls = _stub_modules[module].members.get(name)
    return cls.members.get("__init__") if cls is not None else None

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|py:\w+):`(~?)([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")


def _role(m: re.Match[str]) -> str:
    target = m.group(2)
    return f"`{target.rsplit('.', 1)[-1] if m.group(1) else target}`"


def _blocks(text: str) -> str:
    """``.. math::`` and ``::`` literal blocks (an indented block after a line) as $$ / fenced code."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        math = stripped.startswith(".. math::")
        literal = not math and stripped.endswith("::") and not stripped.startswith("..")
        if not (math or literal):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        body: list[str] = []
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        while body and not body[-1].strip():
            body.pop()
        code = [b for b in body if b.strip()]
        if not code:  # not a block after all
            out.append(line)
            i += 1
            continue
        inner = min(len(b) - len(b.lstrip()) for b in code)
        pad = " " * indent
        if math:
            first = stripped[len(".. math::") :].strip()
            math_lines = [first] if first else []
            out += [pad + "$$", *(pad + m for m in math_lines), *(pad + b[inner:] for b in body), pad + "$$"]
        else:
            head = line.rstrip()[:-1].rstrip()  # "Update rule::" -> "Update rule:"; a lone "::" disappears
            if head.strip():
                out.append(head if head.endswith(":") else head + ":")
            out += ["", pad + "```text", *(pad + b[inner:] for b in body), pad + "```"]
        out.append("")
        i = j
    return "\n".join(out)


def _doctests(text: str) -> str:
    """Doctest runs (a ``>>>`` line up to the next blank line) fenced as ``pycon`` code."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        pad = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        j = i
        while j < len(lines) and lines[j].strip():
            j += 1
        out += [pad + "```pycon", *(line[len(pad) :] for line in lines[i:j]), pad + "```"]
        i = j
    return "\n".join(out)


_EXAMPLE = re.compile(r"^(\s*)Examples?:\s*$")


def _example_sections(text: str) -> str:
    """``Example:`` sections as plain text (a bold title, the body dedented) so doctests can be fenced."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _EXAMPLE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = len(m.group(1))
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            j += 1
        body = lines[i + 1 : j]
        inner = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=indent)
        out += [m.group(1) + "**Example:**", "", *(m.group(1) + b[inner:] for b in body)]
        i = j
    return "\n".join(out)


def rst_to_markdown(text: str) -> str:
    text = _doctests(_blocks(_example_sections(text)))
    text = _MATH.sub(lambda m: f"${m.group(1)}$", text)
    return _ROLE.sub(_role, text)


class RstRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
        if obj.is_class and obj.parent is not None:
            init = _stub_init(obj.parent.path, obj.name)
            if isinstance(init, griffe.Function):
                typed = griffe.Function("__init__", parameters=init.parameters, returns=None)
                obj.set_member("__init__", typed)
