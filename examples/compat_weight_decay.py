"""Weight decay: L2 penalty in SGD/Adam, decoupled in AdamW, and per-group options (no decay on biases).

The PyTorch original::

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    optimizer = torch.optim.Adam([
        {"params": model.fc.weight, "weight_decay": 1e-4},
        {"params": model.fc.bias, "weight_decay": 0.0},
    ], lr=1e-3)
"""

import jax
import jax.numpy as jnp
from flax import nnx

import jaxopt_losses.compat as torch


def main():
    x = jax.random.normal(jax.random.key(0), (32, 8))
    y = x[:, :1] * 2.0
    criterion = torch.nn.MSELoss()

    norms = {}
    for name, make in {
        "none": lambda m: torch.optim.SGD(m, lr=0.05),
        "SGD weight_decay=0.1": lambda m: torch.optim.SGD(m, lr=0.05, weight_decay=0.1),
        "AdamW weight_decay=0.5": lambda m: torch.optim.AdamW(m, lr=0.05, weight_decay=0.5),
    }.items():
        model = nnx.Linear(8, 1, rngs=nnx.Rngs(0))
        opt = make(model)
        grad_fn = nnx.jit(nnx.value_and_grad(lambda m: criterion(m(x), y)))
        for _ in range(50):
            _, grads = grad_fn(model)
            opt.step(grads)
        norms[name] = float(jnp.linalg.norm(model.kernel[...]))
        print(f"{name:24s} |W| = {norms[name]:.4f}")
    assert norms["SGD weight_decay=0.1"] < norms["none"]

    # param groups: a pytree per group (here: decay the kernel, not the bias)
    model = nnx.Linear(8, 1, rngs=nnx.Rngs(0))
    params = {"kernel": model.kernel[...], "bias": model.bias[...]}
    opt = torch.optim.Adam(
        [{"params": params["kernel"], "weight_decay": 1e-2}, {"params": params["bias"], "weight_decay": 0.0}],
        lr=1e-2,
    )

    def loss_fn(kernel, bias):
        return criterion(x @ kernel + bias, y)

    grad_fn = jax.jit(jax.grad(loss_fn, argnums=(0, 1)))
    for _ in range(50):
        g_kernel, g_bias = grad_fn(*opt.params)
        opt.step([g_kernel, g_bias])  # one grads entry per group
    print("param groups:", [(g["weight_decay"], g["lr"]) for g in opt.param_groups])


if __name__ == "__main__":
    main()
