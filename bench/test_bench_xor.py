"""The notes' XOR loop, 10,000 full-batch epochs, against the peers users would pick."""

import pytest

from bench.conftest import requires_jax, requires_torch
from bench.workloads import (
    XOR_EPOCHS,
    XOR_PEERS,
    make_xor_jax,
    make_xor_jax_grad,
    make_xor_numpy,
    make_xor_numpy_reference,
    make_xor_torch,
)

GROUP = "xor 2-2-1, 10,000 epochs"


def _bench(benchmark, run, row, role, rounds=5):
    benchmark.group = GROUP
    benchmark.extra_info.update(table="xor", row=row, role=role, per=XOR_EPOCHS)
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)


def test_numpy_train_xor_manual(benchmark):
    _bench(benchmark, make_xor_numpy(), "NumPy train_xor_manual (in place)", "ours")


def test_numpy_reference_chain(benchmark):
    _bench(benchmark, make_xor_numpy_reference(), "NumPy reference (xor_step loop)", "info", 2)


@requires_jax
def test_jax_train_xor_manual(benchmark):
    _bench(benchmark, make_xor_jax(), "JAX train_xor_manual (compiled)", "ours", 15)


@requires_jax
@pytest.mark.parametrize(("loss", "loop", "data"), XOR_PEERS)
def test_jax_grad_peer(benchmark, loss, loop, data):
    row = f"jax.grad peer: {loss}, {'loss every step' if loop == 'scan' else 'loss every 100'}"
    _bench(benchmark, make_xor_jax_grad(loss, loop, data), f"{row}, data as {data}", "peer", 15)


@requires_torch
def test_torch_eager(benchmark):
    _bench(benchmark, make_xor_torch(), "PyTorch eager (the notes' loop, 1 thread)", "torch", 3)
