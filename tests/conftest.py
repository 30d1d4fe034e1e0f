"""Shared fixtures: the backend parameter, JAX float64, hypothesis profiles.

Hypothesis profiles (select with ``--hypothesis-profile NAME`` or the
``HYPOTHESIS_PROFILE`` environment variable):

- ``ci``: built on hypothesis' own "ci" profile (derandomized, no example
  database), no deadline, 25 examples per property. Loaded automatically
  when ``CI`` is set, and the default here too, so a plain ``pytest`` is
  deterministic and bounded.
- ``thorough``: 500 random examples per property, no deadline, for local runs.

Deadlines are off because the first call of a jitted JAX kernel at a new
shape compiles (~40 ms), which says nothing about the code under test.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    parent=settings.get_profile("ci"),
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:
    import jax

    # Gradient checks need float64 on JAX; set once for the whole test process
    # (the library itself never flips this switch on import).
    jax.config.update("jax_enable_x64", True)
    HAVE_JAX = True
except ImportError:  # pragma: no cover - exercised on a machine without JAX
    HAVE_JAX = False

BACKEND_PARAMS = [
    "numpy",
    pytest.param("jax", marks=pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per backend; JAX skips cleanly when absent."""
    return request.param


@pytest.fixture
def K(backend_name: str):
    """The kernels of the current backend."""
    from backprop.kernels import get_backend

    return get_backend(backend_name)


@pytest.fixture
def block_import(monkeypatch: pytest.MonkeyPatch):
    """``block_import("jax")`` makes importing that package (and its submodules) fail."""
    import builtins

    real_import = builtins.__import__

    def block(package: str) -> None:
        def fake_import(name, *args, **kwargs):
            if name == package or name.startswith(package + "."):
                raise ImportError(f"No module named {package!r}")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", fake_import)

    return block


# Parametrizations the default run leaves to ``-m slow`` (CI runs both), each the
# second or third check of something the default run checks quickly elsewhere:
# the README's test command must finish in about 90 s on 2 cores, and JAX's
# compilation of every new shape and dtype is most of the suite's time.
SLOW_CASES = {
    # JAX's backward is held to NumPy's at 1e-12 (test_layer_kernels, test_kernels'
    # agreement tests); its own finite differences repeat that at new shapes.
    "tests/test_kernels.py::test_batched_matmul_and_bias_match_finite_differences[jax]",
    "tests/test_kernels.py::test_backward_preserves_dtype[jax-float64]",  # float32 is the test
    "tests/test_layer_kernels.py::test_finite_and_silent_at_the_extremes[jax-float64]",
    # the float64 transcriptions on JAX stay, and float32 on NumPy
    "tests/test_fast.py::test_xor_transcription_gives_the_source_s_loss_and_every_gradient"
    "[single-jax-float32]",
    "tests/test_fast.py::test_xor_transcription_gives_the_source_s_loss_and_every_gradient"
    "[stacked-jax-float32]",
    # the 2-64-32-16-1 network: ~3,000 entries differenced; the smaller ones stay
    "tests/test_gradcheck_networks.py::test_mlp_gradients_are_right[numpy-2-64-32-16-1 sigmoid,"
    " bce]",
    "tests/test_gradcheck_networks.py::test_mlp_gradients_are_right[jax-2-64-32-16-1 sigmoid, bce]",
    "tests/test_gradcheck_networks.py::test_mlp_gradients_match_jax_grad_and_numpy[2-64-32-16-1 "
    "sigmoid, bce]",
    # NumPy's run stays; JAX equals NumPy in test_train's agreement tests
    "tests/test_model.py::test_both_estimators_load_and_predict_as_the_saved_ones[jax]",
    "tests/test_experiments.py::test_deep_sigmoid_stack_plateaus_and_gradients_vanish[jax]",
    # test_distributed_start covers a closed port and a silent peer in 1 s each
    "tests/test_distributed.py::test_an_unreachable_coordinator_is_a_clear_error_not_a_hang",
}
LAYER_KERNELS = (
    "softmax", "gelu", "layernorm", "batchnorm", "dropout", "embedding", "conv2d", "maxpool2d",
    "attention",
)  # fmt: skip
SLOW_PREFIXES = (
    # JAX's finite differences of every kernel: JAX equals NumPy's backward to 1e-12
    # (test_numpy_jax_and_jax_grad_agree), whose own finite differences run here
    "tests/test_kernels.py::test_backward_matches_finite_differences[jax-",
    # the layer kernels' three-way agreement is test_layer_kernels' (to 1e-12, and jax.vjp)
    *(
        f"tests/test_gradcheck_properties.py::test_numpy_jax_and_jax_grad_agree[{name}-"
        for name in LAYER_KERNELS
    ),
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (or listed in SLOW_CASES) run only when selected by a marker
    expression naming them (``pytest -m slow``); a plain ``pytest`` skips them, so the
    default run stays fast."""
    for item in items:
        if item.nodeid in SLOW_CASES or item.nodeid.startswith(SLOW_PREFIXES):
            item.add_marker(pytest.mark.slow)
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
