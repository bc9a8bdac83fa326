"""A PyTorch-shaped mirror: ``import jaxopt_losses.compat as torch`` and keep your training code.

Everything here is a thin stateful shell over the functional core (:mod:`jaxopt_losses.optim`,
:mod:`jaxopt_losses.losses`, :mod:`jaxopt_losses.schedules`, :mod:`jaxopt_losses.clip`); no math is
implemented twice. Since JAX arrays are immutable and there is no ``.grad`` attribute, the idioms that
replace ``loss.backward(); optimizer.step()`` are:

=====================================================  =====================================================
PyTorch                                                 jaxopt_losses.compat
=====================================================  =====================================================
``opt = torch.optim.SGD(model.parameters(), lr=0.1)``   ``opt = torch.optim.SGD(model, lr=0.1)`` (an
                                                        ``nnx.Module``; or a list / pytree of arrays)
``opt.zero_grad()``                                     ``opt.zero_grad()`` (a no-op: grads are not stored)
``loss = crit(model(x), y); loss.backward()``           ``loss, grads = nnx.value_and_grad(f)(model)``
``opt.step()``                                          ``opt.step(grads)``
``clip_grad_norm_(model.parameters(), 1.0)``            ``norm = clip_grad_norm_(grads, 1.0)`` (in place)
``opt.step(closure)`` (``closure`` calls backward)      ``loss = opt.step(closure)`` (``closure(model)`` /
                                                        ``closure(params)`` returns the loss; it is
                                                        differentiated for you)
``sched.step()``                                        ``sched.step()`` (writes ``lr`` into
                                                        ``opt.param_groups`` exactly like torch)
=====================================================  =====================================================

Models: ``torch.nn.Module`` subclasses port with their imports changed (:class:`compat.nn.Module
<jaxopt_losses.compat.nn.Module>` and torch-layout layers), ``F = torch.nn.functional`` is
:mod:`jaxopt_losses.compat.nn.functional`, and :func:`manual_seed` seeds the key their initial parameters
are drawn from.

Importing this package never imports torch.
"""

import importlib

_SUBMODULES = ("optim", "nn")
__all__ = [*_SUBMODULES, "flatten", "manual_seed"]


def manual_seed(seed: int) -> None:
    """``torch.manual_seed(seed)``: seed the global JAX key that compat.nn layers built without ``rngs=``
    draw their initial parameters from (and ``F.dropout`` its masks when given no ``key=``)."""
    from jaxopt_losses.compat.nn._init import manual_seed as _seed

    _seed(seed)


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """``torch.flatten(input, start_dim=0, end_dim=-1)`` on a JAX array (as torchvision's ``forward``
    writes ``torch.flatten(x, 1)``)."""
    from jaxopt_losses.compat.nn._functional_basic import flatten as _flatten

    return _flatten(input, start_dim, end_dim)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
