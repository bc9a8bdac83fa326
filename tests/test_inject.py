"""Every numeric hyperparameter through optax.inject_hyperparams: betas / etas / step_sizes / Adafactor's
eps as separate keywords, the optax-style learning_rate alias, Muon's ns_steps and eps; against live torch
with the values changed mid-run, and calls without the new keywords unchanged."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from torch_ref import SetEachStep, assert_trajectories_close, grad_stream, init_params, run_torch

from jaxopt_losses import optim

STEPS = 24
SHAPES = ((3,), (4, 5))
P0 = init_params(SHAPES)
GRADS = grad_stream(SHAPES, STEPS)


def _run_injected(tx, changes, p0=P0, grads=GRADS):
    """Jitted run of an inject_hyperparams transformation; ``changes[t] = {name: value}`` set before step t"""
    params = [jnp.asarray(p) for p in p0]
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    traj = []
    for t, g in enumerate(grads):
        for k, v in changes.get(t, {}).items():
            state.hyperparams[k] = jnp.asarray(v, state.hyperparams[k].dtype)
        params, state = step(params, state, [jnp.asarray(x) for x in g])
        traj.append([np.asarray(p) for p in params])
    assert step._cache_size() == 1  # changing a hyperparameter does not recompile
    return traj, state


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "radam", "adamax"])
def test_betas_injectable_and_changed_mid_run_like_torch(name):
    kw = dict(lr=0.01, weight_decay=0.01)
    tx = optax.inject_hyperparams(getattr(optim, name))(beta1=0.9, beta2=0.999, **kw)
    ours, state = _run_injected(tx, {12: {"beta1": 0.5, "beta2": 0.9}})
    assert {"beta1", "beta2"} <= set(state.hyperparams)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "nadam": torch.optim.NAdam}
    cls |= {"radam": torch.optim.RAdam, "adamax": torch.optim.Adamax}
    betas = lambda t: (0.9, 0.999) if t < 12 else (0.5, 0.9)
    ref = run_torch(cls[name], kw, P0, GRADS, scheduler=lambda o: SetEachStep(o, "betas", betas))
    assert_trajectories_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_learning_rate_alias_is_in_the_injected_state_and_drives_lr():
    tx = optax.inject_hyperparams(optim.sgd)(learning_rate=0.05, momentum=0.9)
    ours, state = _run_injected(tx, {10: {"learning_rate": 0.01}})
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.01)
    lr = lambda t: 0.05 if t < 10 else 0.01
    ref = run_torch(
        torch.optim.SGD, dict(momentum=0.9), P0, GRADS, scheduler=lambda o: SetEachStep(o, "lr", lr)
    )
    assert_trajectories_close(ours, ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="pass lr or learning_rate, not both"):
        optim.adam(lr=0.1, learning_rate=0.2)


def test_rprop_pairs_injectable_like_torch():
    tx = optax.inject_hyperparams(optim.rprop)(
        lr=0.01, etaminus=0.5, etaplus=1.2, step_size_min=1e-6, step_size_max=50.0
    )
    ours, _ = _run_injected(tx, {8: {"etaminus": 0.3, "etaplus": 1.5, "step_size_max": 0.02}})
    etas = lambda t: (0.5, 1.2) if t < 8 else (0.3, 1.5)
    sizes = lambda t: (1e-6, 50.0) if t < 8 else (1e-6, 0.02)

    class Both:
        def __init__(self, o):
            self.a, self.b = SetEachStep(o, "etas", etas), SetEachStep(o, "step_sizes", sizes)

        def step(self):
            self.a.step()
            self.b.step()

    ref = run_torch(torch.optim.Rprop, dict(lr=0.01), P0, GRADS, scheduler=Both)
    assert_trajectories_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_muon_injectable_bit_for_bit_with_static_hyperparameters():
    """ns_steps and eps arrive as arrays under inject_hyperparams (a fori_loop instead of the unrolled
    Python loop): the same bfloat16 results, bit for bit."""
    shapes = ((6, 4),)
    p0, grads = init_params(shapes), grad_stream(shapes, 8)
    kw = dict(lr=0.02, ns_steps=4, eps=1e-5)
    injected, state = _run_injected(optax.inject_hyperparams(optim.muon)(**kw), {}, p0, grads)
    assert {"ns_steps", "eps", "momentum"} <= set(state.hyperparams)
    plain = _run_injected(
        optax.inject_hyperparams(optim.muon, static_args=("ns_steps", "eps"))(**kw), {}, p0, grads
    )
    for a, b in zip(injected, plain[0], strict=True):
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "name,pairs",
    [
        ("adam", {"betas": ("beta1", "beta2")}),
        ("sparse_adam", {"betas": ("beta1", "beta2")}),
        ("rprop", {"etas": ("etaminus", "etaplus"), "step_sizes": ("step_size_min", "step_size_max")}),
        ("adafactor", {"eps": ("eps1", "eps2")}),
        ("sgd", {}),
        ("lbfgs", {}),
    ],
)
def test_signatures_keep_torch_arguments_and_add_the_keywords(name, pairs):
    factory = getattr(optim, name)
    sig = inspect.signature(factory)
    torch_cls = {"adam": "Adam", "sparse_adam": "SparseAdam", "rprop": "Rprop", "adafactor": "Adafactor"}
    torch_cls |= {"sgd": "SGD", "lbfgs": "LBFGS"}
    torch_args = list(inspect.signature(getattr(torch.optim, torch_cls[name])).parameters)[1:]  # no params
    assert list(sig.parameters)[: len(torch_args)] == torch_args
    added = ["learning_rate", *(n for parts in pairs.values() for n in parts)]
    assert list(sig.parameters)[len(torch_args) :] == added
    assert all(sig.parameters[n].default is None for n in added)


def test_injectable_requires_the_aliases_declared_last():
    """The aliases live in the factory's own signature (so type checkers see them): a factory that does
    not declare them, keyword-only and last, default None, is refused at decoration."""
    from jaxopt_losses.optim._base import injectable

    def missing(lr=1e-3, betas=(0.9, 0.999), *, learning_rate=None):
        raise AssertionError

    def misplaced(lr=1e-3, *, learning_rate=None, maximize=False):
        raise AssertionError

    for factory, pairs in ((missing, {"betas": ("beta1", "beta2")}), (misplaced, {})):
        with pytest.raises(TypeError, match="must end with the keyword-only aliases"):
            injectable(**pairs)(factory)


def test_keywords_equal_the_tuple_form_bit_for_bit():
    tuple_form = optim.adam(lr=0.01, betas=(0.8, 0.99))
    keyword_form = optim.adam(learning_rate=0.01, beta1=0.8, beta2=0.99)
    params = [jnp.asarray(p) for p in P0]
    g = [jnp.asarray(x) for x in GRADS[0]]
    a, _ = tuple_form.update(g, tuple_form.init(params), params)
    b, _ = keyword_form.update(g, keyword_form.init(params), params)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_lbfgs_injects_learning_rate_with_its_shape_integers_static():
    loss = lambda p: jnp.sum((p["w"] - 1.0) ** 2 * jnp.arange(1.0, 4.0))
    params = {"w": jnp.zeros(3)}
    injected = optax.inject_hyperparams(optim.lbfgs, static_args=("max_iter", "history_size", "max_eval"))(
        learning_rate=0.5, max_iter=3, history_size=2
    )
    plain = optim.lbfgs(lr=0.5, max_iter=3, history_size=2)
    out = []
    for tx in (injected, plain):
        state = tx.init(params)
        value, grads = jax.value_and_grad(loss)(params)
        run = jax.jit(lambda g, s, p, v, tx=tx: tx.update(g, s, p, value=v, value_fn=loss))
        updates, state = run(grads, state, params, value)
        out.append(updates["w"])
    assert "learning_rate" in injected.init(params).hyperparams
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)
