"""Every registered kernel pair checked against finite differences, as one table.

``python -m backprop gradcheck`` prints :func:`format_table` of
:func:`check_all_kernels` for each installed backend. The inputs come from
each kernel's declaration in :mod:`backprop.kernels.registry`. The JAX
backend's kernels are checked in float64 inside ``jax.enable_x64(True)``,
scoped to the check (the global switch is left as it is).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


def kink_cases(K: Backend, seed: int = 0) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """One float64 case per kernel pair that declares kinks, every other entry at one.

    ``name + " at kinks" -> (forward, backward, inputs)``: the declared
    points to avoid (ReLU's 0) are where a valid subgradient must come out
    as a "kink" verdict, not a failure.
    """
    rng = np.random.default_rng(seed)
    cases = {}
    for name in PAIRS:
        spec = KERNELS[name]
        kinked = [i for i in spec.inputs if spec.domain(i).avoid]
        if not kinked:
            continue
        inputs = sample_inputs(spec, rng)
        for i in kinked:
            x = np.array(inputs[i], dtype=np.float64)
            x.reshape(-1)[::2] = spec.domain(i).avoid[0]
            inputs[i] = x
        forward = getattr(K, spec.forward.__name__)
        backward = getattr(K, spec.backward.__name__)  # type: ignore[union-attr]
        cases[f"{name} at kinks"] = (forward, backward, inputs)
    return cases


@contextlib.contextmanager
def float64(K: Backend) -> Iterator[None]:
    """JAX in float64 for the duration (a no-op for NumPy)."""
    if K.name != "jax":
        yield
        return
    import jax

    with jax.enable_x64(True):
        yield


def check_all_kernels(K: Backend, seed: int = 0) -> dict[str, GradcheckReport]:
    """:func:`~backprop.gradcheck.check_kernel` on :func:`kernel_cases` and :func:`kink_cases`."""
    cases = {**kernel_cases(K, seed), **kink_cases(K, seed)}
    with float64(K):
        return {name: check_kernel(f, b, inputs) for name, (f, b, inputs) in cases.items()}


def format_table(results: dict[str, dict[str, GradcheckReport]]) -> str:
    """A Markdown table: backend, kernel, input, shape, max abs / rel error, verdict."""
    lines = [
        "| backend | kernel | input | shape | max abs err | max rel err | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, reports in results.items():
        for kernel, report in reports.items():
            for p in report.params.values():
                verdict = (
                    f"ok (valid subgradient at {len(p.kinks)} kinks)"
                    if p.verdict == "kink"
                    else "ok"
                    if p.ok
                    else f"{p.verdict.upper()}: {p.diagnosis}"
                )
                lines.append(
                    f"| {backend} | {kernel} | {p.name} | {p.shape} | {p.max_abs_error:.2e} "
                    f"| {p.max_rel_error:.2e} | {verdict} |"
                )
    any_report = next(iter(next(iter(results.values())).values()))
    ok = all(r.ok for reports in results.values() for r in reports.values())
    lines.append("")
    lines.append(
        f"{'all gradients match' if ok else 'SOME GRADIENTS ARE WRONG OR UNRESOLVED'}: "
        f"extrapolated central differences with an error bound in {any_report.dtype}, first "
        f"step {any_report.eps:g}, rtol={any_report.rtol:g}, atol={any_report.atol:g}, random "
        f"upstream gradient"
    )
    return "\n".join(lines)
