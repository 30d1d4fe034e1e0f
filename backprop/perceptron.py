"""Rosenblatt's perceptron rule with a step activation.

Each input row gets a constant -1 bias input in front, so the weights are
``(bias, w1, w2, ...)`` and the unit fires when ``w . (-1, x) > 0``. Weights
change only on a mistake: ``w <- w + eta * x * (target - output)``, one row
at a time, in order. No gradient is involved (the step has none), which is
why this rule, and not backpropagation, trains a step unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop._validate import check_positive_int
from kernels import get_backend


@dataclass(frozen=True)
class PerceptronResult:
    """Outcome of :func:`perceptron_rule`.

    ``weights`` (D + 1,): final (bias, w1, ...); ``history``: the weights
    after each pass, shape (passes + 1, D + 1) with the start first;
    ``mistakes``: mistakes per pass; ``converged``: a pass with no mistake
    happened; ``passes``: passes made; ``reason``: why it stopped, in words.
    """

    weights: np.ndarray
    history: np.ndarray
    mistakes: list[int]
    converged: bool
    passes: int
    reason: str

    def predict(self, X: Any) -> np.ndarray:
        """0/1 outputs of the trained unit for X (N, D)."""
        return _outputs(self.weights, _with_bias(np.asarray(X, dtype=np.float64)))


def _with_bias(X: np.ndarray) -> np.ndarray:
    return np.concatenate([-np.ones((X.shape[0], 1)), X], axis=1)


def _outputs(w: np.ndarray, Xb: np.ndarray) -> np.ndarray:
    out, _ = get_backend("numpy").step_forward(Xb @ w)
    return out


def perceptron_rule(
    X: Any, y: Any, *, w0: Any = (0.3, 0.4, 0.1), eta: float = 0.05, max_passes: int = 100
) -> PerceptronResult:
    """Train one step unit with the perceptron rule until a pass makes no mistake.

    X: (N, D) inputs; y: (N,) or (N, 1) targets in {0, 1}; w0: starting
    (bias, w1, ..., wD), default the notes' (0.3, 0.4, 0.1); eta > 0.
    Stops when a pass makes no mistake (converged), when the weights at the
    end of a pass repeat an earlier end-of-pass state (a cycle: the rule will
    loop forever, so the data is not linearly separable - XOR), or after
    ``max_passes``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape (N, D) with N >= 1, got {X.shape}")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have one target per row of X ({X.shape[0]}), got {y.shape[0]}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold 0/1 targets")
    w = np.array(w0, dtype=np.float64)
    if w.shape != (X.shape[1] + 1,):
        raise ValueError(
            f"w0 must have shape ({X.shape[1] + 1},) (a bias weight, then one per input), "
            f"got {w.shape}"
        )
    if not (isinstance(eta, (int, float)) and np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}")
    max_passes = check_positive_int("max_passes", max_passes)

    Xb = _with_bias(X)
    history = [w.copy()]
    seen = {w.tobytes(): 0}
    mistakes: list[int] = []
    for p in range(1, max_passes + 1):
        errors = 0
        for xi, target in zip(Xb, y, strict=True):
            output = _outputs(w, xi[None, :])[0]
            if output != target:
                w = w + eta * xi * (target - output)
                errors += 1
        mistakes.append(errors)
        history.append(w.copy())
        if errors == 0:
            return PerceptronResult(
                w, np.array(history), mistakes, True, p, f"converged: pass {p} made no mistake"
            )
        key = w.tobytes()
        if key in seen:
            return PerceptronResult(
                w,
                np.array(history),
                mistakes,
                False,
                p,
                f"cycle: the weights after pass {p} repeat those after pass {seen[key]}, "
                "so the rule loops forever - no line separates these classes",
            )
        seen[key] = p
    return PerceptronResult(
        w,
        np.array(history),
        mistakes,
        False,
        max_passes,
        f"no convergence within {max_passes} passes",
    )
