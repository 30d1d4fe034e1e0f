"""Benchmarks run only with ``pytest --benchmark-only`` (the plain test run
skips them; ``--benchmark-disable`` runs each body once as a smoke test)."""

import pytest

from bench.workloads import have

requires_jax = pytest.mark.skipif(not have("jax"), reason="JAX is not installed")
requires_torch = pytest.mark.skipif(
    not have("torch"), reason="PyTorch is not installed (pip install torch==2.13.0)"
)
BACKENDS = ["numpy", pytest.param("jax", marks=requires_jax)]
