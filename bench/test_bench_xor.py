"""The manual XOR loop, 10,000 steps, against autodiff peers (same init, same data)."""

from bench.conftest import requires_jax, requires_torch
from bench.workloads import (
    make_xor_jax_compiled,
    make_xor_jax_grad,
    make_xor_jax_per_step,
    make_xor_numpy,
    make_xor_numpy_chain,
    make_xor_torch,
)

STEPS = 10_000


def _bench(benchmark, run):
    benchmark.group = "xor loop, 10k steps"
    benchmark.pedantic(run, rounds=3, iterations=1)


def test_numpy_manual(benchmark):
    _bench(benchmark, make_xor_numpy(STEPS))


def test_numpy_kernel_chain(benchmark):
    _bench(benchmark, make_xor_numpy_chain(STEPS))


@requires_jax
def test_jax_manual_whole_loop_compiled(benchmark):
    _bench(benchmark, make_xor_jax_compiled(STEPS, "constants"))


@requires_jax
def test_jax_manual_whole_loop_compiled_data_as_args(benchmark):
    _bench(benchmark, make_xor_jax_compiled(STEPS, "args"))


@requires_jax
def test_jax_manual_one_call_per_step(benchmark):
    _bench(benchmark, make_xor_jax_per_step(STEPS))


@requires_jax
def test_jax_grad_data_as_constants(benchmark):
    _bench(benchmark, make_xor_jax_grad(STEPS, "constants"))


@requires_jax
def test_jax_grad_data_as_args(benchmark):
    _bench(benchmark, make_xor_jax_grad(STEPS, "args"))


@requires_torch
def test_torch_eager_autograd(benchmark):
    _bench(benchmark, make_xor_torch(STEPS))
