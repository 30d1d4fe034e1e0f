"""train_mlp per epoch against scikit-learn's MLPClassifier at the same settings."""

import pytest

from bench.conftest import BACKENDS, requires_sklearn
from bench.workloads import MLP_SETTINGS, make_sklearn_mlp, make_train_mlp

pytestmark = requires_sklearn
DTYPES = ["float64", "float32"]


def _bench(benchmark, run, name, dtype, row, role):
    epochs = MLP_SETTINGS[name][4]
    benchmark.group = f"{name}, {dtype}"
    benchmark.extra_info.update(
        table="mlp", setting=name, dtype=dtype, row=row, role=role, per=epochs
    )
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MLP_SETTINGS))
def test_train_mlp(benchmark, name, backend, dtype):
    run = make_train_mlp(name, backend, dtype)
    _bench(benchmark, run, name, dtype, f"train_mlp ({backend})", "ours")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MLP_SETTINGS))
def test_sklearn_mlp_classifier(benchmark, name, dtype):
    _bench(benchmark, make_sklearn_mlp(name, dtype), name, dtype, "MLPClassifier", "peer")
