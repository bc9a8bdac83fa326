"""MSE, cross-entropy, binary cross-entropy and Huber losses from PyTorch, unchanged.

The PyTorch original::

    import torch
    import torch.nn as nn

    mse = nn.MSELoss()
    print(mse(torch.tensor([2.5, 0.0, 2.0]), torch.tensor([3.0, -0.5, 2.0])))

    ce = nn.CrossEntropyLoss()
    logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    print(ce(logits, torch.tensor([0, 1])))

    bce = nn.BCELoss()
    print(bce(torch.sigmoid(torch.tensor([0.8, -1.2, 2.0])), torch.tensor([1.0, 0.0, 1.0])))

    huber = nn.HuberLoss(delta=1.0)
    print(huber(torch.tensor([2.5, 0.0, 2.0, 8.0]), torch.tensor([3.0, -0.5, 2.0, 1.0])))
"""

import jax
import jax.numpy as jnp

import jaxopt_losses.compat as torch


def main():
    mse = torch.nn.MSELoss()
    v = mse(jnp.array([2.5, 0.0, 2.0]), jnp.array([3.0, -0.5, 2.0]))
    print("MSELoss", float(v))
    assert abs(float(v) - 0.5 / 3) < 1e-6

    ce = torch.nn.CrossEntropyLoss()
    logits = jnp.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    v = ce(logits, jnp.array([0, 1]))
    print("CrossEntropyLoss", float(v))
    assert (
        abs(float(v) - float(-jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), jnp.array([0, 1])]))) < 1e-6
    )

    bce = torch.nn.BCELoss()
    v = bce(jax.nn.sigmoid(jnp.array([0.8, -1.2, 2.0])), jnp.array([1.0, 0.0, 1.0]))
    print("BCELoss", float(v))

    huber = torch.nn.HuberLoss(delta=1.0)
    v = huber(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 1.0]))
    print("HuberLoss", float(v))
    assert abs(float(v) - (0.125 + 0.125 + 0.0 + 6.5) / 4) < 1e-6


if __name__ == "__main__":
    main()
