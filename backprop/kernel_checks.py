"""Every kernel pair checked against finite differences, as one table.

``python -m backprop gradcheck`` prints :func:`format_table` of
:func:`check_all_kernels` for each installed backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.gradcheck import GradcheckReport, check_kernel
from kernels import Backend

KERNEL_PAIRS = (
    "matmul",
    "add_bias",
    "sigmoid",
    "relu",
    "identity",
    "bce",
    "bce_with_logits",
    "mse",
)


def kernel_cases(K: Backend, seed: int = 0) -> dict[str, tuple[Callable, Callable, dict]]:
    """One float64 test case per kernel pair: ``name -> (forward, backward, inputs)``.

    Inputs are random and well conditioned: ReLU inputs are kept at least
    0.1 from its kink at 0, probabilities for BCE inside [0.05, 0.95].
    """
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    z = 2 * rng.standard_normal((4, 3))
    z_off_kink = np.where(np.abs(z) < 0.1, 0.5, z)
    y = rng.integers(0, 2, (4, 3)).astype(np.float64)
    return {
        "matmul": (K.matmul_forward, K.matmul_backward, {"x": x, "w": w}),
        "add_bias": (
            K.add_bias_forward,
            K.add_bias_backward,
            {"x": x @ w, "b": rng.standard_normal(4)},
        ),
        "sigmoid": (K.sigmoid_forward, K.sigmoid_backward, {"z": z}),
        "relu": (K.relu_forward, K.relu_backward, {"z": z_off_kink}),
        "identity": (K.identity_forward, K.identity_backward, {"z": z}),
        "bce": (K.bce_forward, K.bce_backward, {"p": rng.uniform(0.05, 0.95, (4, 3)), "y": y}),
        "bce_with_logits": (
            K.bce_with_logits_forward,
            K.bce_with_logits_backward,
            {"z": z, "y": y},
        ),
        "mse": (K.mse_forward, K.mse_backward, {"yhat": z, "y": rng.standard_normal((4, 3))}),
    }


def check_all_kernels(K: Backend, seed: int = 0) -> dict[str, GradcheckReport]:
    """:func:`check_kernel` on every pair of :func:`kernel_cases`."""
    return {
        name: check_kernel(f, b, inputs) for name, (f, b, inputs) in kernel_cases(K, seed).items()
    }


def format_table(results: dict[str, dict[str, GradcheckReport]]) -> str:
    """A Markdown table: backend, kernel, input, max abs / rel error, verdict."""
    lines = [
        "| backend | kernel | input | shape | max abs err | max rel err | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, reports in results.items():
        for kernel, report in reports.items():
            for p in report.params.values():
                verdict = "ok" if p.ok else f"FAIL: {p.diagnosis}"
                lines.append(
                    f"| {backend} | {kernel} | {p.name} | {p.shape} | {p.max_abs_error:.2e} "
                    f"| {p.max_rel_error:.2e} | {verdict} |"
                )
    any_report: Any = next(iter(next(iter(results.values())).values()))
    ok = all(r.ok for reports in results.values() for r in reports.values())
    lines.append("")
    lines.append(
        f"{'all gradients match' if ok else 'SOME GRADIENTS ARE WRONG'}: central differences "
        f"in {any_report.dtype}, eps={any_report.eps:g}, rtol={any_report.rtol:g}, "
        f"atol={any_report.atol:g}, random upstream gradient"
    )
    return "\n".join(lines)
