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
``clip_grad_norm_(model.parameters(), 1.0)``            ``grads, norm = clip_grad_norm_(grads, 1.0)``
``opt.step(closure)`` (``closure`` calls backward)      ``loss = opt.step(closure)`` (``closure(model)`` /
                                                        ``closure(params)`` returns the loss; it is
                                                        differentiated for you)
``sched.step()``                                        ``sched.step()`` (writes ``lr`` into
                                                        ``opt.param_groups`` exactly like torch)
=====================================================  =====================================================

Importing this package never imports torch.
"""

import importlib

_SUBMODULES = ("optim", "nn", "amp")
__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES)
