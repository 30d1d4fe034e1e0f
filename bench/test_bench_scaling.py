"""Data-parallel train_mlp: the digits network, batches of 1024 rows, at 1 and 2 devices."""

import pytest

from bench.conftest import requires_jax, requires_sklearn
from bench.workloads import make_scaling, scaling_steps_per_run


@requires_jax
@requires_sklearn
@pytest.mark.parametrize("devices", [1, 2])
def test_data_parallel_steps(benchmark, devices):
    benchmark.group = "data-parallel digits, batch 1024"
    benchmark.extra_info.update(
        table="scaling", row=f"{devices} device(s)", devices=devices, per=scaling_steps_per_run()
    )
    benchmark.pedantic(make_scaling(devices), rounds=5, iterations=1, warmup_rounds=1)
