"""Package-level contracts: torch is never imported by the library, and every advertised name resolves."""

import subprocess
import sys

import pytest

import jaxopt_losses.losses
import jaxopt_losses.optim


def test_import_never_imports_torch():
    code = (
        "import sys, jaxopt_losses, jaxopt_losses.optim as o, jaxopt_losses.losses as l, "
        "jaxopt_losses.schedules, jaxopt_losses.clip, jaxopt_losses.compat\n"
        "[getattr(jaxopt_losses, n) for n in jaxopt_losses.__all__]\n"
        "[getattr(o, n) for n in o.__all__]; [getattr(l, n) for n in l.__all__]\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", [jaxopt_losses.optim, jaxopt_losses.losses], ids=lambda m: m.__name__)
def test_every_exported_name_resolves(module):
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert sorted(dir(module)) == sorted(module.__all__)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jaxopt_losses.optim.nope  # noqa: B018
