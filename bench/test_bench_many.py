"""Many XOR networks at once: train_xor_many against a plain jax.vmap of the single loop."""

import pytest

from bench.conftest import requires_jax
from bench.workloads import make_many, make_many_plain_vmap

STEPS = 1_000


@requires_jax
@pytest.mark.parametrize("n_nets", [1_000, 10_000])
def test_train_xor_many_jax(benchmark, n_nets):
    benchmark.group = f"many networks, n={n_nets}"
    benchmark.pedantic(make_many(n_nets, STEPS, "jax"), rounds=3, iterations=1)


@requires_jax
@pytest.mark.parametrize("n_nets", [1_000, 10_000])
def test_plain_vmap_of_single_loop(benchmark, n_nets):
    benchmark.group = f"many networks, n={n_nets}"
    benchmark.pedantic(make_many_plain_vmap(n_nets, STEPS), rounds=3, iterations=1)


@pytest.mark.parametrize("n_nets", [1_000, 10_000])
def test_train_xor_many_numpy(benchmark, n_nets):
    benchmark.group = f"many networks, n={n_nets}"
    benchmark.pedantic(make_many(n_nets, 100, "numpy"), rounds=3, iterations=1)
