"""Each kernel, forward plus backward, at the XOR size and at a large size."""

import pytest

from bench.conftest import BACKENDS
from bench.workloads import KERNEL_OPS, make_kernel


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", ["xor", "large"])
@pytest.mark.parametrize("op", KERNEL_OPS)
def test_kernel_forward_backward(benchmark, op, size, backend):
    benchmark.group = f"kernel {op} {size}"
    benchmark(make_kernel(op, size, backend))
