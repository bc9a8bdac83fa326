"""Optimizer states save and restore bit for bit (``.npz`` via jaxopt_losses.checkpoint, and orbax), and
training continues identically after a restore; sharded states on 8 virtual devices in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_losses import checkpoint, optim

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "sgd": lambda: optim.sgd(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optim.adam(1e-2, amsgrad=True),
    "adamw": lambda: optim.adamw(1e-2),
    "rmsprop": lambda: optim.rmsprop(1e-2, momentum=0.9, centered=True),
    "adagrad": lambda: optim.adagrad(0.05, initial_accumulator_value=0.1),
    "adadelta": lambda: optim.adadelta(),
    "adamax": lambda: optim.adamax(1e-2),
    "nadam": lambda: optim.nadam(1e-2),
    "radam": lambda: optim.radam(1e-2),
    "asgd": lambda: optim.asgd(0.05, t0=2),
    "rprop": lambda: optim.rprop(1e-2),
    "adafactor": lambda: optim.adafactor(1e-2),
    "muon": lambda: optim.muon(0.02),
    "sparse_adam": lambda: optim.sparse_adam(1e-2),
    "lbfgs": lambda: optim.lbfgs(max_iter=3, history_size=2),
    "param_groups": lambda: optim.param_groups(
        optim.sgd, lambda path, v: path[-1], {"w": {"lr": 0.05}, "b": {"momentum": 0.9}}, lr=0.01
    ),
    "masked_weight_decay": lambda: optim.masked_weight_decay(optim.adamw, lr=1e-2, weight_decay=0.1),
    "muon_with": lambda: optim.muon_with(lr=0.02),
}

RNG = np.random.default_rng(0)
W0 = RNG.standard_normal((4, 3)).astype(np.float32)
B0 = RNG.standard_normal(3).astype(np.float32)
X = RNG.standard_normal((8, 4)).astype(np.float32)
Y = RNG.standard_normal((8, 3)).astype(np.float32)


def loss_fn(p):
    return jnp.mean((jnp.tanh(jnp.asarray(X) @ p["w"] + p.get("b", 0.0)) - jnp.asarray(Y)) ** 2)


def make(name):
    tx = CONFIGS[name]()
    params = {"w": jnp.asarray(W0)} if name == "muon" else {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss_fn)(params)
        extra = dict(value=value, value_fn=loss_fn) if name == "lbfgs" else {}
        updates, state = tx.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    return tx, params, step


def bits(tree):
    return [np.asarray(x).reshape(-1).view(np.uint8).tobytes() for x in jax.tree.leaves(tree)]


def assert_bitwise(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert [x.dtype for x in jax.tree.leaves(a)] == [x.dtype for x in jax.tree.leaves(b)]
    assert bits(a) == bits(b)


def test_every_optimizer_is_covered():
    not_optimizers = {"asgd_averaged_params", "decay_mask", "apply_step"}
    assert set(CONFIGS) == {n for n in optim.__all__ if n.islower() and n not in not_optimizers}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_npz_restore_is_bitwise_and_training_continues(tmp_path, name):
    tx, params, step = make(name)
    state = tx.init(params)
    for _ in range(3):
        params, state = step(params, state)
    checkpoint.save_npz(tmp_path / "s.npz", state)
    restored = checkpoint.load_npz(tmp_path / "s.npz", like=jax.eval_shape(tx.init, params))
    assert type(restored) is type(state)
    assert_bitwise(restored, state)
    p1, s1 = params, state
    p2, s2 = params, restored
    for _ in range(3):
        p1, s1 = step(p1, s1)
        p2, s2 = step(p2, s2)
    assert_bitwise((p1, s1), (p2, s2))
    assert bits(p1) != bits(params)  # it did keep training


def test_npz_extended_dtypes_and_zero_dim(tmp_path):
    tree = {
        "bf16": jnp.asarray([1.0, -0.0, jnp.inf, jnp.nan, 3e-39], jnp.bfloat16),
        "f8": jnp.asarray([0.5, -2.0], jnp.float8_e4m3fn),
        "i": jnp.asarray(7, jnp.int32),
        "f": jnp.asarray(-0.0, jnp.float32),
        "none": None,
    }
    checkpoint.save_npz(tmp_path / "t.npz", tree)
    assert_bitwise(checkpoint.load_npz(tmp_path / "t.npz", like=tree), tree)
    # The file is plain NumPy: native dtypes load without jaxopt_losses.
    with np.load(tmp_path / "t.npz") as data:
        assert data["leaf_3"].dtype == np.int32 and int(data["leaf_3"]) == 7  # keys flatten sorted


def test_npz_template_mismatch_raises(tmp_path):
    tx = optim.adam()
    state = tx.init({"w": jnp.ones(3)})
    checkpoint.save_npz(tmp_path / "s.npz", state)
    with pytest.raises(ValueError, match="do not match the template"):
        checkpoint.load_npz(tmp_path / "s.npz", like=optim.adam(amsgrad=True).init({"w": jnp.ones(3)}))
    with pytest.raises(ValueError, match=r"template has float32\[4\]"):
        checkpoint.load_npz(tmp_path / "s.npz", like=tx.init({"w": jnp.ones(4)}))
    with pytest.raises(ValueError, match="template has bfloat16"):
        checkpoint.load_npz(tmp_path / "s.npz", like=tx.init({"w": jnp.ones(3, jnp.bfloat16)}))


@pytest.mark.parametrize("name", ["adam", "adafactor", "sparse_adam", "lbfgs"])
def test_orbax_restore_is_bitwise_and_training_continues(tmp_path, name):
    pytest.importorskip("orbax.checkpoint")
    tx, params, step = make(name)
    state = tx.init(params)
    for _ in range(2):
        params, state = step(params, state)
    checkpoint.save_orbax(tmp_path / "ckpt", state)
    restored = checkpoint.restore_orbax(tmp_path / "ckpt", like=tx.init(params))
    assert type(restored) is type(state)
    assert_bitwise(restored, state)
    assert_bitwise(step(params, restored), step(params, state))


SHARDED = r"""
import sys, tempfile
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxopt_losses import checkpoint, optim

mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
rng = np.random.default_rng(0)
specs = {"w": P("data", "model"), "b": P("model"), "v": P("model", None)}
host = {"w": rng.standard_normal((8, 16)), "b": rng.standard_normal(16), "v": rng.standard_normal((16, 4))}
params = {k: jax.device_put(jnp.asarray(host[k], jnp.float32), NamedSharding(mesh, specs[k])) for k in specs}
x = jax.device_put(jnp.asarray(rng.standard_normal((8, 8)), jnp.float32), NamedSharding(mesh, P("data")))

def loss_fn(p):
    return jnp.mean((jnp.tanh(x @ p["w"] + p["b"]) @ p["v"]) ** 2)

def bits(tree):
    return [np.asarray(a).reshape(-1).view(np.uint8).tobytes() for a in jax.tree.leaves(tree)]

def same_sharding(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return all(u.sharding.is_equivalent_to(v.sharding, u.ndim) for u, v in pairs)

for name, tx in (("adam", optim.adam(1e-2, amsgrad=True)), ("adafactor", optim.adafactor(1e-2))):
    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss_fn)(params), state, params)
        return optax.apply_updates(params, updates), state

    state = jax.jit(tx.init)(params)
    p = params
    for _ in range(3):
        p, state = step(p, state)
    assert state.count.shape == ()
    sharded_leaves = [a for a in jax.tree.leaves(state) if not a.sharding.is_fully_replicated]
    assert len(sharded_leaves) >= 3, name
    d = tempfile.mkdtemp()
    template = jax.jit(tx.init)(params)
    for kind in ("orbax", "npz"):
        if kind == "orbax":
            checkpoint.save_orbax(d + "/ckpt", state)
            restored = checkpoint.restore_orbax(d + "/ckpt", like=template)
        else:
            checkpoint.save_npz(d + "/s.npz", state)
            restored = checkpoint.load_npz(d + "/s.npz", like=template)
        assert type(restored) is type(state), (name, kind)
        assert bits(restored) == bits(state), (name, kind)
        assert same_sharding(restored, state), (name, kind)
        assert bits(step(p, restored)) == bits(step(p, state)), (name, kind)
        print("OK", name, kind, len(sharded_leaves))
"""


def test_sharded_state_restores_bitwise_with_its_sharding():
    pytest.importorskip("orbax.checkpoint")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED], capture_output=True, text=True, timeout=240, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("OK ") == 4, proc.stdout
