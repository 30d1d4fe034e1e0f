"""Each registered kernel, forward plus backward, at a small and a large size."""

import pytest

from bench.conftest import BACKENDS
from bench.workloads import KERNEL_NAMES, KERNEL_SIZES, make_kernel


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", list(KERNEL_SIZES))
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_forward_backward(benchmark, name, size, backend):
    benchmark.group = f"kernel {name} {size}"
    benchmark.extra_info.update(table="kernels", row=name, size=size, backend=backend, per=1)
    benchmark(make_kernel(name, size, backend))
