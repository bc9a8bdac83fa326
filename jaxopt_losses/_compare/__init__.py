"""``jaxopt-losses compare``: train the same models on the same data in JAX (jaxopt_losses) and PyTorch.

Modules: :mod:`.registry` (the names the command accepts), :mod:`.data` (datasets, the user's files, views,
minibatch order), :mod:`.models` (a model as a pair: ``torch.nn`` and ``compat.nn`` from one source, same
weights), :mod:`.jax_runner` and :mod:`.torch_runner` (one training run each), :mod:`.report` (deviations,
table, JSON), :mod:`.plots` (the figures), :mod:`.html` (``--html``), :mod:`.outdir` (``--out`` checks,
atomic writes) and :mod:`.session` (the whole comparison). Nothing here imports torch until the PyTorch
side is used.
"""
