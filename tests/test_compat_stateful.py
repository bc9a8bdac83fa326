"""A compat optimizer and a live torch optimizer driven side by side through random call sequences.

For every optimizer of ``compat.optim`` a hypothesis ``RuleBasedStateMachine`` interleaves: ``step`` (with
``None`` gradients for random parameters, gradients given as an aligned list or as a mapping matched by
identity), ``zero_grad``, edits of ``param_groups`` options, ``add_param_group``, ``state_dict`` /
``load_state_dict`` round trips in both directions, scheduler steps, new weights written into the model,
and failing calls (bad gradients, corrupt state dicts, closures that do not use the parameters). After every
rule the parameters equal torch's and the per-parameter state has torch's keys and values; after a failing
call nothing changed. LBFGS runs through ``step(closure)`` (torch's zero-argument form reading the model),
with no ``None`` gradients and one param group (torch's limits).

Profiles are test_properties.py's: ``ci`` (default, derandomized, few examples) or ``long``.
"""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from test_properties import PROFILE

import jaxopt_losses.compat as C
from jaxopt_losses.compat import _refs
from jaxopt_losses.optim import _fused

# float32 parity: parameters and state within 1e-5 (abs + rel). compat passes every number but lr (and,
# once changed, momentum / betas[0]) as a static Python float, so ``1 - beta2`` is computed in double as in
# torch (when it was traced in float32, exp_avg_sq sat 1.3e-5 relative from torch's).
PARAM_TOL = dict(rtol=1e-5, atol=1e-5)
STATE_TOL = dict(rtol=1e-5, atol=1e-5)

# Scheduler matters kept out of this optimizer test: edits leave ``lr`` to the scheduler (compat's
# ExponentialLR keeps an lr written by hand for one scheduler step, then returns to its closed form: lr
# 0.01 -> 0.02 by hand, two steps: 0.0081, torch 0.0162), and groups are added before the scheduler exists
# (compat's schedulers cover the groups they were built with; a second scheduler restarts from initial_lr).
# name: (constructor options, {option: values an edit may set}, shapes: group 0, then the added group)
VEC = ((3,), (2, 2), (4,))
MAT = ((2, 3), (3, 2), (2, 2))
OPTIMIZERS = {
    "SGD": (dict(lr=0.05, momentum=0.9, weight_decay=0.01), dict(momentum=[0.5, 0.8]), VEC),
    "Adam": (dict(lr=0.01, weight_decay=0.1), dict(betas=[(0.8, 0.99)], eps=[1e-6]), VEC),
    "AdamW": (dict(lr=0.01, amsgrad=True), dict(weight_decay=[0.05, 0.2]), VEC),
    "RMSprop": (dict(lr=0.01, momentum=0.5, centered=True), dict(alpha=[0.9], eps=[1e-6]), VEC),
    "Adagrad": (dict(lr=0.05, lr_decay=0.01), dict(lr_decay=[0.1], weight_decay=[0.1]), VEC),
    "Adadelta": (dict(lr=0.5, weight_decay=0.01), dict(rho=[0.8], eps=[1e-5]), VEC),
    "Adamax": (dict(lr=0.01), dict(betas=[(0.8, 0.99)], weight_decay=[0.1]), VEC),
    "NAdam": (dict(lr=0.01), dict(momentum_decay=[0.01], weight_decay=[0.1]), VEC),
    "RAdam": (dict(lr=0.01), dict(betas=[(0.8, 0.99)], weight_decay=[0.1]), VEC),
    "ASGD": (dict(lr=0.01, t0=3.0, lambd=1e-3), dict(alpha=[0.5], weight_decay=[0.1]), VEC),
    "Rprop": (dict(lr=0.01), dict(etas=[(0.3, 1.5)], step_sizes=[(1e-4, 1.0)]), VEC),
    "Adafactor": (dict(lr=0.01), dict(beta2_decay=[-0.5], weight_decay=[0.1]), VEC),
    "Muon": (dict(lr=0.01), dict(momentum=[0.9], weight_decay=[0.05]), MAT),
    "SparseAdam": (dict(lr=0.01), dict(betas=[(0.8, 0.99)], eps=[1e-6]), VEC),
    # torch's fused kernel on both sides (each betas / eps edit compiles once: static hyperparameters)
    "Adam(fused)": (dict(lr=0.01, weight_decay=0.1, fused=True), dict(betas=[(0.8, 0.99)], eps=[1e-6]), VEC),
    "LBFGS": (dict(lr=0.1, max_iter=2, history_size=3), dict(tolerance_change=[1e-8]), VEC[:2]),
}
CI_EXAMPLES, CI_STEPS = 2, 8


class _Model(nnx.Module):
    """The parameters, as a model holds them (gradients may come as a mapping over these attributes)."""

    def __init__(self, values):
        for i, v in enumerate(values):
            setattr(self, f"p{i}", nnx.Param(jnp.asarray(v)))


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _tensorize(sd):
    def conv(v):
        if isinstance(v, np.ndarray | np.generic):
            return torch.tensor(np.asarray(v))
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return {
        "state": {k: {kk: conv(vv) for kk, vv in d.items()} for k, d in sd["state"].items()},
        "param_groups": [dict(g) for g in sd["param_groups"]],
    }


def _snapshot(opt, variables):
    sd = opt.state_dict()
    state = {k: {kk: _copy(vv) for kk, vv in d.items()} for k, d in sd["state"].items()}
    groups = [dict(g) for g in sd["param_groups"]]
    return [np.array(v[...]) for v in variables], state, groups


def _copy(v):
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return np.array(v) if isinstance(v, np.ndarray | np.generic) else v


def _assert_same(a, b):
    pa, sa, ga = a
    pb, sb, gb = b
    for x, y in zip(pa, pb, strict=True):
        np.testing.assert_array_equal(x, y)
    assert sorted(sa) == sorted(sb)
    for k in sa:
        assert sorted(sa[k]) == sorted(sb[k])
        for key in sa[k]:
            _assert_equal_values(sa[k][key], sb[k][key])
    assert ga == gb


def _assert_equal_values(a, b):
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_equal_values(x, y)
    elif a is None or b is None:
        assert a is None and b is None
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def make_machine(key: str) -> type[RuleBasedStateMachine]:
    kwargs, edits, shapes = OPTIMIZERS[key]
    name = key.split("(")[0]  # the class: "Adam(fused)" is Adam with fused=True
    is_lbfgs = name == "LBFGS"
    sparse = name == "SparseAdam"
    # LBFGS in float64 (under x64): in float32, near its optimum the line search amplifies round-off
    # chaotically (1.6e-5 seen after ~10 steps), so float32 says nothing about the plumbing tested here
    dtype = np.float64 if is_lbfgs else np.float32
    edit_items = [(k, v) for k, vals in edits.items() for v in vals]

    class Machine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(0)
            self.values0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
            self.model = _Model(self.values0)
            _refs.register_module(self.model)
            self.vars = [getattr(self.model, f"p{i}") for i in range(len(shapes))]
            n0 = len(shapes) if is_lbfgs else 2  # parameters of group 0 (LBFGS: all of them, one group)
            self.tparams = [torch.tensor(v, requires_grad=True) for v in self.values0]
            self.opt = getattr(C.optim, name)(self.vars[:n0], **kwargs)
            self.topt = getattr(torch.optim, name)(self.tparams[:n0], **kwargs)
            self.n_active = n0
            self.sched = self.tsched = None
            self.k = 0

        # -- checks -----------------------------------------------------------------------------------

        @invariant()
        def same_as_torch(self):
            for v, p in zip(self.vars, self.tparams, strict=True):
                np.testing.assert_allclose(np.asarray(v[...]), _np(p), **PARAM_TOL)
            ours, theirs = self.opt.state_dict(), self.topt.state_dict()
            assert sorted(ours["state"]) == sorted(theirs["state"])
            for k, d in theirs["state"].items():
                assert sorted(ours["state"][k]) == sorted(d), (k, sorted(ours["state"][k]), sorted(d))
                for key, v in d.items():
                    if is_lbfgs and key not in ("d", "prev_flat_grad", "n_iter", "func_evals", "H_diag"):
                        continue
                    np.testing.assert_allclose(np.asarray(ours["state"][k][key]), _np(v), **STATE_TOL)
            assert len(ours["param_groups"]) == len(theirs["param_groups"])
            for g, tg in zip(ours["param_groups"], theirs["param_groups"], strict=True):
                assert g["params"] == tg["params"]
                # compat's schedulers compute the lr in float32 (torch: Python floats)
                assert g["lr"] == pytest.approx(tg["lr"], rel=1e-6)
                for key in edits:
                    assert g[key] == pytest.approx(tg[key], rel=1e-6), key

        def _unchanged_after(self, exc, fn, match=None):
            before = _snapshot(self.opt, self.vars)
            with pytest.raises(exc, match=match):
                fn()
            _assert_same(_snapshot(self.opt, self.vars), before)

        # -- rules --------------------------------------------------------------------------------------

        def _loss(self, seed, values, xp):
            rng = np.random.default_rng(seed)
            total = 0.0
            for i, v in enumerate(values):
                a = rng.standard_normal(shapes[i]).astype(dtype)
                b = rng.uniform(0.5, 1.5, shapes[i]).astype(dtype)
                a, b = (torch.tensor(a), torch.tensor(b)) if xp is torch else (jnp.asarray(a), jnp.asarray(b))
                total = total + (a * v).sum() + (b * v * v).sum()
            return total

        def _step(self, seed, mask, as_mapping):
            """One step on both sides; bit i of ``mask``: parameter i has no gradient (torch: .grad None)."""
            if is_lbfgs:
                # one objective throughout (as in training): LBFGS's curvature history assumes it, and
                # a new random objective per step makes steps large enough to amplify float32 round-off
                seed = 0

                def tclosure():
                    self.topt.zero_grad()
                    loss = self._loss(seed, self.tparams, torch)
                    loss.backward()
                    return loss

                tloss = self.topt.step(tclosure)
                loss = self.opt.step(lambda: self._loss(seed, [v[...] for v in self.vars], jnp))
                np.testing.assert_allclose(float(loss), tloss.item(), rtol=2e-5, atol=1e-5)
                return
            rng = np.random.default_rng(seed)
            grads = []
            for i in range(self.n_active):
                g = rng.standard_normal(shapes[i]).astype(np.float32)
                grads.append(None if mask >> i & 1 else g)
            for p, g in zip(self.tparams[: self.n_active], grads, strict=True):
                p.grad = None if g is None else (torch.tensor(g).to_sparse() if sparse else torch.tensor(g))
            self.topt.step()
            if as_mapping:  # like nnx.grad's State: parameters without gradients are absent
                self.opt.step({f"p{i}": jnp.asarray(g) for i, g in enumerate(grads) if g is not None})
            else:
                self.opt.step([None if g is None else jnp.asarray(g) for g in grads])

        @rule(
            seed=st.integers(0, 2**16), mask=st.sampled_from([0, 1, 2, 4, 0, 5, 3]), as_mapping=st.booleans()
        )
        def step(self, seed, mask, as_mapping):
            self._step(seed, mask, as_mapping)

        def _then_step(self):
            """A step after every other rule, so that each change is checked through stepping too."""
            self.k += 1
            if self.k == 2 and self._can_add():
                self._add_param_group(0.03)
            if self.k % 4 == 1:  # and, in turn, every kind of failing call
                self._failing_step(self.k // 4 % 4)
            elif self.k % 4 == 3:
                self._failing_load(self.k // 4 % 3)
            if self.k % 6 == 5:
                self._scheduler_step()
            if self.k % 5 == 2:
                self.opt.load_state_dict(self.topt.state_dict())
            elif self.k % 5 == 4:
                self.topt.load_state_dict(_tensorize(self.opt.state_dict()))
            # few distinct None patterns here (each is one more compile); the step rule draws any
            self._step(1000 + self.k, [0, 0, 1, 0, 2][self.k % 5], bool(self.k % 2))

        @rule()
        def zero_grad(self):
            self.topt.zero_grad()
            self.opt.zero_grad()
            self._then_step()

        @rule(which=st.integers(0, 100), group=st.integers(0, 1))
        def edit_option(self, which, group):
            key, value = edit_items[which % len(edit_items)]
            group %= len(self.opt.param_groups)
            self.opt.param_groups[group][key] = value
            self.topt.param_groups[group][key] = value
            self._then_step()

        # torch's Adagrad makes state in __init__ only: its step fails for a group added later
        @precondition(lambda self: self._can_add())
        @rule(lr=st.sampled_from([0.01, 0.03]))
        def add_param_group(self, lr):
            self._add_param_group(lr)
            self._then_step()

        def _can_add(self):
            return name not in ("LBFGS", "Adagrad") and self.n_active < len(shapes) and self.sched is None

        def _add_param_group(self, lr):
            self.opt.add_param_group({"params": self.vars[self.n_active :], "lr": lr})
            self.topt.add_param_group({"params": self.tparams[self.n_active :], "lr": lr})
            self.n_active = len(shapes)

        @rule()
        def torch_state_dict_into_ours(self):
            self.opt.load_state_dict(self.topt.state_dict())
            self._then_step()

        @rule()
        def our_state_dict_into_torch(self):
            self.topt.load_state_dict(_tensorize(self.opt.state_dict()))
            self._then_step()

        @rule()
        def scheduler_step(self):
            self._scheduler_step()
            self._then_step()

        def _scheduler_step(self):
            if self.sched is None:
                self.sched = C.optim.lr_scheduler.ExponentialLR(self.opt, gamma=0.9)
                self.tsched = torch.optim.lr_scheduler.ExponentialLR(self.topt, gamma=0.9)
            self.sched.step()
            with warnings.catch_warnings():  # torch warns when no optimizer.step() came first
                warnings.simplefilter("ignore", UserWarning)
                self.tsched.step()

        @rule(which=st.integers(0, 2), seed=st.integers(0, 2**16))
        def write_weights(self, which, seed):
            which %= len(shapes)
            new = np.random.default_rng(seed).standard_normal(shapes[which]).astype(dtype)
            self.vars[which][...] = jnp.asarray(new)  # e.g. a checkpoint loaded into the model
            with torch.no_grad():
                self.tparams[which].copy_(torch.tensor(new))
            self._then_step()

        @rule(kind=st.integers(0, 3))
        def failing_step(self, kind):
            self._failing_step(kind)
            self._then_step()

        @rule(kind=st.integers(0, 2))
        def failing_load(self, kind):
            self._failing_load(kind)
            self._then_step()

        def _failing_step(self, kind):
            n = len(self.opt._bindings[0]) if is_lbfgs else self.n_active
            if is_lbfgs or kind == 0:
                self._unchanged_after(
                    ValueError,
                    lambda: self.opt.step(lambda: jnp.sum(jnp.ones(3))),
                    "does not depend on the optimizer's parameters",
                )
            elif kind == 1:
                bad = [jnp.ones(shapes[i]) for i in range(n)]
                bad[-1] = jnp.ones((7,))
                self._unchanged_after(ValueError, lambda: self.opt.step(bad), "shape")
            elif kind == 2:
                self._unchanged_after(ValueError, lambda: self.opt.step([jnp.ones(shapes[0])] * (n + 1)))
            else:
                self._unchanged_after(ValueError, lambda: self.opt.step({"nope": jnp.ones(3)}))

        def _failing_load(self, kind):
            sd = self.opt.state_dict()
            sd = {"state": {k: dict(d) for k, d in sd["state"].items()}, "param_groups": sd["param_groups"]}
            sd["param_groups"] = [dict(g, lr=123.0) for g in sd["param_groups"]]  # would change if not atomic
            if kind == 0:
                sd["param_groups"] = sd["param_groups"] + [dict(sd["param_groups"][0])]
            elif kind == 1:
                sd["param_groups"][-1]["params"] = sd["param_groups"][-1]["params"][:-1]
            else:
                p0 = sd["param_groups"][0]["params"][0]
                key = "d" if is_lbfgs else None
                entry = sd["state"].setdefault(p0, {})
                if key is None:
                    arrays = [k for k, v in entry.items() if isinstance(v, np.ndarray) and v.ndim > 0]
                    key = arrays[0] if arrays else None
                if key is None:  # no array state yet: an entry without what torch would hold
                    entry.clear()
                    entry["bogus"] = np.zeros(1, np.float32)
                else:
                    entry[key] = np.zeros((9, 9), np.float32)
            self._unchanged_after((ValueError, KeyError), lambda: self.opt.load_state_dict(sd))

    Machine.__name__ = f"{name}{'Fused' if kwargs.get('fused') else ''}Machine"
    return Machine


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compat_optimizer_beside_torch(name):
    not_optimizers = ("Optimizer", "lr_scheduler", "swa_utils")
    assert {k.split("(")[0] for k in OPTIMIZERS} == {n for n in C.optim.__all__ if n not in not_optimizers}
    if OPTIMIZERS[name][0].get("fused") and not _fused.available():
        pytest.skip("native kernels not built")
    ci = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci"
    extra = dict(max_examples=CI_EXAMPLES, stateful_step_count=CI_STEPS) if ci else {}
    with jax.enable_x64(name == "LBFGS"):
        run_state_machine_as_test(make_machine(name), settings=settings(PROFILE, **extra))
