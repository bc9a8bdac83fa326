"""compat.optim beside live torch.

Trajectories with param groups, state-dict round trips both ways mid-training, nnx modules updated in
place, closures, no recompile on hyperparameter edits, atomic loads, argument errors.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as C
from jaxopt_losses.compat.optim._optimizer import _jit_step
from tests.torch_ref import assert_trajectories_close, grad_stream, init_params, max_deviation

SHAPES = ((), (7,), (4, 5))
MATRICES = ((4, 5), (3, 3), (2, 6))  # Muon takes 2-D parameters only

# (torch class, kwargs of the whole optimizer, options of the second param group, shapes)
CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), dict(lr=0.01, nesterov=False)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True), dict(momentum=0)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1), dict(betas=(0.8, 0.99), amsgrad=False)),
    ("Adam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1), dict(eps=1e-3)),
    ("AdamW", dict(lr=0.01), dict(weight_decay=0.5, maximize=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True), dict(alpha=0.9, momentum=0, centered=False)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1), dict(weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, rho=0.8), dict(weight_decay=0.05)),
    ("Adamax", dict(lr=0.01), dict(betas=(0.5, 0.9), weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, momentum_decay=0.01), dict(decoupled_weight_decay=True, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01), dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("ASGD", dict(lr=0.01, t0=10.0, lambd=1e-3), dict(alpha=0.5, weight_decay=0.1)),
    ("Rprop", dict(lr=0.01), dict(etas=(0.3, 1.5), step_sizes=(1e-4, 1.0))),
    ("Adafactor", dict(lr=0.01), dict(beta2_decay=-0.5, weight_decay=0.1)),
    ("Muon", dict(lr=0.01), dict(momentum=0.9, nesterov=False, weight_decay=0.0)),
    ("SparseAdam", dict(lr=0.01), dict(betas=(0.8, 0.9))),
]
K = 15  # steps before the state-dict exchange, and after it


def _torch_opt(name, params, kw, group2):
    groups = [{"params": params[:1]}, {"params": params[1:], **group2}]
    return getattr(torch.optim, name)(groups, **kw)


def _tensorize(sd):
    def conv(v):
        if isinstance(v, np.ndarray):
            return torch.tensor(v)
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return {
        "state": {k: {kk: conv(vv) for kk, vv in v.items()} for k, v in sd["state"].items()},
        "param_groups": sd["param_groups"],
    }


def _torch_step(opt, params, gs, sparse):
    for p, g in zip(params, gs, strict=True):
        g = torch.tensor(g)
        p.grad = g.to_sparse() if sparse else g
    opt.step()


def _compat_step(opt, gs):
    opt.step([[jnp.asarray(gs[0])], [jnp.asarray(g) for g in gs[1:]]])


def _compat_params(opt):
    return [np.asarray(p) for group in opt.params for p in group]


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)])
def test_parity_and_state_dict_round_trips(config):
    name, kw, group2 = config
    shapes = MATRICES if name == "Muon" else SHAPES
    sparse = name == "SparseAdam"
    p0, gs = init_params(shapes), grad_stream(shapes, steps=2 * K)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = _torch_opt(name, tparams, kw, group2)
    copt = getattr(C.optim, name)(
        [{"params": [jnp.asarray(p0[0])]}, {"params": [jnp.asarray(p) for p in p0[1:]], **group2}], **kw
    )
    ref, ours = [], []
    for t in range(K):
        _torch_step(topt, tparams, gs[t], sparse)
        _compat_step(copt, gs[t])
        ref.append([p.detach().numpy().copy() for p in tparams])
        ours.append(_compat_params(copt))
    assert_trajectories_close(ours, ref)

    # torch -> ours: a fresh compat optimizer at torch's parameters loads torch's state dict
    c2 = getattr(C.optim, name)(
        [{"params": [jnp.asarray(ref[-1][0])]}, {"params": [jnp.asarray(p) for p in ref[-1][1:]]}], **kw
    )
    c2.load_state_dict(topt.state_dict())
    assert c2.param_groups[1]["lr"] == topt.param_groups[1]["lr"]
    # ours -> torch: a fresh torch optimizer at our parameters loads our state dict (arrays as tensors)
    t2_params = [torch.tensor(p, requires_grad=True) for p in ours[-1]]
    t2 = getattr(torch.optim, name)(t2_params, **kw)
    t2 = _torch_opt(name, t2_params, kw, {})
    t2.load_state_dict(_tensorize(copt.state_dict()))
    ref_b, from_torch, from_ours = [], [], []
    for t in range(K, 2 * K):
        _torch_step(topt, tparams, gs[t], sparse)
        _compat_step(c2, gs[t])
        _torch_step(t2, t2_params, gs[t], sparse)
        ref_b.append([p.detach().numpy().copy() for p in tparams])
        from_torch.append(_compat_params(c2))
        from_ours.append([p.detach().numpy().copy() for p in t2_params])
    assert_trajectories_close(from_torch, ref_b)
    assert_trajectories_close(from_ours, ref_b)
    assert max_deviation(from_ours, ref_b) <= 1e-5


def test_state_dict_layout_matches_torch():
    p0, gs = init_params(), grad_stream(steps=2)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = torch.optim.Adam(tparams, lr=0.01, amsgrad=True)
    copt = C.optim.Adam([jnp.asarray(p) for p in p0], lr=0.01, amsgrad=True)
    assert copt.state_dict()["state"] == {} and topt.state_dict()["state"] == {}
    _torch_step(topt, tparams, gs[0], False)
    copt.step([jnp.asarray(g) for g in gs[0]])
    tsd, csd = topt.state_dict(), copt.state_dict()
    assert csd["param_groups"] == tsd["param_groups"]
    assert sorted(csd["state"]) == sorted(tsd["state"])
    for k in tsd["state"]:
        assert sorted(csd["state"][k]) == sorted(tsd["state"][k])
        for key, v in tsd["state"][k].items():
            assert csd["state"][k][key].shape == tuple(v.shape)
            assert csd["state"][k][key].dtype == v.numpy().dtype
    np.testing.assert_allclose(copt.state[2]["exp_avg"], tsd["state"][2]["exp_avg"].numpy(), rtol=1e-6)


class _MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(3, 8, rngs=rngs)
        self.l2 = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.l1(x)))


def _data():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.standard_normal((16, 3)), jnp.float32), jnp.asarray(
        rng.standard_normal((16, 1)), jnp.float32
    )


def test_nnx_module_updated_in_place_like_torch():
    x, y = _data()
    model = _MLP(nnx.Rngs(0))
    # the same network in torch, from our initial weights (torch.nn.Linear stores W transposed)
    tl1, tl2 = torch.nn.Linear(3, 8), torch.nn.Linear(8, 1)
    with torch.no_grad():
        for tl, l in ((tl1, model.l1), (tl2, model.l2)):
            tl.weight.copy_(torch.tensor(np.asarray(l.kernel[...]).T))
            tl.bias.copy_(torch.tensor(np.asarray(l.bias[...])))
    tparams = [
        tl1.bias,
        tl1.weight,
        tl2.bias,
        tl2.weight,
    ]  # nnx flattens l1.bias, l1.kernel, l2.bias, l2.kernel
    topt = torch.optim.Adam(tparams, lr=0.01)
    opt = C.optim.Adam(model, lr=0.01)
    crit, tcrit = C.nn.MSELoss(), torch.nn.MSELoss()
    grad_fn = nnx.jit(nnx.value_and_grad(lambda m: crit(m(x), y)))
    tx, ty = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y))
    for _ in range(20):
        loss, grads = grad_fn(model)
        opt.step(grads)
        topt.zero_grad()
        tloss = tcrit(tl2(torch.tanh(tl1(tx))), ty)
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(float(loss), tloss.item(), rtol=2e-5)
    assert opt.params is model
    np.testing.assert_allclose(
        np.asarray(model.l1.kernel[...]), tl1.weight.detach().numpy().T, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(model(x)), tl2(torch.tanh(tl1(tx))).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_closure_step_returns_the_loss_and_updates():
    x, y = _data()
    model = _MLP(nnx.Rngs(1))
    opt = C.optim.SGD(model, lr=0.1, momentum=0.9)
    crit = C.nn.MSELoss()

    def closure(m):
        return crit(m(x), y)

    first = float(opt.step(closure))
    for _ in range(10):
        last = float(opt.step(closure))
    assert last < first
    np.testing.assert_allclose(float(closure(model)), float(crit(model(x), y)))

    params = {"w": jnp.ones(3)}
    opt2 = C.optim.Adam(params, lr=0.1)
    loss = opt2.step(lambda p: jnp.sum(p["w"] ** 2))
    assert float(loss) == 3.0 and opt2.params["w"].shape == (3,)


def test_lr_edits_never_recompile_scheduled_betas_compile_once_and_all_take_effect():
    """``lr`` is traced from the start; ``betas[0]`` (which CyclicLR / OneCycleLR cycle) is static
    (computed in double, as torch does) until it first changes, then traced; any other number
    (``betas[1]``) is static: each new value compiles once."""
    opt = C.optim.Adam([jnp.ones(4), jnp.ones(2)], lr=0.1)
    g = [jnp.ones(4), jnp.ones(2)]
    opt.step(g)  # creates the state (torch's lazy state): the next step is the steady one
    opt.step(g)
    size = _jit_step._cache_size()
    edits = [(0.05, None), (0.01, None), (0.2, (0.8, 0.95)), (0.1, (0.85, 0.95)), (0.3, (0.7, 0.95))]
    for k, (lr, betas) in enumerate(edits):
        before = np.asarray(opt.params[0]).copy()
        opt.param_groups[0]["lr"] = lr
        if betas is not None:
            opt.param_groups[0]["betas"] = betas
        opt.step(g)
        assert not np.allclose(np.asarray(opt.params[0]), before)
        assert _jit_step._cache_size() == size + (k >= 2), k  # the first betas edit: one compile
    opt.param_groups[0]["betas"] = (0.7, 0.9)  # a new beta2: static, one more compile
    opt.step(g)
    assert _jit_step._cache_size() == size + 2
    # and the edited values are the ones used: same as a torch Adam edited the same way
    tp = [torch.ones(4, requires_grad=True), torch.ones(2, requires_grad=True)]
    topt = torch.optim.Adam(tp, lr=0.1)
    for lr, betas in [(0.1, None), (0.1, None), *edits, (0.3, (0.7, 0.9))]:
        topt.param_groups[0]["lr"] = lr
        if betas is not None:
            topt.param_groups[0]["betas"] = betas
        for p in tp:
            p.grad = torch.ones_like(p)
        topt.step()
    # betas[0] traced: ``1 - beta1`` in float32 (torch: double), 1.4e-6 relative here
    np.testing.assert_allclose(np.asarray(opt.params[0]), tp[0].detach().numpy(), rtol=3e-6)


@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_one_cycle_with_cycle_momentum_compiles_once_more_not_every_step(name):
    """OneCycleLR writes lr and betas[0] / momentum at every step: both traced (betas[0] / momentum from
    their first change), so the steady steps do not recompile; the parameters follow torch's."""
    kw = dict(lr=0.01) if name == "Adam" else dict(lr=0.01, momentum=0.9)
    p0, gs = init_params(SHAPES), grad_stream(SHAPES, steps=12)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = getattr(torch.optim, name)(tparams, **kw)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.1, total_steps=20)
    opt = getattr(C.optim, name)([jnp.asarray(p) for p in p0], **kw)
    sched = C.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    sizes, ours, ref = [], [], []
    for g in gs:
        for p, gg in zip(tparams, g, strict=True):
            p.grad = torch.tensor(gg)
        topt.step()
        tsched.step()
        opt.step([jnp.asarray(x) for x in g])
        sched.step()
        sizes.append(_jit_step._cache_size())
        ours.append([np.asarray(p) for p in opt.params])
        ref.append([p.detach().numpy().copy() for p in tparams])
    assert len(set(sizes[2:])) == 1, sizes  # step 1 (state created), step 2 (momentum traced), then none
    key = "betas" if name == "Adam" else "momentum"
    assert opt.param_groups[0][key] != kw.get(key, (0.9, 0.999))  # the scheduler did cycle it
    assert_trajectories_close(ours, ref)


def test_structural_edit_compiles_once_and_keeps_state():
    opt = C.optim.SGD([jnp.ones(3)], lr=0.1, momentum=0.9)
    opt.step([jnp.ones(3)])
    opt.param_groups[0]["weight_decay"] = 0.1  # zero -> nonzero: a new static configuration
    opt.step([jnp.ones(3)])
    tp = torch.ones(3, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    for wd in (0, 0.1):
        topt.param_groups[0]["weight_decay"] = wd
        tp.grad = torch.ones(3)
        topt.step()
    np.testing.assert_allclose(np.asarray(opt.params[0]), tp.detach().numpy(), rtol=1e-6)


def test_add_param_group_and_param_groups_layout():
    opt = C.optim.SGD([jnp.ones(2)], lr=0.1)
    opt.add_param_group({"params": [jnp.ones(3)], "lr": 0.5, "momentum": 0.9})
    topt = torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1)
    topt.add_param_group({"params": [torch.ones(3, requires_grad=True)], "lr": 0.5, "momentum": 0.9})
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == [
        {k: v for k, v in g.items() if k != "params"} for g in topt.param_groups
    ]
    opt.step([[jnp.ones(2)], [jnp.ones(3)]])
    np.testing.assert_allclose(np.asarray(opt.params[1][0]), 1 - 0.5 * np.ones(3), rtol=1e-6)


def test_load_state_dict_rejects_misfits_atomically():
    opt = C.optim.Adam([jnp.ones(3), jnp.ones(2)], lr=0.1)
    opt.step([jnp.ones(3), jnp.ones(2)])
    good = opt.state_dict()
    before = jax.tree.map(np.asarray, opt._states)
    other = C.optim.Adam([jnp.ones(3)], lr=0.1)
    other.step([jnp.ones(3)])
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(other.state_dict())
    two = C.optim.Adam([{"params": [jnp.ones(3)]}, {"params": [jnp.ones(2)]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(two.state_dict())
    bad = {"state": dict(good["state"]), "param_groups": good["param_groups"]}
    bad["state"][1] = {**good["state"][1], "exp_avg": np.zeros(5, np.float32)}
    bad["param_groups"] = [{**good["param_groups"][0], "lr": 123.0}]
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == 0.1
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, opt._states), before)


@pytest.mark.parametrize(
    ("name", "kw", "exc", "match"),
    [
        ("SGD", dict(lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
        ("SGD", dict(lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires a momentum"),
        ("Adam", dict(betas=(1.5, 0.9)), ValueError, "Invalid beta parameter at index 0"),
        ("RMSprop", dict(alpha=-1.0), ValueError, "Invalid alpha value"),
        ("SGD", dict(bogus=1), TypeError, "unexpected keyword argument 'bogus'"),
    ],
)
def test_argument_errors_are_torchs(name, kw, exc, match):
    with pytest.raises(exc, match=match):
        getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kw)
    with pytest.raises(exc, match=match):
        getattr(C.optim, name)([jnp.ones(2)], **kw)


def test_params_argument_errors():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        C.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts"):
        C.optim.SGD(jnp.ones(2), lr=0.1)
    opt = C.optim.SGD([jnp.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="shape"):
        opt.step([jnp.ones(3)])


def test_caller_arrays_survive_donation():
    w = jnp.ones(3)
    opt = C.optim.SGD([w], lr=0.1)
    opt.step([jnp.ones(3)])
    np.testing.assert_array_equal(np.asarray(w), np.ones(3))


_A = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
_B = np.random.default_rng(1).standard_normal(6).astype(np.float32)


def _jloss(p):
    return jnp.sum((jnp.asarray(_A) @ p[0] - jnp.asarray(_B)) ** 2) + jnp.sum(p[1] ** 4)


def _torch_lbfgs(x0, kw):
    tp = [torch.tensor(x, requires_grad=True) for x in x0]
    opt = torch.optim.LBFGS(tp, **kw)

    def closure():
        opt.zero_grad()
        loss = ((torch.tensor(_A) @ tp[0] - torch.tensor(_B)) ** 2).sum() + (tp[1] ** 4).sum()
        loss.backward()
        return loss

    return tp, opt, closure


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.5, max_iter=4, history_size=3),
        dict(max_iter=3, line_search_fn="strong_wolfe", history_size=3),
    ],
    ids=["fixed-step", "strong-wolfe"],
)
def test_lbfgs_closure_parity_and_state_dict_round_trips(kw):
    x0 = [np.zeros(4, np.float32), np.ones(2, np.float32)]
    tp, topt, closure = _torch_lbfgs(x0, kw)
    copt = C.optim.LBFGS([jnp.asarray(x) for x in x0], **kw)
    # few iterations: near convergence float32 round-off of the line search is amplified chaotically
    for _ in range(2):
        np.testing.assert_allclose(float(copt.step(_jloss)), topt.step(closure).item(), rtol=2e-5)
        assert_trajectories_close([[np.asarray(p) for p in copt.params]], [[p.detach().numpy() for p in tp]])
    tsd, csd = topt.state_dict(), copt.state_dict()
    assert sorted(csd["state"][0]) == sorted(tsd["state"][0]) and csd["param_groups"] == tsd["param_groups"]
    c2 = C.optim.LBFGS([jnp.asarray(p.detach().numpy()) for p in tp], **kw)
    c2.load_state_dict(tsd)
    tp2, t2, closure2 = _torch_lbfgs([np.asarray(p) for p in copt.params], kw)
    t2.load_state_dict(_tensorize(csd))
    for _ in range(2):
        topt.step(closure)
        c2.step(_jloss)
        t2.step(closure2)
        ref = [[p.detach().numpy() for p in tp]]
        assert_trajectories_close([[np.asarray(p) for p in c2.params]], ref)
        assert_trajectories_close([[p.detach().numpy() for p in tp2]], ref)


def test_lbfgs_rejects_param_groups_like_torch():
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        C.optim.LBFGS([{"params": [jnp.ones(2)]}, {"params": [jnp.ones(2)]}])


# ---------------------------------------------------------------------------------------------------------
# the optimizer around the model, as torch's (issue 13: one test per reported problem)

_COMPILES = [0]
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: (
        _COMPILES.__setitem__(0, _COMPILES[0] + 1)
        if event == "/jax/core/compile/backend_compile_duration"
        else None
    )
)


def _torch_linear(layer):
    """A torch.nn.Linear with the weights of an nnx.Linear (torch stores the kernel transposed)."""
    t = torch.nn.Linear(*layer.kernel.shape)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(np.asarray(layer.kernel[...]).T))
        t.bias.copy_(torch.tensor(np.asarray(layer.bias[...])))
    return t


def _zero_grads(model):
    return jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param))


def test_weights_written_into_the_model_after_construction_are_stepped_not_reverted():
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    opt = C.optim.SGD(model, lr=0.1)
    model.kernel[...] = jnp.full((2, 1), 5.0)  # a manual edit
    opt.step(_zero_grads(model))
    np.testing.assert_array_equal(np.asarray(model.kernel[...]), np.full((2, 1), 5.0))
    # a checkpoint loaded with nnx.update after the optimizer exists (torch: model.load_state_dict)
    ckpt = jax.tree.map(lambda a: jnp.full_like(a, 2.0), nnx.state(model, nnx.Param))
    nnx.update(model, ckpt)
    opt.step(jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))
    np.testing.assert_allclose(np.asarray(model.kernel[...]), np.full((2, 1), 1.9), rtol=1e-6)
    # the same with the Variables given (compat.nn.Module.parameters()'s form), beside torch
    layer = nnx.Linear(3, 2, rngs=nnx.Rngs(1))
    t = _torch_linear(layer)
    opt = C.optim.Adam([layer.kernel, layer.bias], lr=0.1, weight_decay=0.1)
    topt = torch.optim.Adam([t.weight, t.bias], lr=0.1, weight_decay=0.1)
    for k in range(3):
        g_w, g_b = np.full((2, 3), 0.5 + k, np.float32), np.full(2, -1.0 + k, np.float32)
        opt.step([jnp.asarray(g_w.T), jnp.asarray(g_b)])
        t.weight.grad, t.bias.grad = torch.tensor(g_w), torch.tensor(g_b)
        topt.step()
        layer.bias[...] = layer.bias[...] * 0.5  # written between steps, in both
        with torch.no_grad():
            t.bias.mul_(0.5)
    np.testing.assert_allclose(
        np.asarray(layer.kernel[...]), t.weight.detach().numpy().T, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(layer.bias[...]), t.bias.detach().numpy(), rtol=1e-5, atol=1e-6)


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.enc = nnx.Linear(3, 4, rngs=rngs)
        self.head = nnx.Linear(4, 1, rngs=rngs)

    def __call__(self, x):
        return self.head(jnp.tanh(self.enc(x)))


def test_variables_with_the_grads_of_an_enclosing_module_are_matched_by_identity():
    x, y = _data()
    net = _Net(nnx.Rngs(0))
    twin = _Net(nnx.Rngs(0))
    C.optim.SGD(net, lr=0.0)  # registers net (a compat.nn.Module registers itself)
    # groups hold the sub-modules' Variables; the grads are nnx.grad of the whole model
    opt = C.optim.SGD(
        [{"params": [net.head.kernel, net.head.bias]}, {"params": [net.enc.kernel], "lr": 0.05}], lr=0.1
    )
    ref = C.optim.SGD(
        [{"params": twin.head}, {"params": [twin.enc.kernel], "lr": 0.05}], lr=0.1
    )  # the same through a sub-module and an aligned list
    loss = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))
    for _ in range(3):
        opt.step(loss(net))
        g = loss(twin)
        ref.step([g["head"], [g["enc"]["kernel"]]])
    for a, b in [(net.head.kernel, twin.head.kernel), (net.enc.kernel, twin.enc.kernel)]:
        np.testing.assert_array_equal(np.asarray(a[...]), np.asarray(b[...]))
    np.testing.assert_array_equal(np.asarray(net.enc.bias[...]), np.asarray(_Net(nnx.Rngs(0)).enc.bias[...]))
    # a flat list aligned with the parameters of all groups, None skipping one
    before = np.asarray(net.head.bias[...]).copy()
    opt.step([jnp.ones((4, 1)), None, jnp.ones((3, 4))])
    np.testing.assert_array_equal(np.asarray(net.head.bias[...]), before)
    # grads whose paths fit no registered module holding these parameters: a clear error, nothing changed
    stray = nnx.Linear(4, 1, rngs=nnx.Rngs(3))
    snapshot = [np.asarray(v[...]).copy() for v in (net.head.kernel, net.head.bias, net.enc.kernel)]
    with pytest.raises(ValueError, match="cannot match the gradients"):
        opt.step(nnx.grad(lambda m: jnp.sum(m(jnp.ones((1, 4)))))(stray))
    for v, s in zip((net.head.kernel, net.head.bias, net.enc.kernel), snapshot, strict=True):
        np.testing.assert_array_equal(np.asarray(v[...]), s)


def test_step_under_nnx_jit_refuses_before_touching_anything():
    x, y = _data()
    model, twin = _MLP(nnx.Rngs(0)), _MLP(nnx.Rngs(0))
    opt, ref = C.optim.Adam(model, lr=0.01), C.optim.Adam(twin, lr=0.01)
    grad_fn = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))
    opt.step(grad_fn(model)[1])
    ref.step(grad_fn(twin)[1])

    @nnx.jit
    def train_step(m):
        loss, grads = grad_fn(m)
        opt.step(grads)
        return loss

    with pytest.raises(RuntimeError, match=r"inside jax.jit / nnx.jit.*nothing was changed"):
        train_step(model)
    with pytest.raises(RuntimeError, match="inside jax.jit"):
        nnx.jit(lambda m: opt.step(lambda: jnp.mean((m(x) - y) ** 2)))(model)
    jax.tree.map(np.testing.assert_array_equal, nnx.state(model, nnx.Param), nnx.state(twin, nnx.Param))
    jax.tree.map(np.testing.assert_array_equal, opt.state_dict()["state"], ref.state_dict()["state"])
    opt.step(grad_fn(model)[1])  # still a working optimizer: no tracer leaked into it
    ref.step(grad_fn(twin)[1])
    jax.tree.map(np.testing.assert_array_equal, nnx.state(model, nnx.Param), nnx.state(twin, nnx.Param))


def test_a_closure_defined_in_the_loop_compiles_once():
    rng = np.random.default_rng(0)
    batches = [
        (
            jnp.asarray(rng.standard_normal((8, 3)), jnp.float32),
            jnp.asarray(rng.standard_normal((8, 1)), jnp.float32),
        )
        for _ in range(5)
    ]
    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    lbfgs = C.optim.LBFGS(model, max_iter=3, history_size=3)
    sgd = C.optim.SGD(nnx.Linear(3, 1, rngs=nnx.Rngs(0)), lr=0.1)
    counts = []
    for x, y in batches:
        before = _COMPILES[0]

        def closure(m):  # torch's habit: a new closure object at every iteration, over the new batch
            return jnp.mean((m(x) - y) ** 2)  # noqa: B023  (called in this iteration)

        lbfgs.step(closure)
        sgd.step(closure)
        counts.append(_COMPILES[0] - before)
    assert counts[0] > 0 and counts[2:] == [0, 0, 0], counts


def test_zero_argument_and_outer_model_closures_are_differentiated_like_torch():
    x, y = _data()
    model = nnx.Linear(3, 1, rngs=nnx.Rngs(2))
    t = _torch_linear(model)
    kw = dict(lr=0.5, max_iter=4, history_size=3)
    opt = C.optim.LBFGS(model, **kw)
    topt = torch.optim.LBFGS([t.bias, t.weight], **kw)  # nnx order: bias, kernel
    tx, ty = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y))

    def tclosure():
        topt.zero_grad()
        loss = ((t(tx) - ty) ** 2).mean()
        loss.backward()
        return loss

    def outer_model(_m):  # ignores its argument and uses the outer model: torch's habit
        return jnp.mean((model(x) - y) ** 2)

    for closure in (lambda: jnp.mean((model(x) - y) ** 2), outer_model):
        np.testing.assert_allclose(float(opt.step(closure)), topt.step(tclosure).item(), rtol=2e-5)
        np.testing.assert_allclose(
            np.asarray(model.kernel[...]), t.weight.detach().numpy().T, rtol=2e-5, atol=1e-6
        )
    sgd = C.optim.SGD([model.kernel, model.bias], lr=0.1)
    before = np.asarray(model.kernel[...]).copy()
    with pytest.raises(ValueError, match="does not depend on the optimizer's parameters"):
        sgd.step(lambda: jnp.sum(x))
    with pytest.raises(ValueError, match="does not depend on the optimizer's parameters"):
        opt.step(lambda: jnp.sum(y))
    np.testing.assert_array_equal(np.asarray(model.kernel[...]), before)


def _torch_grads(tree):
    return [torch.tensor(np.asarray(g)) for g in jax.tree.leaves(tree)]


def test_clip_grad_norm_written_the_torch_way_clips_in_place():
    x, y = _data()
    model = _MLP(nnx.Rngs(0))
    _, grads = nnx.value_and_grad(lambda m: jnp.sum((m(x) - y) ** 2))(model)
    tparams = [torch.zeros(np.shape(g), requires_grad=True) for g in jax.tree.leaves(grads)]
    for p, g in zip(tparams, _torch_grads(grads), strict=True):
        p.grad = g
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
    norm = C.nn.utils.clip_grad_norm_(grads, 1.0)  # return value ignorable: grads clipped in place
    np.testing.assert_allclose(norm.item(), tnorm.item(), rtol=1e-6)
    for g, p in zip(jax.tree.leaves(grads), tparams, strict=True):
        np.testing.assert_allclose(np.asarray(g), p.grad.numpy(), rtol=1e-6, atol=1e-7)
    # dicts and lists too; clip_grad_value_ likewise (returns None, as torch)
    d = {"a": jnp.array([3.0, -4.0]), "b": [jnp.array([10.0]), None]}
    assert C.nn.utils.clip_grad_value_(d, 0.5) is None
    np.testing.assert_array_equal(np.asarray(d["a"]), [0.5, -0.5])
    np.testing.assert_array_equal(np.asarray(d["b"][0]), [0.5])
    lst = [jnp.array([3.0, 4.0])]
    assert C.nn.utils.clip_grad_norm_(lst, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(np.asarray(lst[0]), [0.6, 0.8], rtol=1e-5)
    # immutable containers: a clear error, never a silent no-op
    for bad in ((jnp.ones(2),), jnp.ones(2), {"a": (jnp.ones(2),)}, iter([jnp.ones(2)])):
        with pytest.raises(TypeError, match=r"in place.*jaxopt_losses.clip.clip_grad_norm"):
            C.nn.utils.clip_grad_norm_(bad, 1.0)
        with pytest.raises(TypeError, match=r"in place.*jaxopt_losses.clip.clip_grad_value"):
            C.nn.utils.clip_grad_value_(bad, 1.0)


# betas etc. are static Python floats (``1 - beta2`` in double, as torch): state within 1e-5 like the
# parameters (3.8e-7 relative measured over 40 steps; 1.3e-5 when they were traced float32 scalars)
STATE_TOL = dict(rtol=1e-5, atol=1e-5)

NONE_CONFIGS = [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=2.0, weight_decay=0.1)),
]


@pytest.mark.parametrize(("name", "kw"), NONE_CONFIGS, ids=[c[0] for c in NONE_CONFIGS])
def test_none_gradients_skip_their_parameters_like_torch(name, kw):
    p0, gs = init_params(SHAPES), grad_stream(SHAPES, steps=6)
    masks = [(1, 0, 1), (1, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)]
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = getattr(torch.optim, name)(tparams, **kw)
    layer = [nnx.Param(jnp.asarray(p)) for p in p0]
    opt = getattr(C.optim, name)(layer, **kw)
    for t, mask in enumerate(masks):
        for p, g, m in zip(tparams, gs[t], mask, strict=True):
            p.grad = torch.tensor(g) if m else None
        topt.step()
        opt.step([jnp.asarray(g) if m else None for g, m in zip(gs[t], mask, strict=True)])
        assert_trajectories_close(
            [[np.asarray(v[...]) for v in layer]], [[p.detach().numpy() for p in tparams]]
        )
        tsd, csd = topt.state_dict(), opt.state_dict()
        assert sorted(csd["state"]) == sorted(tsd["state"])
        for k, d in tsd["state"].items():
            assert sorted(csd["state"][k]) == sorted(d)
            for key, v in d.items():
                np.testing.assert_allclose(np.asarray(csd["state"][k][key]), np.asarray(v), **STATE_TOL)
        if t == 1:  # only parameters 0 and 2 have state: torch's dict loads here, ours into torch
            assert 1 not in tsd["state"]
            opt = getattr(C.optim, name)(layer, **kw)
            opt.load_state_dict(tsd)
            t2 = getattr(torch.optim, name)(tparams, **kw)
            t2.load_state_dict(_tensorize(csd))
            assert sorted(t2.state_dict()["state"]) == sorted(tsd["state"])
            topt = t2


def test_arrays_read_before_a_step_stay_valid():
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    opt = C.optim.Adam(model, lr=0.1)
    kernel = model.kernel[...]
    kept = np.asarray(kernel).copy()
    for _ in range(2):
        opt.step(jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))
    np.testing.assert_array_equal(np.asarray(kernel), kept)  # not deleted by donation
    exp_avg = opt.state[1]["exp_avg"]
    arrays = C.optim.SGD([jnp.ones(3)], lr=0.1, momentum=0.9)
    first = arrays.params[0]
    arrays.step([jnp.ones(3)])
    arrays.step([jnp.ones(3)])
    np.testing.assert_array_equal(np.asarray(first), np.ones(3))
    opt.step(jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))
    assert np.asarray(exp_avg).shape == (2, 1)


def test_a_closure_whose_computation_keeps_changing_is_reported_once():
    opt = C.optim.SGD({"w": jnp.ones(2)}, lr=0.1)
    with pytest.warns(RuntimeWarning, match=r"different computations.*jnp.asarray") as record:
        for k in range(8):
            scale = 1.0 + k  # a Python number captured by the closure: a new constant in the computation

            def closure(p):
                return jnp.sum(p["w"] ** 2) * scale  # noqa: B023

            opt.step(closure)
    assert len(record) == 1
