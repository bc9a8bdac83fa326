"""The article's RNN example ported to JAX with ``jaxopt_losses.compat``: ``MyRNNModel`` (a two-layer LSTM
and a linear head on the last time step) trained with SGD + momentum and MSELoss to predict next year's
sunspot number from the ten before.

``examples/article_rnn_torch.py`` is the PyTorch original; this file is the same script with the imports
changed, ``torch.from_numpy`` replaced by ``jnp.asarray``, and ``loss = criterion(...); loss.backward();
optimizer.step()`` replaced by ``loss, grads = grad_fn(model, xb, yb); optimizer.step(grads)`` with
``grad_fn = nnx.jit(nnx.value_and_grad(...))`` (``tests/test_article_rnn.py`` counts the changed lines: 6 of
the original's lines become 8). A torch ``state_dict`` loads into this model
(``model.load_state_dict(torch_model.state_dict())``) and ours into torch's.
The data: the yearly sunspot numbers 1700-2008 shipped with statsmodels (``statsmodels.datasets.sunspots``).
"""

import jax.numpy as jnp
import numpy as np
from flax import nnx
from statsmodels.datasets import sunspots

import jaxopt_losses.compat as torch
from jaxopt_losses.compat import nn


class MyRNNModel(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        out, _ = self.rnn(x)  # (batch, time, hidden)
        return self.fc(out[:, -1, :])


def sunspot_windows(window=10):
    """(x, y): every ``window`` consecutive standardised yearly values and the value that follows."""
    series = sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float32)
    series = (series - series.mean()) / series.std()
    x = np.stack([series[i : i + window] for i in range(len(series) - window)])[..., None]
    return x, series[window:, None]


def main(epochs=30, batch_size=32):
    torch.manual_seed(0)
    x, y = map(jnp.asarray, sunspot_windows())
    model = MyRNNModel(input_size=1, hidden_size=16, output_size=1)
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m, xb, yb: criterion(m(xb), yb)))  # compiled once
    for epoch in range(epochs):
        for i in range(0, len(x) - batch_size + 1, batch_size):  # full batches only
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            optimizer.zero_grad()
            loss, grads = grad_fn(model, xb, yb)  # loss = criterion(model(xb), yb); loss.backward()
            optimizer.step(grads)
        loss = criterion(model(x), y)
        if epoch == 0:
            first = loss.item()
        if epoch % 10 == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:2d}  loss {loss.item():.4f}")
    assert loss.item() < first  # it learns


if __name__ == "__main__":
    main()
