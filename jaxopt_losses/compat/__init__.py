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

# Public names: ONE line each in the TYPE_CHECKING block below (``from . import sub as sub`` for a submodule).
# Type checkers read it; at run time jaxopt_losses._lazy parses it and imports a submodule on first access.
import typing

if typing.TYPE_CHECKING:
    from . import amp as amp
    from . import nn as nn
    from . import optim as optim
    from .nn._functional_basic import flatten as flatten
    from .nn._init import manual_seed as manual_seed
else:
    from jaxopt_losses._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
