"""Gradients given as a mapping (``nnx.State`` of ``nnx.grad``) matched to a compat optimizer's Variables.

The resolver (``compat._refs.resolve``) places each referenced Variable in the gradient tree by identity,
trying every registered module and each of its sub-modules (a sub-module's paths are its own graph's, as
``nnx.grad`` taken w.r.t. it gives them). When two placements fit and disagree it refuses (the "ambiguous
match" error) instead of guessing; a failing step changes nothing; the list form still works.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxopt_losses.compat as C

AMBIGUOUS = (
    r"the gradients match the optimizer's parameters in more than one way \(modules \[{}\]\); pass a list "
    r"of gradients in the order of the optimizer's parameters instead"
)


class Holder(nnx.Module):
    def __init__(self, **variables):
        for k, v in variables.items():
            setattr(self, k, v)


def _params():
    return nnx.Param(jnp.ones(2)), nnx.Param(jnp.full(3, 2.0))


def test_two_modules_holding_the_variables_under_swapped_names_are_ambiguous():
    v, u = _params()
    first, second = Holder(x=v, y=u), Holder(x=u, y=v)  # same paths, different Variables behind them
    opt = C.optim.SGD(first, lr=0.1)
    C.optim.SGD(second, lr=0.1)  # registers the second module too
    both = C.optim.SGD([v, u], lr=0.1)
    grads = nnx.grad(lambda m: jnp.sum(m.x[...] ** 2) + jnp.sum(m.y[...]))(first)
    before = [np.asarray(v[...]), np.asarray(u[...])]
    with pytest.raises(ValueError, match=AMBIGUOUS.format("'Holder', 'Holder'")):
        both.step(grads)
    np.testing.assert_array_equal(np.asarray(v[...]), before[0])  # nothing changed
    np.testing.assert_array_equal(np.asarray(u[...]), before[1])
    assert both.state_dict()["state"] == {}
    both.step([grads["x"][...], grads["y"][...]])  # the list form the message suggests
    np.testing.assert_allclose(np.asarray(v[...]), 1.0 - 0.1 * 2.0)
    np.testing.assert_allclose(np.asarray(u[...]), 2.0 - 0.1)
    with pytest.raises(ValueError, match=AMBIGUOUS.format("'Holder', 'Holder'")):
        opt.step(grads)  # the optimizer built on ``first`` too: ``second`` holds its Variables as well


def test_sub_modules_sharing_variables_under_swapped_names_are_ambiguous_not_guessed():
    """Inside one model: ``nnx.grad`` w.r.t. ``model.a`` or ``model.b`` gives the same paths for different
    Variables. (Before: only each Variable's first path in the model counted, so ``model.b`` did not seem
    to hold them and ``model.a``'s placement was used, silently wrong for ``model.b``'s gradients.)"""
    v, u = _params()
    model = Holder(a=Holder(w=v, z=u), b=Holder(w=u, z=v))
    opt = C.optim.SGD(model, lr=0.1)
    grads_b = nnx.grad(lambda m: jnp.sum(m.w[...]) * 0 + jnp.sum(m.z[...] ** 2))(model.b)  # grad of v only
    with pytest.raises(ValueError, match=AMBIGUOUS.format("'Holder.a', 'Holder.b'")):
        opt.step(grads_b)
    np.testing.assert_array_equal(np.asarray(v[...]), np.ones(2))
    np.testing.assert_array_equal(np.asarray(u[...]), np.full(3, 2.0))


def test_gradients_of_a_sub_module_holding_a_tied_variable_are_matched():
    """A Variable tied into a sub-module after its first appearance (weight tying): the gradients of
    ``nnx.grad`` w.r.t. that sub-module hold it at the sub-module's own path. (Before: "cannot match".)"""
    v, u = _params()
    model = Holder(emb=Holder(weight=v), head=Holder(weight=v, bias=u))
    opt = C.optim.SGD(model, lr=0.1)
    grads = nnx.grad(lambda m: jnp.sum(m.weight[...] ** 2) + jnp.sum(m.bias[...]))(model.head)
    opt.step(grads)
    np.testing.assert_allclose(np.asarray(v[...]), 1.0 - 0.1 * 2.0)
    np.testing.assert_allclose(np.asarray(u[...]), 2.0 - 0.1)
