"""The layer kernels, forward + backward at the issue's sizes, against their peers.

NumPy against PyTorch eager, JAX against ``jax.vjp`` of the idiomatic forward
(see :mod:`bench.layers`). PyTorch and the BLAS under NumPy run on one
thread. For the README's ratios use ``python -m bench.layers``, which
interleaves the four and takes medians of per-round ratios.
"""

import pytest

from bench.conftest import have, requires_jax, requires_torch
from bench.layers import LAYERS, make, one_thread

IMPLS = [
    "numpy",
    pytest.param("torch", marks=requires_torch),
    pytest.param("jax", marks=requires_jax),
    pytest.param("jax_vjp", marks=requires_jax),
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    if have("threadpoolctl") or have("torch"):
        one_thread()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", LAYERS)
def test_layer_forward_backward(benchmark, name, impl):
    benchmark.group = f"layer {name}"
    benchmark.extra_info.update(table="layers", row=name, impl=impl, per=1)
    benchmark.pedantic(make(name, impl), rounds=5, iterations=1, warmup_rounds=1)
