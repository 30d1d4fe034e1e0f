"""Rosenblatt's perceptron rule with a step activation.

Each input row gets a constant -1 bias input in front, so the weights are
``(bias, w1, w2, ...)`` and the unit fires when ``w . (-1, x) > 0``. Weights
change only on a mistake: ``w <- w + lr * x * (target - output)``, one row
at a time, in order. No gradient is involved (the step has none), which is
why this rule, and not backpropagation, trains a step unit.

The notes computed the rule by hand, in exact decimals. In binary floating
point 0.4 - 0.05 is 0.35000000000000003, not 0.35, so a weighted sum that is
exactly 0 by hand comes out a hair above it, and the unit fires where the
notes' unit did not: from (0.3, 0.4, 0.1) with lr 0.05 the rule converges on
AND in 2 passes by hand and in 3 in float64. ``exact=True`` runs the rule in
exact decimal arithmetic (Python fractions of the numbers as written) and
reproduces the notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from backprop._validate import (
    check_array,
    check_fits,
    check_number,
    check_positive_int,
)
from backprop.kernels import get_backend


@dataclass(frozen=True, repr=False)
class PerceptronResult:
    """Outcome of :func:`perceptron_rule`.

    Attributes
    ----------
    weights : (D + 1,)
        Final (bias, w1, ...), as float64 (rounded from the exact values when
        ``exact=True``).
    history : (passes + 1, D + 1)
        The weights after each pass, the start first.
    mistakes : list of int
        Mistakes per pass.
    converged : bool
        A pass with no mistake happened.
    passes : int
        Passes made.
    reason : str
        Why it stopped, in words.
    exact : bool
        Whether the rule ran in exact decimal arithmetic.
    rounding_note : str or None
        For a float64 run whose pass count differs from the exact run's, a
        sentence saying so and why.
    """

    weights: np.ndarray
    history: np.ndarray
    mistakes: list[int]
    converged: bool
    passes: int
    reason: str
    exact: bool = False
    rounding_note: str | None = None

    def predict(self, X: Any) -> np.ndarray:
        """0/1 outputs of the trained unit for X (N, D)."""
        return _outputs(self.weights, _with_bias(np.asarray(X, dtype=np.float64)))

    def __repr__(self) -> str:
        w = ", ".join(f"{v:.4g}" for v in self.weights)
        return f"PerceptronResult(weights ({w}), {self.passes} passes: {self.reason})"


def _with_bias(X: np.ndarray) -> np.ndarray:
    return np.concatenate([-np.ones((X.shape[0], 1)), X], axis=1)


def _outputs(w: np.ndarray, Xb: np.ndarray) -> np.ndarray:
    out, _ = get_backend("numpy").step_forward(Xb @ w)
    return out


def perceptron_rule(
    X: Any,
    y: Any,
    *,
    w0: Any = (0.3, 0.4, 0.1),
    lr: float = 0.05,
    epochs: int = 100,
    exact: bool = False,
) -> PerceptronResult:
    """Train one step unit with the perceptron rule until a pass makes no mistake.

    Parameters
    ----------
    X : array (N, D)
        Inputs.
    y : array (N,) or (N, 1)
        Targets in {0, 1}.
    w0 : sequence of D + 1 numbers
        Starting (bias, w1, ..., wD); default the notes' (0.3, 0.4, 0.1).
    lr : float
        The rule's step, > 0 (``eta`` in the notes).
    epochs : int
        Most passes over the rows.
    exact : bool
        Compute in exact decimal arithmetic instead of float64.

    Returns
    -------
    PerceptronResult

    Notes
    -----
    Stops when a pass makes no mistake (converged), when the weights at the
    end of a pass repeat an earlier end-of-pass state (a cycle: the rule will
    loop forever, so the data is not linearly separable - XOR), or after
    ``epochs`` passes.
    """
    X = check_array("X", X, np.dtype("float64"))
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape (N, D) with N >= 1, got {X.shape}")
    y = check_array("y", y, np.dtype("float64")).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have one target per row of X ({X.shape[0]}), got {y.shape[0]}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y must hold 0/1 targets, got values {sorted(set(y.tolist()))}")
    w = check_array("w0", w0, np.dtype("float64"))
    if w.shape != (X.shape[1] + 1,):
        raise ValueError(
            f"w0 must have shape ({X.shape[1] + 1},) (a bias weight, then one per input), "
            f"got {w.shape}"
        )
    lr = check_number("lr", lr, low=0.0, low_open=True)
    epochs = check_positive_int("epochs", epochs)
    # the weights after every pass are kept, as floats and (for the exact run) as fractions
    check_fits(
        f"epochs={epochs:,} passes, keeping the {w.size} weights of each pass,",
        (epochs + 1) * w.size * (8 + 128),
    )
    if not isinstance(exact, (bool, np.bool_)):
        raise ValueError(f"exact must be True or False, got {exact!r}")
    exact = bool(exact)

    def by_hand() -> PerceptronResult:
        try:
            return _run(
                _fractions(_with_bias(X)),
                _fractions(y),
                _fractions(w),
                Fraction(repr(lr)),
                epochs,
                True,
            )
        except OverflowError:  # exact weights beyond float64's range
            raise FloatingPointError(_overflow(lr, X, w)) from None

    if exact:
        return by_hand()
    with np.errstate(over="ignore", invalid="ignore"):
        result = _run(_with_bias(X), y, w, lr, epochs, False)
    if not np.all(np.isfinite(result.history)):
        raise FloatingPointError(_overflow(lr, X, w))
    exact_result = by_hand()
    if exact_result.passes != result.passes or exact_result.converged != result.converged:
        note = (
            f"note: in exact decimal arithmetic, as the notes computed by hand, the rule "
            f"{'converges' if exact_result.converged else 'stops'} after {exact_result.passes} "
            f"passes, not {result.passes}: float64 cannot hold values such as 0.35 exactly "
            "(0.4 - 0.05 = 0.35000000000000003), so a weighted sum that is 0 by hand comes out "
            "a hair above or below it (exact=True reproduces the notes)"
        )
        result = PerceptronResult(**{**result.__dict__, "rounding_note": note})
    return result


def _overflow(lr: float, X: np.ndarray, w: np.ndarray) -> str:
    return (
        f"the weights overflowed float64: lr={lr!r}, with inputs up to {np.abs(X).max():g} "
        f"and w0 up to {np.abs(w).max():g}, is too large; use a smaller lr or rescale X"
    )


def _fractions(a: np.ndarray) -> np.ndarray:
    """Exact decimal values of the numbers as they print (0.1 -> 1/10), as an object array."""
    return np.array([Fraction(repr(float(v))) for v in a.ravel()], dtype=object).reshape(a.shape)


def _run(
    Xb: np.ndarray, y: np.ndarray, w: np.ndarray, lr: Any, epochs: int, exact: bool
) -> PerceptronResult:
    def fire(row: np.ndarray, w: np.ndarray) -> int:
        return int(sum(row * w) > 0) if exact else int(_outputs(w, row[None, :])[0])

    history = [w.copy()]
    seen = {tuple(w.tolist()): 0}
    mistakes: list[int] = []
    as_float = lambda h: np.array(h, dtype=np.float64)  # noqa: E731
    for p in range(1, epochs + 1):
        errors = 0
        for xi, target in zip(Xb, y, strict=True):
            output = fire(xi, w)
            if output != target:
                w = w + lr * xi * (target - output)
                errors += 1
        mistakes.append(errors)
        history.append(w.copy())
        if errors == 0:
            reason = f"converged: pass {p} made no mistake"
            return PerceptronResult(
                as_float(w), as_float(history), mistakes, True, p, reason, exact
            )
        key = tuple(w.tolist())
        if key in seen:
            reason = (
                f"cycle: the weights after pass {p} repeat those after pass {seen[key]}, "
                "so the rule loops forever - no line separates these classes"
            )
            return PerceptronResult(
                as_float(w), as_float(history), mistakes, False, p, reason, exact
            )
        seen[key] = p
    reason = f"no convergence within {epochs} passes"
    return PerceptronResult(as_float(w), as_float(history), mistakes, False, epochs, reason, exact)
