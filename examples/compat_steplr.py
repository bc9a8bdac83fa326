"""StepLR: decay the learning rate by ``gamma`` every ``step_size`` epochs.

The PyTorch original::

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(100):
        train(...)          # optimizer.step() inside
        scheduler.step()
        print(epoch, scheduler.get_last_lr())
"""

import jax
import jax.numpy as jnp
from flax import nnx

import jaxopt_losses.compat as torch


def main():
    x = jax.random.normal(jax.random.key(0), (32, 4))
    y = jnp.sum(x, axis=1, keepdims=True)
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m: criterion(m(x), y)))
    lrs = []
    for _ in range(100):
        loss, grads = grad_fn(model)
        optimizer.step(grads)  # lr changes never recompile the step
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    print(
        "lr at epochs 0, 29, 30, 60, 99:",
        [round(lrs[i], 6) for i in (0, 29, 30, 60, 99)],
        "loss",
        float(loss),
    )
    assert abs(lrs[28] - 0.1) < 1e-7 and abs(lrs[29] - 0.01) < 1e-8 and abs(lrs[99] - 1e-4) < 1e-9


if __name__ == "__main__":
    main()
