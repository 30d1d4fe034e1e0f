"""Many XOR networks at once: train_xor_many against a sharded jax.vmap, same devices."""

import pytest

from bench.conftest import requires_jax
from bench.workloads import MANY_EPOCHS, make_many, make_many_vmap_peer

SIZES = [1_000, 10_000]
DEVICES = [1, 2]


def _bench(benchmark, run, n, devices, row, role, epochs=MANY_EPOCHS):
    benchmark.group = f"many networks, n={n}, {devices} device(s)"
    benchmark.extra_info.update(
        table="many", row=row, role=role, n=n, devices=devices, per=n * epochs
    )
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


@requires_jax
@pytest.mark.parametrize("devices", DEVICES)
@pytest.mark.parametrize("n", SIZES)
def test_train_xor_many_jax(benchmark, n, devices):
    _bench(benchmark, make_many(n, devices), n, devices, "train_xor_many (JAX)", "ours")


@requires_jax
@pytest.mark.parametrize("data", ["args", "constants"])
@pytest.mark.parametrize("devices", DEVICES)
@pytest.mark.parametrize("n", SIZES)
def test_sharded_vmap_peer(benchmark, n, devices, data):
    run = make_many_vmap_peer(n, devices, data)
    _bench(benchmark, run, n, devices, f"jit(vmap) fused step, data as {data}", "peer")


@pytest.mark.parametrize("n", SIZES)
def test_train_xor_many_numpy(benchmark, n):
    run = make_many(n, None, backend="numpy")
    _bench(benchmark, run, n, 1, "train_xor_many (NumPy)", "info", MANY_EPOCHS // 10)
