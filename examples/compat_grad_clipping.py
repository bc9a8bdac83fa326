"""Gradient clipping by norm and by value.

The PyTorch original::

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    # or: torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    optimizer.step()

The compat functions take the gradients (the ``nnx.State`` from ``nnx.grad``) instead of the parameters
and clip them in place, as torch does; ``clip_grad_norm_`` returns the total norm before clipping.
"""

import jax
import jax.numpy as jnp
from flax import nnx

import jaxopt_losses.compat as torch


def main():
    x = jax.random.normal(jax.random.key(0), (32, 4)) * 10
    y = jnp.sum(x, axis=1, keepdims=True) * 10
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model, lr=0.01)
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m: criterion(m(x), y)))
    for step in range(20):
        loss, grads = grad_fn(model)
        total_norm = torch.nn.utils.clip_grad_norm_(grads, max_norm=1.0)  # grads clipped in place
        assert float(torch.nn.utils.get_total_norm(grads)) <= 1.0 + 1e-5
        optimizer.step(grads)
        if step % 5 == 0:
            print(
                f"step {step:2d} loss {float(loss):10.2f} grad norm before clipping {total_norm.item():10.2f}"
            )

    _, grads = grad_fn(model)
    torch.nn.utils.clip_grad_value_(grads, clip_value=0.5)
    assert all(float(jnp.max(jnp.abs(g))) <= 0.5 for g in jax.tree.leaves(grads))
    optimizer.step(grads)


if __name__ == "__main__":
    main()
