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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run only when selected by a marker expression naming them
    (``pytest -m slow``); a plain ``pytest`` skips them, so the default run stays fast."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
