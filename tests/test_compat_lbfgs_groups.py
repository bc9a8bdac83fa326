"""compat LBFGS and ``add_param_group`` beside live torch 2.13.

torch's LBFGS refuses several groups at construction, accepts ``add_param_group`` (the inherited
``Optimizer.add_param_group``) and then raises ``AssertionError: Expected exactly one param_group`` in
``step``; its ``state_dict`` / ``load_state_dict`` work with both groups. Float64 under x64.
"""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as C
from tests.test_compat_optim import _tensorize

_A = np.random.default_rng(0).standard_normal((6, 4))
_B = np.random.default_rng(1).standard_normal(6)


def _loss(w, b, xp):
    a, y = (torch.tensor(_A), torch.tensor(_B)) if xp is torch else (jnp.asarray(_A), jnp.asarray(_B))
    return (((a @ w + b.sum() - y) ** 2).sum() + (b**2).sum()) * 0.5


def _pair(kw, w0):
    tw = torch.tensor(np.asarray(w0), requires_grad=True)
    tb = torch.ones(2, dtype=torch.float64, requires_grad=True)
    w, b = nnx.Param(jnp.asarray(w0)), nnx.Param(jnp.ones(2))
    topt, opt = torch.optim.LBFGS([tw], **kw), C.optim.LBFGS([w], **kw)

    def tclosure():
        topt.zero_grad()
        loss = _loss(tw, tb, torch)
        loss.backward()
        return loss

    return (tw, tb, topt, tclosure), (w, b, opt, lambda: _loss(w[...], b[...], jnp))


def test_lbfgs_add_param_group_then_step_fails_like_torch(x64):
    kw = dict(lr=0.5, max_iter=4, history_size=3, line_search_fn=None)
    (tw, tb, topt, tclosure), (w, b, opt, closure) = _pair(kw, np.zeros(4))
    for _ in range(2):
        np.testing.assert_allclose(float(opt.step(closure)), topt.step(tclosure).item(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(w[...]), tw.detach().numpy(), rtol=1e-10, atol=1e-12)

    topt.add_param_group({"params": [tb], "lr": 0.1})
    opt.add_param_group({"params": [b], "lr": 0.1})
    assert {k: v for k, v in opt.param_groups[1].items() if k != "params"} == {
        k: v for k, v in topt.param_groups[1].items() if k != "params"
    }
    tsd, sd = topt.state_dict(), opt.state_dict()
    params = [g["params"] for g in sd["param_groups"]]
    assert params == [g["params"] for g in tsd["param_groups"]] == [[0], [1]]
    assert sorted(sd["state"]) == sorted(tsd["state"]) == [0]
    assert sorted(sd["state"][0]) == sorted(tsd["state"][0])
    for key in ("d", "prev_flat_grad", "H_diag"):
        np.testing.assert_allclose(np.asarray(sd["state"][0][key]), tsd["state"][0][key].numpy(), rtol=1e-9)

    w_before = np.asarray(w[...])
    for step in (lambda: topt.step(tclosure), lambda: opt.step(closure)):
        with pytest.raises(AssertionError, match="^Expected exactly one param_group, but got 2$"):
            step()
    np.testing.assert_array_equal(np.asarray(w[...]), w_before)  # a failing step changes nothing
    np.testing.assert_array_equal(np.asarray(b[...]), np.ones(2))
    after = opt.state_dict()
    assert sorted(after["state"][0]) == sorted(sd["state"][0]) and after["param_groups"] == sd["param_groups"]
    for key in ("d", "prev_flat_grad", "old_dirs"):
        np.testing.assert_array_equal(np.asarray(after["state"][0][key]), np.asarray(sd["state"][0][key]))

    # the two-group state dicts load both ways; back to one group (as after loading a one-group checkpoint
    # into a fresh optimizer), both continue alike
    (tw2, tb2, topt2, tclosure2), (w2, b2, opt2, closure2) = _pair(kw, w_before)
    topt2.add_param_group({"params": [tb2], "lr": 0.1})
    opt2.add_param_group({"params": [b2], "lr": 0.1})
    opt2.load_state_dict(tsd)
    topt2.load_state_dict(_tensorize(sd))
    assert opt2.state_dict()["param_groups"] == topt2.state_dict()["param_groups"]
    (tw3, _, topt3, tclosure3), (w3, _, opt3, closure3) = _pair(kw, w_before)
    one_group = lambda d: {"state": d["state"], "param_groups": d["param_groups"][:1]}
    opt3.load_state_dict(one_group(opt2.state_dict()))
    topt3.load_state_dict(one_group(topt2.state_dict()))
    for _ in range(2):
        np.testing.assert_allclose(float(opt3.step(closure3)), topt3.step(tclosure3).item(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(w3[...]), tw3.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_lbfgs_still_refuses_groups_at_construction_like_torch():
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        C.optim.LBFGS([{"params": [jnp.ones(2)]}, {"params": [jnp.ones(2)]}])
