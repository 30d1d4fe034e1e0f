"""One training step of a 512 -> 1024 -> 1 sigmoid MLP on a batch of 4096, and its floor."""

import pytest

from bench.conftest import BACKENDS, requires_jax, requires_torch
from bench.workloads import (
    make_large_jax_grad,
    make_large_jax_loop,
    make_large_matmuls,
    make_large_step,
    make_large_step_chain,
    make_large_torch,
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_manual_step(benchmark, backend):
    benchmark.group = "large step"
    benchmark(make_large_step(backend))


def test_numpy_kernel_chain_step(benchmark):
    benchmark.group = "large step"
    benchmark(make_large_step_chain())


@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_products_alone(benchmark, backend):
    benchmark.group = "large step"
    benchmark(make_large_matmuls(backend))


@requires_jax
@pytest.mark.parametrize("what", ["step", "matmuls"])
def test_jax_in_a_compiled_loop(benchmark, what):
    """LOOP_STEPS steps (or their products) per call: divide by LOOP_STEPS."""
    benchmark.group = "large step, JAX, compiled loop of LOOP_STEPS"
    benchmark(make_large_jax_loop(what))


@requires_jax
def test_jax_grad_step(benchmark):
    benchmark.group = "large step"
    benchmark(make_large_jax_grad())


@requires_torch
def test_torch_eager_step(benchmark):
    benchmark.group = "large step"
    benchmark(make_large_torch())
