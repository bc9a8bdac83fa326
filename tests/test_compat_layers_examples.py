"""examples/article_cnn.py (the article's ResNet-18 example ported to compat) runs, and differs from its
PyTorch original examples/article_cnn_torch.py only in the imports and the backward call (the changed
lines README counts)."""

import difflib
import os
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def code_lines(path):
    """The lines after the module docstring (imports and code)."""
    text = path.read_text()
    return text[text.index('"""', 3) + 3 :].splitlines()


def changed_lines():
    """(lines of the original that the port removes, lines it adds), blank lines not counted."""
    original, port = code_lines(EXAMPLES / "article_cnn_torch.py"), code_lines(EXAMPLES / "article_cnn.py")
    diff = list(difflib.unified_diff(original, port, lineterm="", n=0))
    removed = [l[1:] for l in diff if l.startswith("-") and not l.startswith("---") and l[1:].strip()]
    added = [l[1:] for l in diff if l.startswith("+") and not l.startswith("+++") and l[1:].strip()]
    return removed, added


def test_article_cnn_port_changes_only_imports_and_backward():
    removed, added = changed_lines()
    # README: 7 of the original's 108 non-blank code lines are replaced by 9
    assert len(removed) == 7 and len(added) == 9, (removed, added)
    assert removed[:2] == ["import torch", "import torch.nn as nn"]
    assert "import jaxopt_losses.compat as torch" in added and "import jaxopt_losses.compat.nn as nn" in added
    assert any("loss.backward()" in l for l in removed)
    assert any("nnx.value_and_grad" in l for l in added)
    assert not any(
        "class " in l or "nn.Conv2d" in l or "def forward" in l for l in removed
    )  # model untouched
    assert len([l for l in code_lines(EXAMPLES / "article_cnn_torch.py") if l.strip()]) == 108


def test_article_cnn_runs(capsys):
    runpy.run_path(str(EXAMPLES / "article_cnn.py"), run_name="__main__")
    assert "train accuracy" in capsys.readouterr().out


@pytest.mark.skipif(not os.environ.get("JAXOPT_LOSSES_LONG"), reason="long run: set JAXOPT_LOSSES_LONG=1")
def test_article_cnn_torch_original_runs(capsys):
    runpy.run_path(str(EXAMPLES / "article_cnn_torch.py"), run_name="__main__")
    assert "train accuracy" in capsys.readouterr().out
