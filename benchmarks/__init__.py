"""Side-by-side benchmarks of jaxopt_losses against optax and PyTorch (``python -m benchmarks``)."""
