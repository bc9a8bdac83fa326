"""Learning-rate sweep in one compiled program: ``jax.vmap`` over the ``lr`` of a jaxopt_losses optimizer.

Trains K copies of a small MLP on scikit-learn's bundled digits dataset (no network needed), one per
learning rate, all in a single jitted ``vmap``: the optimizers accept array-valued hyperparameters, so the
learning rate is just a batched input. Writes ``lr_sweep.png`` (loss curves, one per learning rate) and
``lr_sweep.json`` to ``--out``.

    python examples/lr_sweep.py --out /tmp/sweep --optimizer adam --lrs 1e-3,3e-3,1e-2,3e-2 --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_losses import optim
from jaxopt_losses.losses import cross_entropy

OPTIMIZERS = {
    "sgd": lambda lr: optim.sgd(lr, momentum=0.9),
    "adam": lambda lr: optim.adam(lr),
    "adamw": lambda lr: optim.adamw(lr, weight_decay=1e-2),
    "rmsprop": lambda lr: optim.rmsprop(lr),
}


def load_data(seed: int = 0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = x[perm], y[perm].astype(np.int32)
    n_train = int(0.8 * len(x))
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def init_params(seed: int = 0, hidden: int = 32):
    rng = np.random.default_rng(seed)
    return {
        "w1": jnp.asarray(rng.standard_normal((64, hidden)) / 8.0, jnp.float32),
        "b1": jnp.zeros(hidden, jnp.float32),
        "w2": jnp.asarray(rng.standard_normal((hidden, 10)) / np.sqrt(hidden), jnp.float32),
        "b2": jnp.zeros(10, jnp.float32),
    }


def make_train(optimizer: str, steps: int, batch: int = 128, seed: int = 0):
    """``train(lr) -> (train losses per step, test accuracy)``: a pure function of a scalar ``lr``."""
    (x_tr, y_tr), (x_te, y_te) = load_data(seed)
    idx = np.random.default_rng(seed + 1).integers(0, len(x_tr), size=(steps, batch))
    xb, yb = jnp.asarray(x_tr[idx]), jnp.asarray(y_tr[idx])  # the same minibatches for every lr
    params0 = init_params(seed)

    def logits(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def loss_fn(p, x, y):
        return cross_entropy(logits(p, x), y)

    def train(lr):
        tx = OPTIMIZERS[optimizer](lr)

        def step(carry, batch):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), losses = jax.lax.scan(step, (params0, tx.init(params0)), (xb, yb))
        acc = jnp.mean(jnp.argmax(logits(params, jnp.asarray(x_te)), -1) == jnp.asarray(y_te))
        return losses, acc

    return train


def train_one(lr: float, *, optimizer: str = "adam", steps: int = 200) -> np.ndarray:
    """The training losses of one separate run (what each row of the sweep must equal)."""
    return np.asarray(jax.jit(make_train(optimizer, steps))(jnp.float32(lr))[0])


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for lr_sweep.png and lr_sweep.json")
    parser.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS))
    parser.add_argument("--lrs", default="1e-3,3e-3,1e-2,3e-2,1e-1", help="comma-separated learning rates")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    lrs = [float(v) for v in args.lrs.split(",")]

    sweep = jax.jit(jax.vmap(make_train(args.optimizer, args.steps)))  # K runs, one program
    losses, accs = sweep(jnp.asarray(lrs, jnp.float32))
    losses, accs = np.asarray(losses), np.asarray(accs)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(args.out, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for lr, curve, acc in zip(lrs, losses, accs, strict=True):
        ax.plot(curve, label=f"lr={lr:g} (test acc {acc:.3f})")
    ax.set(xlabel="step", ylabel="train cross-entropy", yscale="log", title=f"digits, {args.optimizer}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "lr_sweep.png"), dpi=100)
    plt.close(fig)
    result = {
        "optimizer": args.optimizer,
        "lrs": lrs,
        "train_loss": losses.tolist(),
        "test_acc": accs.tolist(),
    }
    with open(os.path.join(args.out, "lr_sweep.json"), "w") as f:
        json.dump(result, f)
    for lr, acc, curve in zip(lrs, accs, losses, strict=True):
        print(f"lr={lr:<8g} final loss {curve[-1]:.4f}  test accuracy {acc:.3f}")
    return result


if __name__ == "__main__":
    main()
