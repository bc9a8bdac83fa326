import jax
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX types enabled (restored afterwards)."""
    with jax.enable_x64(True):
        yield
