"""SGD, Momentum, Adam and RMSprop from PyTorch, unchanged, on a flax nnx model.

The PyTorch original (from the classic "optimizers and loss functions in PyTorch" article)::

    import torch
    import torch.nn as nn

    model = nn.Linear(10, 1)
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)                 # SGD
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)   # Momentum
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)               # Adam
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01)             # RMSprop

    for epoch in range(100):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()

With jaxopt_losses.compat the optimizer lines are the same; ``loss.backward(); optimizer.step()`` becomes
``loss, grads = nnx.value_and_grad(...)(model); optimizer.step(grads)``.
"""

import jax
import jax.numpy as jnp
from flax import nnx

import jaxopt_losses.compat as torch


def train(make_optimizer, steps=100):
    x = jax.random.normal(jax.random.key(0), (64, 10))
    y = x @ jnp.arange(1.0, 11.0)[:, None] / 10 + 0.5
    model = nnx.Linear(10, 1, rngs=nnx.Rngs(0))
    criterion = torch.nn.MSELoss()
    optimizer = make_optimizer(model)
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m: criterion(m(x), y)))
    first = None
    for _ in range(steps):
        optimizer.zero_grad()  # a no-op, kept for familiarity
        loss, grads = grad_fn(model)  # loss.backward()
        optimizer.step(grads)  # optimizer.step()
        first = float(loss) if first is None else first
    return first, float(loss)


OPTIMIZERS = {
    "SGD": lambda m: torch.optim.SGD(m, lr=0.01),
    "Momentum": lambda m: torch.optim.SGD(m, lr=0.01, momentum=0.9),
    "Adam": lambda m: torch.optim.Adam(m, lr=0.001),
    "RMSprop": lambda m: torch.optim.RMSprop(m, lr=0.01),
}


def main():
    for name, make in OPTIMIZERS.items():
        first, last = train(make)
        print(f"{name:9s} loss {first:.4f} -> {last:.4f}")
        assert last < first


if __name__ == "__main__":
    main()
