"""The article's RNN example, step for step against torch: ``MyRNNModel`` (``nn.LSTM(input_size, hidden_size,
num_layers=2, batch_first=True)`` + ``nn.Linear`` on the last time step) trained with
``SGD(model.parameters(), lr=0.01, momentum=0.9)`` + ``MSELoss`` on a real sequence (the yearly sunspot
numbers shipped with statsmodels), and the same with ``nn.GRU`` and ``nn.RNN``.

The model is written once (:func:`define_model`) and instantiated from ``torch.nn`` and from
``jaxopt_losses.compat.nn``: same source, imports changed. Ours starts from the torch model's
``state_dict``; losses and every parameter are compared after every step; at the end our ``state_dict``
loads back into torch. Also runs ``examples/article_rnn.py`` (the port) beside
``examples/article_rnn_torch.py`` (the original) and counts the lines that differ.
"""

from __future__ import annotations

import difflib
import runpy
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as compat

EXAMPLES = Path(__file__).parent.parent / "examples"
STEPS, BATCH, WINDOW, HIDDEN = 27, 32, 10, 8
# measured max deviations over the 27 steps (float32): losses ~1e-7 relative, parameters ~1e-7 absolute
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def define_model(nn):
    """The article's model, written once; ``nn`` is ``torch.nn`` or ``jaxopt_losses.compat.nn``."""

    class MyRNNModel(nn.Module):
        def __init__(self, input_size, hidden_size, output_size, recurrent="LSTM"):
            super().__init__()
            self.rnn = getattr(nn, recurrent)(input_size, hidden_size, num_layers=2, batch_first=True)
            self.fc = nn.Linear(hidden_size, output_size)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.fc(out[:, -1, :])

    return MyRNNModel


def sunspot_windows(dtype):
    """Every ``WINDOW`` consecutive standardised yearly sunspot numbers (1700-2008) and the next one."""
    from statsmodels.datasets import sunspots

    series = sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float64)
    series = ((series - series.mean()) / series.std()).astype(dtype)
    x = np.stack([series[i : i + WINDOW] for i in range(len(series) - WINDOW)])[..., None]
    return x, series[WINDOW:, None]


def batches(x, y):
    n = (len(x) // BATCH) * BATCH  # full batches only
    for step in range(STEPS):
        i = (step * BATCH) % n
        yield x[i : i + BATCH], y[i : i + BATCH]


def train_torch(model, x, y):
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses, params = [], []
    for xb, yb in batches(torch.from_numpy(x), torch.from_numpy(y)):
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        params.append({k: v.detach().numpy().copy() for k, v in model.state_dict().items()})
    return losses, params


def train_compat(model, x, y):
    criterion = compat.nn.MSELoss()
    optimizer = compat.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m, xb, yb: criterion(m(xb), yb)))
    losses, params = [], []
    for xb, yb in batches(jnp.asarray(x), jnp.asarray(y)):
        optimizer.zero_grad()
        loss, grads = grad_fn(model, xb, yb)  # loss = criterion(model(xb), yb); loss.backward()
        optimizer.step(grads)
        losses.append(loss.item())
        params.append({k: np.asarray(v) for k, v in model.state_dict().items()})
    return losses, params


def _torch_model(recurrent, dtype):
    model = define_model(torch.nn)(1, HIDDEN, 1, recurrent)
    return model.double() if dtype == np.float64 else model


def _run(recurrent, dtype):
    torch.manual_seed(0)
    torch_model = _torch_model(recurrent, dtype)
    ours = define_model(compat.nn)(1, HIDDEN, 1, recurrent).to(jnp.dtype(dtype))
    assert list(ours.state_dict()) == list(torch_model.state_dict())
    ours.load_state_dict(torch_model.state_dict())
    x, y = sunspot_windows(dtype)
    ref_losses, ref_params = train_torch(torch_model, x, y)
    losses, params = train_compat(ours, x, y)

    loss_err = max(abs(a - b) / abs(b) for a, b in zip(losses, ref_losses, strict=True))
    param_err = max(
        float(np.max(np.abs(p[k] - r[k]) / np.maximum(1.0, np.abs(r[k]))))
        for p, r in zip(params, ref_params, strict=True)
        for k in r
    )
    assert loss_err <= TOL[dtype], f"loss rel err {loss_err:.3g}"
    assert param_err <= TOL[dtype], f"parameter err {param_err:.3g}"
    per_epoch = len(x) // BATCH  # the same batches, epoch after epoch: it trains
    assert np.mean(ref_losses[-per_epoch:]) < np.mean(ref_losses[:per_epoch])

    # ours -> torch: a fresh torch model takes our trained weights and predicts what torch's trained one does
    back = _torch_model(recurrent, dtype)
    back.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(
        back(xt).detach().numpy(), torch_model(xt).detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype]
    )
    print(f"{recurrent} {np.dtype(dtype).name}: loss rel err {loss_err:.2g}, parameter err {param_err:.2g}")


@pytest.mark.parametrize("recurrent", ["LSTM", "GRU", "RNN"])
def test_article_rnn_matches_torch_float32(recurrent):
    _run(recurrent, np.float32)


def test_article_lstm_matches_torch_float64(x64):
    _run("LSTM", np.float64)


def _code_lines(path):
    """The lines of a script after its module docstring, blank lines dropped."""
    text = path.read_text()
    end = text.index('"""', 3) + 3
    return [line for line in text[end:].splitlines() if line.strip()]


def test_article_example_runs_beside_the_torch_original(capsys):
    original, port = EXAMPLES / "article_rnn_torch.py", EXAMPLES / "article_rnn.py"
    for script in (original, port):  # fewer epochs than the scripts' default (30) to keep CI short
        runpy.run_path(str(script))["main"](epochs=8)
    assert capsys.readouterr().out.count("loss") == 4
    diff = list(difflib.unified_diff(_code_lines(original), _code_lines(port), lineterm="", n=0))
    removed = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    # imports (4 lines), torch.from_numpy -> jnp.asarray, the grad_fn line, the backward/step lines
    assert (len(removed), len(added)) == (6, 8), diff
