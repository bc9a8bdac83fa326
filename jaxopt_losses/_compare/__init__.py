"""``jaxopt-losses compare``: train the same models on the same data in JAX (jaxopt_losses) and PyTorch.

Modules: :mod:`.registry` (the names the command accepts), :mod:`.data` (datasets, initial weights,
minibatch order), :mod:`.jax_runner` and :mod:`.torch_runner` (one training run each), :mod:`.report`
(deviations, table, PNG, JSON) and :mod:`.session` (the whole comparison). Nothing here imports torch
until the PyTorch runner is used.
"""
