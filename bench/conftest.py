"""Benchmarks run only with ``pytest bench --benchmark-only`` (a plain ``pytest``
skips them; ``--benchmark-disable`` runs each body once as a smoke test).

JAX gets one CPU device per core (two on this project's machines) so that the
many-networks comparisons can run at 1 and at 2 devices; every other JAX
workload runs on the default device. This must happen before JAX starts its
backend, which is why it is done here, at import.
"""

from __future__ import annotations

import os
import platform

import pytest

from bench.workloads import have

if have("jax"):
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", max(2, os.cpu_count() or 1))
    except RuntimeError:  # the backend already started (e.g. tests/ imported first)
        pass

requires_jax = pytest.mark.skipif(not have("jax"), reason="JAX is not installed")
requires_torch = pytest.mark.skipif(
    not have("torch"), reason="PyTorch is not installed (pip install torch==2.13.0)"
)
requires_sklearn = pytest.mark.skipif(not have("sklearn"), reason="scikit-learn is not installed")
BACKENDS = ["numpy", pytest.param("jax", marks=requires_jax)]


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what the timings depend on: library versions, BLAS threads, JAX devices."""
    import numpy as np

    info = {"numpy": np.__version__, "python": platform.python_version()}
    for name in ("jax", "torch", "sklearn"):
        if have(name):
            module = __import__(name)
            info[name] = module.__version__
    if have("jax"):
        import jax

        info["jax_devices"] = len(jax.devices())
    if have("torch"):
        import torch

        info["torch_threads"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: pool.get(k) for k in ("internal_api", "num_threads", "architecture")}
            for pool in threadpool_info()
        ]
    except ImportError:
        pass
    info["blas_env"] = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    machine_info["backprop"] = info
