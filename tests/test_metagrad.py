"""Meta-gradients: differentiate a validation loss through K unrolled optimizer steps with respect to the
hyperparameters (lr, momentum, betas, eps, weight decay, ...), checked against central finite differences
in float64.

Every optimizer is differentiable in its continuous hyperparameters (``jax.grad``), with these caveats:

* rprop, adamax, amsgrad, radam, adafactor contain sign/max/threshold logic: the map is piecewise smooth,
  the gradient is that of the active piece (what finite differences see away from a switch); rprop's update
  does not depend smoothly on the gradient's value, only on its sign, yet it depends smoothly on ``lr``,
  ``etas`` and ``step_sizes`` (the step sizes), which is what is checked.
* muon orthogonalises in bfloat16: the rounding makes the map a staircase at bfloat16 resolution for any
  hyperparameter that reaches the Newton-Schulz input (``momentum``, and ``lr``/``weight_decay`` after the
  first step). ``jax.grad`` gives the derivative of the unrounded computation; it is checked on one step,
  where ``lr`` and ``weight_decay`` act after the orthogonalisation.
* nadam's ``betas[0]``/``momentum_decay`` and asgd's ``lr``/``lambd``/``alpha`` act through a float32
  scalar of the state (torch keeps ``mu_product`` and ``eta`` in float32), a staircase at float32
  resolution: checked with 1% finite-difference steps. asgd's ``t0`` only
  moves the averaged parameters ``ax``, not the trained ones, so its meta-gradient here is zero.
* lbfgs runs each step in a ``lax.while_loop`` (data-dependent iteration count), which JAX cannot
  reverse-differentiate: ``jax.grad`` raises; forward mode (``jax.jacfwd``/``jax.jvp``) works and is checked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_losses import optim

K = 8
RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 5))
Y = np.tanh(X @ RNG.standard_normal((5, 3))) + 0.1 * RNG.standard_normal((24, 3))
W0 = 0.3 * RNG.standard_normal((5, 3))
B0 = 0.1 * RNG.standard_normal(3)

# name -> (factory of a dict of hyperparameters, values at which the meta-gradient is checked)
CASES = {
    "sgd": (
        lambda h: optim.sgd(h["lr"], momentum=h["momentum"], dampening=h["dampening"], weight_decay=h["wd"]),
        dict(lr=0.1, momentum=0.8, dampening=0.1, wd=0.01),
    ),
    "sgd_nesterov": (
        lambda h: optim.sgd(h["lr"], momentum=h["momentum"], nesterov=True, weight_decay=h["wd"]),
        dict(lr=0.1, momentum=0.8, wd=0.01),
    ),
    "adam": (
        lambda h: optim.adam(h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"], weight_decay=h["wd"]),
        dict(lr=0.02, b1=0.85, b2=0.99, eps=1e-3, wd=0.01),
    ),
    "adam_amsgrad": (
        lambda h: optim.adam(h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"], amsgrad=True),
        dict(lr=0.02, b1=0.85, b2=0.99, eps=1e-3),
    ),
    "adamw": (lambda h: optim.adamw(h["lr"], weight_decay=h["wd"]), dict(lr=0.02, wd=0.1)),
    "rmsprop": (
        lambda h: optim.rmsprop(
            h["lr"],
            alpha=h["alpha"],
            eps=h["eps"],
            weight_decay=h["wd"],
            momentum=h["momentum"],
            centered=True,
        ),
        dict(lr=0.01, alpha=0.9, eps=1e-3, wd=0.01, momentum=0.5),
    ),
    "adagrad": (
        lambda h: optim.adagrad(
            h["lr"],
            lr_decay=h["lr_decay"],
            weight_decay=h["wd"],
            initial_accumulator_value=h["init"],
            eps=h["eps"],
        ),
        dict(lr=0.1, lr_decay=0.05, wd=0.01, init=0.1, eps=1e-3),
    ),
    "adadelta": (
        lambda h: optim.adadelta(h["lr"], rho=h["rho"], eps=h["eps"], weight_decay=h["wd"]),
        dict(lr=1.0, rho=0.8, eps=1e-3, wd=0.01),
    ),
    "adamax": (
        lambda h: optim.adamax(h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"], weight_decay=h["wd"]),
        dict(lr=0.02, b1=0.85, b2=0.99, eps=1e-3, wd=0.01),
    ),
    "nadam": (
        lambda h: optim.nadam(
            h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"], weight_decay=h["wd"], momentum_decay=h["md"]
        ),
        dict(lr=0.02, b1=0.85, b2=0.99, eps=1e-3, wd=0.01, md=0.01),
        {"b1", "md"},  # through mu_product, a float32 scalar as in torch
    ),
    "radam": (
        lambda h: optim.radam(h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"], weight_decay=h["wd"]),
        dict(lr=0.02, b1=0.85, b2=0.9, eps=1e-3, wd=0.01),  # b2=0.9: rectified from step 6 of 8
    ),
    "asgd": (
        lambda h: optim.asgd(h["lr"], lambd=h["lambd"], alpha=h["alpha"], weight_decay=h["wd"]),
        dict(lr=0.1, lambd=0.05, alpha=0.75, wd=0.01),
        {"lr", "lambd", "alpha"},  # through eta, a float32 scalar as in torch
    ),
    "rprop": (
        lambda h: optim.rprop(h["lr"], etas=(h["em"], h["ep"]), step_sizes=(1e-6, h["hi"])),
        dict(lr=0.01, em=0.5, ep=1.2, hi=0.05),
    ),
    "adafactor": (
        lambda h: optim.adafactor(
            h["lr"], beta2_decay=h["decay"], eps=(1e-3, h["eps2"]), weight_decay=h["wd"]
        ),
        dict(lr=0.05, decay=-0.8, eps2=1e-3, wd=0.01),
    ),
    "muon": (lambda h: optim.muon(h["lr"], weight_decay=h["wd"]), dict(lr=0.05, wd=0.1)),
    "sparse_adam": (
        lambda h: optim.sparse_adam(h["lr"], betas=(h["b1"], h["b2"]), eps=h["eps"]),
        dict(lr=0.02, b1=0.85, b2=0.99, eps=1e-3),
    ),
}


def make_meta_loss(name, steps=K):
    """``h -> validation loss after ``steps`` optimizer steps on the training half`` (float64)."""
    factory = CASES[name][0] if name in CASES else None
    x_tr, y_tr, x_va, y_va = (jnp.asarray(a) for a in (X[:16], Y[:16], X[16:], Y[16:]))
    params0 = {"w": jnp.asarray(W0)} if name == "muon" else {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}

    def loss(p, x, y):
        return jnp.mean((jnp.tanh(x @ p["w"] + p.get("b", 0.0)) - y) ** 2)

    def meta_loss(h):
        if name == "lbfgs":
            tx = optim.lbfgs(h["lr"], max_iter=3, history_size=3)
        else:
            tx = factory(h)
        train = lambda p: loss(p, x_tr, y_tr)

        def step(carry, _):
            params, state = carry
            value, grads = jax.value_and_grad(train)(params)
            extra = dict(value=value, value_fn=train) if name == "lbfgs" else {}
            updates, state = tx.update(grads, state, params, **extra)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params0, tx.init(params0)), None, steps)
        return loss(params, x_va, y_va)

    return meta_loss


def central_differences(f, h, rel=1e-6, keys=None):
    out = {}
    for k, v in h.items():
        if keys is not None and k not in keys:
            continue
        d = rel * max(abs(float(v)), 1e-3)
        out[k] = float((f(dict(h, **{k: v + d})) - f(dict(h, **{k: v - d}))) / (2 * d))
    return out


def test_every_optimizer_is_checked():
    names = {n.split("_")[0] if n != "sparse_adam" else n for n in CASES} | {"lbfgs"}
    # param groups compose the factories above (optax.multi_transform): nothing new to differentiate
    composed = {"asgd_averaged_params", "param_groups", "masked_weight_decay", "decay_mask", "muon_with"}
    composed.add("apply_step")  # runs a step of any transformation, not a factory
    assert names == {n for n in optim.__all__ if n.islower() and n not in composed}


@pytest.mark.parametrize("name", sorted(CASES))
def test_meta_gradient_matches_finite_differences(x64, name):
    h = {k: jnp.asarray(v, jnp.float64) for k, v in CASES[name][1].items()}
    coarse = CASES[name][2] if len(CASES[name]) > 2 else set()
    f = jax.jit(make_meta_loss(name, steps=1 if name == "muon" else K))
    grads = jax.jit(jax.grad(f))(h)
    fd = central_differences(f, h)
    # Hyperparameters that reach the update only through a float32 scalar of the state (torch keeps nadam's
    # mu_product and asgd's eta in float32): the map is a staircase at float32 resolution, so finite
    # differences need a 1% step there (measured agreement <= 4e-4, forward mode agrees to 1e-8).
    fd.update(central_differences(f, h, rel=1e-2, keys=coarse))
    for k in h:
        g = float(grads[k])
        assert np.isfinite(g), k
        rtol = 1e-3 if k in coarse else 1e-5
        np.testing.assert_allclose(g, fd[k], rtol=rtol, atol=1e-9, err_msg=f"d meta_loss / d {k}")
    # The check is not vacuous: the hyperparameters matter.
    assert max(abs(float(grads[k])) for k in ("lr",)) > 1e-4


def test_lbfgs_forward_mode_meta_gradient(x64):
    f = make_meta_loss("lbfgs", steps=3)
    h = {"lr": jnp.asarray(0.5, jnp.float64)}
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work for lax.while_loop"):
        jax.grad(f)(h)
    g = float(jax.jit(jax.jacfwd(f))(h)["lr"])
    fd = central_differences(jax.jit(f), h)["lr"]
    assert abs(g) > 1e-4
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-9)
