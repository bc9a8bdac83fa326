"""Side-by-side benchmarks of jaxopt_losses against optax and PyTorch (``python -m benchmarks``).

The run keeps torch's default OpenMP settings. Note that torch's OpenMP worker threads busy-wait for a
while after each parallel region, so in an interleaved run they can spin on the cores XLA uses next; run with
``OMP_WAIT_POLICY=PASSIVE`` to see the other side of that trade (JAX steps faster, torch's per-tensor
parallel regions on many small tensors much slower). RESULTS.md records which policy was in force.
"""
