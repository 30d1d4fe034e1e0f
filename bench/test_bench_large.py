"""One SGD step of a 512 -> 1024 -> 1 sigmoid network on a batch of 4096, and its floor."""

import pytest

from bench.conftest import BACKENDS, requires_jax, requires_torch
from bench.workloads import (
    LOOP_STEPS,
    make_large_jax_grad,
    make_large_matmuls,
    make_large_step,
    make_large_torch,
)


def _bench(benchmark, run, row, role, per):
    benchmark.group = "large step"
    benchmark.extra_info.update(table="large", row=row, role=role, per=per)
    benchmark(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_mlp_step(benchmark, backend):
    per = 1 if backend == "numpy" else LOOP_STEPS
    _bench(benchmark, make_large_step(backend), f"train_mlp step ({backend})", "ours", per)


@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_products_alone(benchmark, backend):
    per = 1 if backend == "numpy" else LOOP_STEPS
    _bench(benchmark, make_large_matmuls(backend), f"matrix products ({backend})", "floor", per)


@requires_jax
def test_jax_grad_step(benchmark):
    _bench(benchmark, make_large_jax_grad(), "jax.grad step", "peer", LOOP_STEPS)


@requires_torch
def test_torch_eager_step(benchmark):
    _bench(benchmark, make_large_torch(), "PyTorch eager step", "torch", 1)
