"""An RNN regressor trained with SGD + momentum and MSELoss (predict the next value of a sine wave).

The PyTorch original::

    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(input_size=1, hidden_size=16, batch_first=True)
            self.fc = nn.Linear(16, 1)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.fc(out[:, -1, :])

    model = RNNModel()
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
"""

import jax.numpy as jnp
from flax import nnx

import jaxopt_losses.compat as torch


class RNNModel(nnx.Module):
    def __init__(self, rngs):
        self.rnn = nnx.RNN(nnx.SimpleCell(1, 16, rngs=rngs))
        self.fc = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        out = self.rnn(x)  # (batch, time, hidden), batch first
        return self.fc(out[:, -1, :])


def main():
    t = jnp.linspace(0, 12, 200)
    wave = jnp.sin(t)
    window = 10
    x = jnp.stack([wave[i : i + window] for i in range(len(wave) - window)])[..., None]
    y = wave[window:][:, None]
    model = RNNModel(nnx.Rngs(0))
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model, lr=0.01, momentum=0.9)
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m: criterion(m(x), y)))
    for epoch in range(150):
        optimizer.zero_grad()
        loss, grads = grad_fn(model)
        optimizer.step(grads)
        if epoch == 0:
            first = float(loss)
        if epoch % 50 == 0:
            print(f"epoch {epoch:3d} loss {float(loss):.5f}")
    print(f"final loss {float(loss):.5f}")
    assert float(loss) < first / 5


if __name__ == "__main__":
    main()
