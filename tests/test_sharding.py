"""Every optimizer under FSDP/ZeRO-style sharding on a (data=2, model=4) mesh of 8 virtual CPU devices.

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` must be set before JAX initialises, so the checks run
in one subprocess (:data:`SCRIPT`) that reports JSON; the tests below assert on that report, one test per
optimizer and property:

* the state built by ``tx.init`` (eagerly and under ``jax.jit``) has, leaf for leaf, the sharding of its
  parameter: a state leaf shaped like its parameter has the same shard shape (never a replicated full-size
  buffer); adafactor's factored moments (a reduced axis of size 1) are sharded like the remaining axes;
  scalars (``count``, asgd's ``eta``/``mu``, sparse_adam's per-parameter ``step``) are free;
* the compiled HLO of ``jax.jit(tx.update)`` of every elementwise optimizer holds no collective
  (all-gather, all-reduce, reduce-scatter, all-to-all, collective-permute);
* a few sharded training steps (batch sharded over ``data``) equal the same steps on one device, and the
  parameters and state keep their shardings.

lbfgs is the exception by design: it flattens all parameters into one vector (``ravel_pytree``, torch's
concatenated parameter list), so its history buffers ``(history_size, n)`` are whatever XLA chooses for
that vector, and its update gathers; it still trains to the single-device result (compared in float64:
in float32 a last-bit difference of a sharded reduction can send the strong-Wolfe search down another
branch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_with_devices(code: str, n: int = 8, timeout: float = 240) -> str:
    """Run ``code`` with ``n`` virtual CPU devices in a fresh interpreter; return stdout, fail with stderr."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc.stdout


SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxopt_losses import optim

assert jax.device_count() == 8, jax.devices()
mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
SPECS = {"w1": P("data", "model"), "b1": P("model"), "w2": P("model", "data"), "s": P()}
SHAPES = {"w1": (12, 32), "b1": (32,), "w2": (32, 4), "s": ()}
rng = np.random.default_rng(0)
HOST = {k: (0.3 * rng.standard_normal(v)).astype(np.float32) for k, v in SHAPES.items()}
X = rng.standard_normal((16, 12)).astype(np.float32)
Y = rng.standard_normal((16, 4)).astype(np.float32)
COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")

CONFIGS = {
    "sgd": lambda: optim.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: optim.adam(1e-2, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda: optim.adamw(1e-2),
    "rmsprop": lambda: optim.rmsprop(1e-2, momentum=0.9, centered=True),
    "adagrad": lambda: optim.adagrad(0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    "adadelta": lambda: optim.adadelta(weight_decay=1e-3),
    "adamax": lambda: optim.adamax(1e-2),
    "nadam": lambda: optim.nadam(1e-2),
    "radam": lambda: optim.radam(1e-2),
    "asgd": lambda: optim.asgd(0.05, t0=2),
    "rprop": lambda: optim.rprop(1e-2),
    "adafactor": lambda: optim.adafactor(1e-2),
    "muon": lambda: optim.muon(0.02),
    "sparse_adam": lambda: optim.sparse_adam(1e-2),
    "lbfgs": lambda: optim.lbfgs(max_iter=4, history_size=3),
}
TWO_D_ONLY = {"muon"}


def loss_fn(p, x, y):
    h = jnp.tanh(x @ p["w1"] + p.get("b1", 0.0))
    return jnp.mean((h @ p["w2"] * p.get("s", 1.0) - y) ** 2)


def make_params(name, sharded):
    keys = ["w1", "w2"] if name in TWO_D_ONLY else list(SHAPES)
    if sharded:
        return {k: jax.device_put(HOST[k], NamedSharding(mesh, SPECS[k])) for k in keys}
    return {k: jnp.asarray(HOST[k]) for k in keys}


def sharding_problems(state, params):
    # Each state leaf vs the parameter whose key ends its path.
    pleaves = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    problems, seen = [], 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        ks = jax.tree_util.keystr(path)
        owner = [pk for pk in pleaves if ks.endswith(pk)]
        if leaf.ndim == 0:
            continue
        if not owner:
            problems.append(f"{ks}: array leaf {leaf.shape} that belongs to no parameter")
            continue
        p = pleaves[owner[0]]
        pshard = p.sharding.shard_shape(p.shape)
        got = leaf.sharding.shard_shape(leaf.shape)
        if leaf.ndim != p.ndim:
            problems.append(f"{ks}: rank {leaf.ndim} for a rank-{p.ndim} parameter")
            continue
        want = tuple(ps if n == pn else n for n, pn, ps in zip(leaf.shape, p.shape, pshard))
        seen += 1
        if got != want:
            problems.append(f"{ks}: shard shape {got}, want {want} (param {p.shape} -> {pshard})")
    return problems, seen


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


def train(tx, params, x, y, steps, lbfgs):
    def step(params, state):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if lbfgs:
            updates, state = tx.update(grads, state, params, value=value, value_fn=lambda q: loss_fn(q, x, y))
        else:
            updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step)
    state = jax.jit(tx.init)(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


report = {"names": sorted(CONFIGS)}
xs = jax.device_put(X, NamedSharding(mesh, P("data", None)))
ys = jax.device_put(Y, NamedSharding(mesh, P("data", None)))
for name, make in CONFIGS.items():
    tx, lb = make(), name == "lbfgs"
    params = make_params(name, True)
    r = {}
    for mode, init in (("eager", tx.init), ("jit", jax.jit(tx.init))):
        r[mode + "_problems"], r[mode + "_checked"] = sharding_problems(init(params), params)
    if not lb:
        state = tx.init(params)
        hlo = jax.jit(tx.update).lower(params, state, params).compile().as_text()
        r["collectives"] = [c for c in COLLECTIVES if c in hlo]
    if lb:
        st = jax.jit(tx.init)(params)
        r["lbfgs_history_shape"] = list(st.old_dirs.shape)
        # strong-Wolfe branches on loss comparisons: in float32 a last-bit difference of a sharded reduction
        # can pick another branch (measured: 0.09 apart after one step), so lbfgs trains in float64 here.
        with jax.enable_x64(True):
            tx = optim.lbfgs(max_iter=4, history_size=3, line_search_fn="strong_wolfe")
            cast = lambda t: jax.tree.map(lambda a: a.astype(jnp.float64), t)
            p_sh, _ = train(tx, cast(params), cast(xs), cast(ys), 2, True)
            x1, y1 = jnp.asarray(X, jnp.float64), jnp.asarray(Y, jnp.float64)
            p_one, _ = train(tx, cast(make_params(name, False)), x1, y1, 2, True)
    else:
        p_sh, s_sh = train(tx, params, xs, ys, 6, False)
        p_one, _ = train(tx, make_params(name, False), jnp.asarray(X), jnp.asarray(Y), 6, False)
        r["trained_problems"], _ = sharding_problems(s_sh, p_sh)
    r["max_diff"] = max_diff(p_sh, p_one)
    r["moved"] = max_diff(p_one, HOST)
    r["param_shardings_kept"] = all(
        p_sh[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim) for k in params
    )
    report[name] = r

# The checker itself must be able to fail: a plain jnp.zeros_like state under jit lands unsharded.
params = make_params("sgd", True)
bad = jax.jit(lambda p: jax.tree.map(jnp.zeros_like, p))(params)
report["checker_flags_unsharded"] = len(sharding_problems(bad, params)[0]) > 0
print("REPORT" + json.dumps(report))
"""

ELEMENTWISE = [
    "sgd",
    "adam",
    "adamw",
    "rmsprop",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "asgd",
    "rprop",
    "sparse_adam",
]
# Reductions over a sharded axis are part of the algorithm: adafactor's row/column means and RMS clipping,
# muon's Newton-Schulz matrix products; lbfgs works on the flattened vector (dot products, history).
NEEDS_COLLECTIVES = ["adafactor", "muon"]
ALL = sorted([*ELEMENTWISE, *NEEDS_COLLECTIVES, "lbfgs"])


@pytest.fixture(scope="module")
def report():
    out = run_with_devices(SCRIPT)
    line = next(l for l in out.splitlines() if l.startswith("REPORT"))
    return json.loads(line[len("REPORT") :])


def test_every_optimizer_is_covered(report):
    from jaxopt_losses import optim

    # param groups compose the factories (optax.multi_transform): each group's state is its factory's
    composed = {"asgd_averaged_params", "param_groups", "masked_weight_decay", "decay_mask", "muon_with"}
    composed.add("apply_step")  # runs a step of any transformation, not a factory
    factories = {n for n in optim.__all__ if n.islower() and n not in composed}
    assert set(report["names"]) == factories == set(ALL)


def test_checker_detects_unsharded_state(report):
    assert report["checker_flags_unsharded"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_state_has_parameter_sharding(report, name, mode):
    r = report[name]
    if name == "lbfgs":
        # One flat vector for all parameters: the history is (history_size, n), n = total size.
        assert r["lbfgs_history_shape"] == [3, 12 * 32 + 32 + 32 * 4 + 1]
        return
    assert r[f"{mode}_problems"] == []
    assert r[f"{mode}_checked"] > 0


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_update_has_no_collectives(report, name):
    assert report[name]["collectives"] == []


@pytest.mark.parametrize("name", NEEDS_COLLECTIVES)
def test_reducing_optimizers_communicate(report, name):
    # Documented, not a defect: their math reduces across the sharded axes.
    assert report[name]["collectives"]


@pytest.mark.parametrize("name", ALL)
def test_sharded_training_equals_single_device(report, name):
    r = report[name]
    assert r["moved"] > 1e-3  # the comparison is not vacuous
    # muon orthogonalises in bfloat16 (a reordered sum can flip a bit); lbfgs is compared in float64.
    tol = {"muon": 2e-3, "lbfgs": 1e-12}.get(name, 1e-5)
    assert r["max_diff"] <= tol, r["max_diff"]
    assert r["param_shardings_kept"]
    if name != "lbfgs":
        assert r["trained_problems"] == []
