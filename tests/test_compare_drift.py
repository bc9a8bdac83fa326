"""Why `make demo`'s ``cnn/digits/cross_entropy/momentum`` run leaves float32 agreement at step 490 (max
|Δparam| 9.1e-2 after 880 steps) while every other run stays within ~1e-6: float32 rounding, not a
difference between jaxopt_losses and torch (docs/guide/compare.md, "How to read the deviations").

The runs go through the CLI's own code path (``models.build``, ``data.batch_order``, ``jax_runner.run``,
``torch_runner.run``) for 12 of the 20 epochs (528 steps, past step 490; the minibatch order of the first 12
epochs is the 20-epoch run's).

- In float64 both sides agree over the whole horizon (measured 6.7e-16 on the parameters after 528 steps;
  1.9e-14 after all 880): there is no semantic difference along the trajectory.
- torch in float32 disagrees with itself just as much: one initial weight moved by 1 ulp leaves float32
  agreement at the same step 490 and reaches the same 9.1e-2 (measured; so does JAX vs torch). Step 490's
  minibatch has one first-conv ReLU input within 1e-6 of zero (-8.3e-7 in torch's run, -7.0e-7 in float64),
  alone positive in its 2x2 max-pool window on the other side of the kink: there it takes the whole
  upstream gradient, the gradient jumps by 7.3e-3 and the parameters by lr * 7.3e-3 = 7.3e-5; momentum
  and later kinks grow that to 9e-2.
- Given the same parameters at that step, JAX's gradient equals torch's to float32 rounding.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxopt_losses import compat
from jaxopt_losses._compare import data as data_mod
from jaxopt_losses._compare import jax_runner, models, torch_runner
from jaxopt_losses._compare.config import RunConfig
from jaxopt_losses._compare.registry import MODELS, OPTIMIZERS

EPOCHS = 12  # 528 steps of 32: past the step where float32 leaves agreement
FLIP_STEP = 490  # 1-based: the step whose update jumps (torch vs torch + 1 ulp, and JAX vs torch, float32)
NUDGED = ("3.weight", (0, 5, 0, 2))  # the second conv's weight moved up by 1 ulp


@pytest.fixture(scope="module")
def demo_run():
    """The demo run's config, data (image view, the cnn's subset), model pair and minibatch order."""
    cfg = RunConfig("digits", "cross_entropy", "momentum", OPTIMIZERS["momentum"].lr, EPOCHS, 32, model="cnn")
    data = data_mod.load("digits", seed=cfg.seed).view("image")
    data = data.subset(MODELS["cnn"].max_train, MODELS["cnn"].max_test)
    pair = models.build("cnn", data, cfg.seed, True)
    order = data_mod.batch_order(len(data.x_train), cfg.batch_size, cfg.epochs, seed=cfg.seed + 2)
    return cfg, data, pair, order


@pytest.fixture
def one_thread():
    """The CLI runs torch on one thread (session.run); its float32 reductions depend on the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _as_float64(data: data_mod.Data) -> data_mod.Data:
    return dataclasses.replace(
        data, x_train=data.x_train.astype(np.float64), x_test=data.x_test.astype(np.float64)
    )


def test_float64_agrees_over_the_diverging_horizon(x64, one_thread, demo_run):
    cfg, data, pair, order = demo_run
    data64 = _as_float64(data)
    params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), pair.jax.params)
    jr = jax_runner.run(cfg, data64, dataclasses.replace(pair.jax, params=params64, cache={}), order)
    tr = torch_runner.run(cfg, data64, pair.torch_module().double(), order)
    jp, tp = np.stack(jr.params), np.stack(tr.params)
    assert jp.dtype == tp.dtype == np.float64 and len(jp) == EPOCHS * order.shape[1]
    dev = np.abs(jp - tp).max(axis=1)
    assert dev.max() <= 1e-12, (int(dev.argmax()) + 1, dev.max())  # measured 6.7e-16
    np.testing.assert_allclose(jr.train_loss, tr.train_loss, rtol=1e-12)
    np.testing.assert_allclose(jr.test_loss, tr.test_loss, rtol=1e-12)


def test_torch_float32_leaves_agreement_with_itself_at_the_same_step(one_thread, demo_run):
    cfg, data, pair, order = demo_run
    base = np.stack(torch_runner.run(cfg, data, pair.torch_module(), order).params)
    nudged = pair.torch_module()
    name, index = NUDGED
    with torch.no_grad():
        w = dict(nudged.named_parameters())[name]
        w[index] = torch.nextafter(w[index], torch.tensor(np.inf))
    other = np.stack(torch_runner.run(cfg, data, nudged, order).params)
    dev = np.abs(other - base).max(axis=1)
    assert dev[: FLIP_STEP - 1].max() <= 1e-6  # rounding-sized up to step 489 (measured 5.4e-7)
    assert dev[FLIP_STEP - 1] > 1e-5  # the jump (measured 7.3e-5)
    assert dev.max() > 1e-4  # then momentum and later kinks grow it (measured 7.0e-4; 9.1e-2 by step 880)

    # The kink: step 490's minibatch has a first-conv ReLU input within 1e-6 of zero, on opposite sides
    # in the two runs, alone positive in its 2x2 max-pool window on one side: the gradients jump.
    x = torch.from_numpy(data.x_train[order.reshape(-1, order.shape[-1])[FLIP_STEP - 1]])
    y = torch.from_numpy(data.y_train[order.reshape(-1, order.shape[-1])[FLIP_STEP - 1]])

    def at(theta):
        m = pair.torch_module()
        torch.nn.utils.vector_to_parameters(torch.from_numpy(theta.copy()), m.parameters())
        torch.nn.functional.cross_entropy(m(x), y).backward()
        grad = torch.cat([p.grad.reshape(-1) for p in m.parameters()]).numpy()
        return m, m[0](x).detach().numpy(), grad

    m_base, pre_base, g_base = at(base[FLIP_STEP - 2])
    _, pre_other, g_other = at(other[FLIP_STEP - 2])
    flips = np.argwhere(np.sign(pre_base) != np.sign(pre_other))
    assert len(flips) == 1
    n, c, h, w_ = flips[0]
    assert abs(pre_base[n, c, h, w_]) < 1e-6 and abs(pre_other[n, c, h, w_]) < 1e-6  # measured 8.3e-7
    pool = np.s_[n, c, h // 2 * 2 : h // 2 * 2 + 2, w_ // 2 * 2 : w_ // 2 * 2 + 2]  # its 2x2 window
    assert (pre_base[pool] <= 0).all() or (pre_other[pool] <= 0).all()
    assert np.abs(g_other - g_base).max() > 1e-3  # measured 7.3e-3

    # JAX at torch's parameters: the same gradient to float32 rounding (measured 8.2e-8), so the
    # library is on torch's side of the kink when it is given torch's parameters.
    twin = models.builtin_factory("cnn", data)(compat.nn)
    twin.load_state_dict({k: v.detach().numpy().copy() for k, v in m_base.state_dict().items()})
    jm = models.compat_jax_model(twin)
    loss = jax_runner.loss_fn(cfg)
    g_jax = jax.grad(
        lambda p: loss(
            jm.apply(p, jm.state, jnp.asarray(x.numpy()), True)[0], jnp.asarray(y.numpy(), jnp.int32)
        )
    )(jm.params)
    np.testing.assert_allclose(np.asarray(jm.flatten(g_jax)), g_base, rtol=0, atol=1e-6)
