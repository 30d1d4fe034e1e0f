"""Every registered kernel pair checked against finite differences, as one table.

``python -m backprop gradcheck`` prints :func:`format_table` of
:func:`check_all_kernels` for each installed backend. The inputs come from
each kernel's declaration in :mod:`backprop.kernels.registry`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.gradcheck import GradcheckReport, check_kernel
from backprop.kernels import KERNELS, PAIRS, Backend
from backprop.kernels.registry import sample_inputs


def kernel_cases(K: Backend, seed: int = 0) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """One float64 case per kernel pair: ``name -> (forward, backward, inputs)``.

    ``inputs`` holds the inputs that take a gradient; ``forward`` takes
    those, the others (targets, indices, seeds) drawn once and fixed.

    Inputs are drawn from the kernel's declared domains (well conditioned:
    ReLU inputs away from the kink, probabilities inside [1e-3, 1 - 1e-3]).
    """
    rng = np.random.default_rng(seed)
    cases = {}
    for name in PAIRS:
        spec = KERNELS[name]
        # bind: the inputs that take no gradient (targets, indices, seeds) stay fixed.
        forward, inputs = spec.bind(getattr(K, spec.forward.__name__), sample_inputs(spec, rng))
        backward = getattr(K, spec.backward.__name__)  # type: ignore[union-attr]
        cases[name] = (forward, backward, inputs)
    return cases


def check_all_kernels(K: Backend, seed: int = 0) -> dict[str, GradcheckReport]:
    """:func:`~backprop.gradcheck.check_kernel` on every pair of :func:`kernel_cases`."""
    return {
        name: check_kernel(f, b, inputs) for name, (f, b, inputs) in kernel_cases(K, seed).items()
    }


def format_table(results: dict[str, dict[str, GradcheckReport]]) -> str:
    """A Markdown table: backend, kernel, input, shape, max abs / rel error, verdict."""
    lines = [
        "| backend | kernel | input | shape | max abs err | max rel err | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, reports in results.items():
        for kernel, report in reports.items():
            for p in report.params.values():
                verdict = "ok" if p.ok else f"{p.verdict.upper()}: {p.diagnosis}"
                lines.append(
                    f"| {backend} | {kernel} | {p.name} | {p.shape} | {p.max_abs_error:.2e} "
                    f"| {p.max_rel_error:.2e} | {verdict} |"
                )
    any_report = next(iter(next(iter(results.values())).values()))
    ok = all(r.ok for reports in results.values() for r in reports.values())
    lines.append("")
    lines.append(
        f"{'all gradients match' if ok else 'SOME GRADIENTS ARE WRONG OR UNRESOLVED'}: central "
        f"differences in {any_report.dtype}, eps={any_report.eps:g}, rtol={any_report.rtol:g}, "
        f"atol={any_report.atol:g}, random upstream gradient"
    )
    return "\n".join(lines)
