"""Gradient checking by central finite differences, with a diagnosis.

:func:`gradcheck` compares a hand-written gradient function against
numerical derivatives of the loss, parameter by parameter and entry by
entry. :func:`check_kernel` does the same for one forward/backward kernel
pair, through a random upstream gradient (a vector-Jacobian product).

Both return a :class:`GradcheckReport` that says not only *whether* a
gradient is wrong but *where* (the parameter, the worst entry, the analytic
and numeric values there) and *how*: the best-fitting constant ratio
analytic / numeric recognises a flipped sign (-1), a sum where a mean
belongs (exactly N times too large), a transposed weight gradient, or a
gradient that is never computed.

Numerical derivatives are central differences refined by Richardson
extrapolation, (4 D(eps) - D(2 eps)) / 3, each with an error estimate
``fd_error``: the truncation |D(eps) - D(2 eps)| / 3 plus the rounding of
the differenced values (see :func:`numeric_gradient`). Every parameter gets
one of three verdicts:

- **fail** when some entry misses by more than the finite differences can
  explain, |analytic - numeric| > atol + rtol * |numeric| + fd_error: a
  resolvable mismatch, diagnosed;
- **inconclusive** when no entry fails but at some entry the finite
  differences are too inaccurate to tell a right gradient from a wrong one,
  fd_error > max(|numeric| / 2, atol, 5e-4 * the parameter's largest
  |numeric|), where a third step eps / 2 sharpens the truncation estimate
  if curvature dominates it. Then a zero gradient, a flipped sign or a factor of 2 could
  pass as well as the truth (a loss offset by 1e12 rounds away every
  difference; parameters of 1e10 cannot be moved by eps = 1e-6), so the
  report says why and what to try instead;
- **pass** otherwise: a sharply curved point (BCE near p = 0) cannot fail
  a correct gradient, and no zero gradient, flipped sign or factor of 2 can
  pass (fd_error bounds the actual error with a margin of ~4, see
  ``_RESOLVE``). A pass certifies the gradient to about atol + rtol *
  |numeric| + 2 fd_error; where that is much coarser than rtol, the report
  adds a note.

An inconclusive check is not a pass anywhere: ``report.ok`` is false and
:meth:`GradcheckReport.assert_ok` raises.

``loss_fn``/``grad_fn`` (and a kernel's forward and backward) receive
read-only views of the checker's working arrays, so the check is taken where
it says: a function that writes into its input raises instead of silently
moving the point of the differences.

Defaults (float64): ``eps = 1e-6``, ``rtol = 1e-5``, ``atol = 1e-8``. With
eps = 1e-6 truncation is O(eps^4) and rounding ~1e-16 / eps ~ 1e-10 of the
loss scale, both far below rtol. A float32 check (``dtype="float32"``) uses
``eps = 1e-2``, ``rtol = 1e-2``, ``atol = 1e-3``: float32 rounding (~1e-7)
allows nothing finer, so it catches gross errors only and its report says so.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

_DEFAULTS = {
    "float64": {"eps": 1e-6, "rtol": 1e-5, "atol": 1e-8},
    "float32": {"eps": 1e-2, "rtol": 1e-2, "atol": 1e-3},
}
# Significant digits printed: float32 differences carry ~4 (rounding ~1e-7
# against steps of 1e-2), so more would be noise.
_DIGITS = {"float64": 6, "float32": 4}
# A constant ratio analytic/numeric is "exact" when it explains the analytic
# gradient to this relative residual.
_FIT_TOL = 1e-3
# An entry is resolved when its finite-difference error is at most
# _RESOLVE * max(|numeric|, _FLOOR * max|numeric| over its parameter, 2 atol).
# fd_error counts 8 eps of rounding per differenced value where an evaluation
# typically rounds by 1-2 eps, so the actual error nu of numeric is <~ fd/4.
# Then |numeric - g| <= |numeric| / 8 for the true g, fd_error <= 0.57 |g|, and
# a wrong a = 0, -g or 2 g misses numeric by >= |g| - fd/4 > tol + fd_error
# unless |g| < 3.5 tol: it fails, it cannot pass. (Scaling by |analytic| too
# would let a = 2 g call itself resolved with fd_error up to |g|.)
_RESOLVE = 0.5
# Entries below 1e-3 of their parameter's largest are resolved to 5e-4 of
# it: a saturated logit's gradient of 1e-8 next to gradients of 0.1, under a
# loss of 40 whose rounding is ~1e-8 after dividing by eps, is checked to
# 5e-4 of the parameter's scale, not declared unknowable; sign, factor and
# missing-term bugs move the large entries too. Entries below atol need an
# error of at most atol: then the finite differences are as fine as the
# absolute tolerance the caller accepts anyway.
_FLOOR = 1e-3

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class ParamReport:
    """The comparison for one parameter (or one kernel input).

    ``verdict`` is "pass", "fail" (a mismatch larger than the finite
    differences can explain) or "inconclusive" (no entry fails, but the
    finite-difference error at some entry is not small against the gradient
    there, so a wrong gradient could pass too); ``ok`` is true only for
    "pass". ``diagnosis`` says what is wrong (fail), why the check could not
    decide and what to try (inconclusive), or "ok".

    ``worst_index`` is the entry with the largest violation of the tolerance
    (for an inconclusive parameter: the entry worst resolved), where
    ``analytic`` and ``numeric`` are read. ``ratio`` is the least-squares
    constant c in analytic ~ c * numeric, fitted on the entries where the
    numeric gradient exceeds both its error and atol (None when there are
    none: a numeric gradient of zero, or pure noise), and
    ``ratio_residual`` how well it fits: ||analytic - c numeric|| /
    ||analytic||, 0 for an exact multiple. ``fd_error`` is the largest
    estimated error of the finite differences themselves (see
    :func:`numeric_gradient`), which the tolerance allows for;
    ``max_gradient`` the largest |analytic| or |numeric|. ``resolution`` is
    the largest finite-difference error / max(|numeric|, 2 atol, 1e-3 *
    max |numeric|) over the entries (above 1/2: inconclusive), with the
    sharper error estimate of a third step where curvature dominates, and
    ``unresolved`` how many entries exceed that bound.
    """

    name: str
    shape: tuple[int, ...]
    verdict: Verdict
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    ratio: float | None
    ratio_residual: float | None
    fd_error: float
    max_gradient: float
    resolution: float
    unresolved: int
    diagnosis: str

    @property
    def ok(self) -> bool:
        """True only when the verdict is "pass"."""
        return self.verdict == "pass"


@dataclass(frozen=True)
class GradcheckReport:
    """Per-parameter results of a gradient check; ``ok`` only when every parameter passes.

    ``verdict`` is "fail" if any parameter fails, else "inconclusive" if any
    is inconclusive, else "pass". ``failing`` and ``inconclusive`` name the
    parameters with those verdicts, in check order.
    """

    params: dict[str, ParamReport]
    eps: float
    rtol: float
    atol: float
    dtype: str
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """The overall verdict: fail > inconclusive > pass."""
        if self.failing:
            return "fail"
        return "inconclusive" if self.inconclusive else "pass"

    @property
    def ok(self) -> bool:
        """True only when every parameter passed; an inconclusive check is not a pass."""
        return all(p.ok for p in self.params.values())

    @property
    def failing(self) -> list[str]:
        """Names of the parameters whose gradient is wrong, in check order."""
        return [n for n, p in self.params.items() if p.verdict == "fail"]

    @property
    def inconclusive(self) -> list[str]:
        """Names of the parameters the finite differences could not decide, in check order."""
        return [n for n, p in self.params.items() if p.verdict == "inconclusive"]

    def __getitem__(self, name: str) -> ParamReport:
        return self.params[name]

    def __str__(self) -> str:
        digits = _DIGITS.get(self.dtype, 6)
        order = {"fail": 0, "inconclusive": 1, "pass": 2}
        rows = sorted(self.params.values(), key=lambda p: order[p.verdict])  # stable
        header = (
            "param",
            "shape",
            "max abs err",
            "max rel err",
            "fd err/grad",
            "worst at",
            "analytic",
            "numeric",
            "ratio a/n",
            "verdict",
        )
        table = [header]
        for p in rows:
            ratio = "-" if p.ratio is None else _num(p.ratio, digits)
            if p.ratio is not None and p.ratio_residual is not None and p.ratio_residual > _FIT_TOL:
                ratio += " (poor fit)"
            if p.verdict == "pass":
                verdict = "ok"
            elif p.verdict == "fail":
                verdict = "FAIL: " + p.diagnosis
            else:
                verdict = "INCONCLUSIVE (see below)"
            table.append(
                (
                    p.name,
                    str(p.shape),
                    f"{p.max_abs_error:.3e}",
                    f"{p.max_rel_error:.3e}",
                    f"{p.resolution:.1e}",
                    str(p.worst_index),
                    _num(p.analytic, digits),
                    _num(p.numeric, digits),
                    ratio,
                    verdict,
                )
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
        lines = []
        for r in table:
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
            )
        if self.verdict == "pass":
            title = "gradient check passed"
        elif self.verdict == "fail":
            title = f"gradient check FAILED for {', '.join(self.failing)}"
            if self.inconclusive:
                title += f"; INCONCLUSIVE for {', '.join(self.inconclusive)}"
        else:
            title = (
                f"gradient check INCONCLUSIVE for {', '.join(self.inconclusive)}: "
                "the finite differences cannot tell a right gradient from a wrong one there"
            )
        lines.insert(
            0,
            f"{title} ({self.dtype}, central differences eps={self.eps:g}, "
            f"rtol={self.rtol:g}, atol={self.atol:g})",
        )
        for name in self.inconclusive:
            lines.append(f"{name}: inconclusive - {self.params[name].diagnosis}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise unless every parameter passed.

        Raises
        ------
        AssertionError
            When any parameter failed or is inconclusive; the message is the
            report table, with the reason and what to try for each
            inconclusive parameter.
        """
        if not self.ok:
            raise AssertionError("\n" + str(self))


def numeric_gradient(
    f: Callable[[], Any],
    x: np.ndarray,
    eps: float,
    reduce: Callable[[Any], float] = float,
    magnitude: Callable[[Any, Any], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference derivative of ``f()`` with respect to every entry of ``x``.

    With D(h) = reduce(f(x + h e_i) - f(x - h e_i)) / (2 h), the gradient is
    the Richardson extrapolation (4 D(eps) - D(2 eps)) / 3 of central
    differences (truncation O(eps^4) instead of O(eps^2)). Its error
    estimate is the truncation |D(eps) - D(2 eps)| / 3 (large where the
    function curves sharply, e.g. BCE near p = 0) plus the rounding
    8 u M / (2 eps), with u the unit roundoff of x's dtype and M the size of
    the values whose difference is taken: a perturbation of 1e-6 cannot be
    resolved below the last bit of an output of 100.

    h is the step actually taken, (x + h) - (x - h) after rounding x + h to
    x's dtype, not the nominal one: near |x| = 1e6 a nominal 1e-6 is off by
    1e-4 relative. Where eps is below the spacing of the floats at x (so
    x +- eps rounds to x, or eps and 2 eps to the same neighbour) nothing can
    be differenced and the error is infinite.

    Parameters
    ----------
    f : callable
        ``f()`` evaluates the function at the current ``x``; it must read
        ``x`` (or a view of it) each call.
    x : ndarray, shape (...)
        Perturbed in place entry by entry and restored to its exact values.
    eps : float
        The step; 2 eps is the second step of the extrapolation.
    reduce : callable, optional
        Turns a difference of outputs, ``f_plus - f_minus``, into a number
        (default ``float``). Differencing the outputs *before* reducing
        (``check_kernel`` reduces with a dot product) cancels the rounding
        noise of every output the perturbation did not touch.
    magnitude : callable, optional
        ``magnitude(f_plus, f_minus)``: M above (default
        |f_plus| + |f_minus|).

    Returns
    -------
    grad : ndarray, shape x.shape, float64
        The derivative of ``reduce(f())`` by each entry of ``x``.
    error : ndarray, shape x.shape, float64
        The estimated error of each entry of ``grad`` (inf where the step
        could not be taken).
    """
    grad, truncation, rounding, _ = _differences(f, x, eps, reduce, magnitude)
    return grad, truncation + rounding


def _differences(
    f: Callable[[], Any],
    x: np.ndarray,
    eps: float,
    reduce: Callable[[Any], float] = float,
    magnitude: Callable[[Any, Any], float] | None = None,
    refine: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`numeric_gradient` with its error split.

    Returns ``(grad, truncation, rounding, sharp)``, all of x's shape:
    ``truncation + rounding`` is numeric_gradient's error. |D(eps) - D(2 eps)|
    / 3 is the truncation of D(eps), far more than that of the extrapolated
    value where f is smooth: at BCE's minimum p = y = 2^-9 it says 1e-8 where
    the extrapolation is good to 1e-13. With ``refine``, where truncation
    dominates, a third step eps/2 (two more evaluations, inside the range
    already visited) gives a second extrapolation R' and ``sharp`` =
    min(truncation, 2 |R - R'|); elsewhere ``sharp`` = truncation.
    """
    if magnitude is None:
        magnitude = lambda plus, minus: abs(float(plus)) + abs(float(minus))  # noqa: E731
    unit = float(np.finfo(x.dtype).eps)
    grad = np.empty(x.shape)
    truncation = np.empty(x.shape)
    rounding = np.empty(x.shape)
    sharp = np.empty(x.shape)

    def slope(i: tuple[int, ...], orig: Any, h: float, size: bool = False) -> tuple[float, ...]:
        """D(h), the half-step actually taken and (if ``size``) M."""
        x[i] = orig + h
        up = float(x[i])
        f_plus = f()
        x[i] = orig - h
        down = float(x[i])
        f_minus = f()
        x[i] = orig
        half = (up - down) / 2  # exact for |x| >= 2 h, else off by an ulp of h at most
        d = reduce(f_plus - f_minus) / (2 * half) if half > 0 else 0.0
        return (d, half, magnitude(f_plus, f_minus)) if size else (d, half)

    def extrapolate(d1: float, h1: float, d2: float, h2: float) -> tuple[float, float]:
        """D(h) = f' + c h^2 + O(h^4): eliminate c for the steps actually taken."""
        r2 = (h2 / h1) ** 2
        return (r2 * d1 - d2) / (r2 - 1), abs(d1 - d2) / (r2 - 1)

    for i in np.ndindex(x.shape):
        orig = x[i]
        d1, h1, m = slope(i, orig, eps, size=True)
        d2, h2 = slope(i, orig, 2 * eps)
        if h1 > 0 and h2 >= 1.5 * h1:
            grad[i], truncation[i] = extrapolate(d1, h1, d2, h2)
            rounding[i] = 8 * unit * m / (2 * h1)
            sharp[i] = truncation[i]
            if refine and truncation[i] > rounding[i]:
                d0, h0 = slope(i, orig, eps / 2)
                if h0 > 0 and h1 >= 1.5 * h0:
                    finer = extrapolate(d0, h0, d1, h1)[0]
                    sharp[i] = min(truncation[i], 2 * abs(grad[i] - finer))
        else:  # eps below the float spacing at x: no usable step
            grad[i] = d1
            truncation[i] = rounding[i] = sharp[i] = np.inf
    return grad, truncation, rounding, sharp


def gradcheck(
    loss_fn: Callable[[dict[str, np.ndarray]], Any],
    grad_fn: Callable[[dict[str, np.ndarray]], Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: str = "float64",
) -> GradcheckReport:
    """Check ``grad_fn`` against central finite differences of ``loss_fn``.

    Both functions are called with a fresh dict of *read-only* ``dtype``
    views of the checker's working copies of ``params`` (float64 by
    default): the caller's arrays are never modified, and a function that
    writes into its input raises a ``ValueError`` instead of moving the
    point where the differences are taken (copy the array first if the write
    is intended). When JAX is imported the calls run inside
    ``jax.enable_x64(True)`` so JAX code computes in float64 too.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(params) -> scalar``, params a dict name -> array.
    grad_fn : callable
        ``grad_fn(params) -> mapping`` with the same names, each an array of
        its parameter's shape: the gradient of the loss.
    params : mapping of str to array_like, any shapes
        The point of the check.
    eps, rtol, atol : float, optional
        Step and tolerances (defaults per dtype, see the module docstring).
    dtype : {"float64", "float32"}
        The precision of the working copies.

    Returns
    -------
    GradcheckReport
        One :class:`ParamReport` per parameter, in ``params`` order, with
        the verdict "pass", "fail" or "inconclusive"; ``report.ok`` only when
        all pass.

    Raises
    ------
    ValueError
        When ``grad_fn``'s names or shapes differ from ``params``, when the
        loss is not a scalar, when it is NaN or infinite at any evaluated
        point (never a false pass), when a function writes into its
        read-only input, or on a bad ``dtype``, ``eps``, ``rtol``, ``atol``.
    """
    eps, rtol, atol = _defaults(dtype, eps, rtol, atol)
    if not isinstance(params, Mapping) or not params:
        raise ValueError(f"params must be a non-empty mapping of name -> array, got {params!r}")
    work = {name: np.array(value, dtype=dtype) for name, value in params.items()}
    # Read-only views of the working arrays follow every perturbation for
    # free, and a write through them raises instead of moving the point.
    # Fresh copies per call would also keep the point, but silently, and cost
    # a copy of every array per loss evaluation.
    views = {name: _read_only(x) for name, x in work.items()}

    with _float64_jax(dtype):
        grads = _guarded(grad_fn, "grad_fn", dict(views))
        if not isinstance(grads, Mapping):
            raise ValueError(
                f"grad_fn must return a mapping of name -> array, got {type(grads).__name__}"
            )
        if set(grads) != set(work):
            raise ValueError(
                f"grad_fn returned gradients for {sorted(grads)}, params are {sorted(work)}"
            )
        analytic = {}
        for name, x in work.items():
            # A copy: a grad_fn may return (a view of) its input as the gradient.
            g = np.array(grads[name], dtype=np.float64)
            if g.shape != x.shape:
                raise ValueError(
                    f"grad_fn returned shape {g.shape} for {name!r}, expected {x.shape} "
                    f"(the shape of params[{name!r}])"
                )
            analytic[name] = g

        def loss() -> float:
            return _scalar_loss(_guarded(loss_fn, "loss_fn", dict(views)), where)

        where = "at the given params"
        loss()
        numeric = {}
        for name, x in work.items():
            where = f"when perturbing {name!r}"
            numeric[name] = _differences(loss, x, eps, refine=True)

    return _report(analytic, numeric, work, eps, rtol, atol, dtype)


def _report(
    analytic: dict[str, np.ndarray],
    numeric: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    points: Mapping[str, np.ndarray],
    eps: float,
    rtol: float,
    atol: float,
    dtype: str,
) -> GradcheckReport:
    reports = {
        n: _compare(n, analytic[n], *numeric[n], points[n], eps, rtol, atol, dtype)
        for n in analytic
    }
    return GradcheckReport(reports, eps, rtol, atol, dtype, _notes(dtype, reports, rtol, atol))


def check_kernel(
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[[Any, Any], Any],
    inputs: Mapping[str, Any] | Sequence[Any],
    *,
    seed: int = 0,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: str = "float64",
) -> GradcheckReport:
    """Check one kernel pair ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache)``.

    A random upstream gradient ``g`` (standard normal, ``seed``) of the
    output's shape turns the kernel into the scalar loss sum(out * g); its
    finite-difference gradient is the vector-Jacobian product that
    ``backward(g, cache)`` must return. ``forward`` receives read-only views
    of the working copies of the inputs (so the cache holds read-only arrays
    too) and ``backward`` a read-only ``g``: a kernel that writes into its
    inputs, its cache or its upstream gradient raises instead of corrupting
    the check.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)``, out of any shape.
    backward : callable
        ``backward(dout, cache)`` -> the gradient of the first input, or a
        tuple of the gradients of the first k inputs (losses take no
        gradient for their target, which comes last). ``dout`` has
        ``out``'s shape; a Python float when ``out`` is a scalar.
    inputs : mapping of str to array_like, or sequence of array_like
        In the forward's argument order; a sequence is named x0, x1, ...
    seed : int
        Seed of the upstream gradient.
    eps, rtol, atol, dtype :
        As for :func:`gradcheck`.

    Returns
    -------
    GradcheckReport
        One :class:`ParamReport` per input that takes a gradient.

    Raises
    ------
    ValueError
        When ``backward`` returns more gradients than there are inputs, or a
        gradient of the wrong shape; when ``forward`` returns NaN or inf at
        an evaluated point; when a function writes into a read-only input;
        on bad ``dtype``, ``eps``, ``rtol``, ``atol``.
    """
    if not isinstance(inputs, Mapping):
        inputs = {f"x{i}": v for i, v in enumerate(inputs)}
    names = list(inputs)
    eps, rtol, atol = _defaults(dtype, eps, rtol, atol)
    work = [np.array(v, dtype=dtype) for v in inputs.values()]
    views = [_read_only(x) for x in work]
    with _float64_jax(dtype):
        out, cache = _guarded(forward, "forward", *views)
        g = np.random.default_rng(seed).standard_normal(np.shape(out)).astype(dtype)
        upstream = _read_only(g) if g.ndim else g.item()  # losses take a Python scalar dloss
        grads = _as_tuple(_guarded(backward, "backward", upstream, cache))
        if len(grads) > len(names):
            raise ValueError(f"backward returned {len(grads)} gradients for {len(names)} inputs")
        analytic = {}
        for name, x, grad in zip(names, work, grads, strict=False):
            a = np.array(grad, dtype=np.float64)
            if a.shape != x.shape:
                raise ValueError(
                    f"backward returned shape {a.shape} for {name!r}, expected {x.shape} "
                    f"(the shape of that input)"
                )
            analytic[name] = a

        def output() -> np.ndarray:
            # A copy: an identity forward returns its input, which is perturbed in place.
            out = np.array(_guarded(forward, "forward", *views)[0], dtype=np.float64)
            if not np.all(np.isfinite(out)):
                raise ValueError(f"forward returned NaN or inf {where}")
            return out

        def touched(plus: np.ndarray, minus: np.ndarray) -> float:
            """Size of the weighted outputs whose difference is taken.

            Per output, |plus| + |minus| bounds the rounding of its difference;
            across outputs the errors are weighted by the random signs of g,
            so they add in quadrature (E[(sum g_k e_k)^2] = sum e_k^2 for any
            errors e_k, correlated or not), not in a plain sum. An array
            output left unchanged was not touched (its difference is exactly
            0); a scalar output (a loss) always counts: a loss offset by 1e12
            stays unchanged because rounding swallows the perturbation.
            """
            size = (np.abs(plus) + np.abs(minus)) * np.abs(g)
            if size.ndim:
                size = size[plus != minus]
            return float(np.sqrt(np.sum(size * size)))

        where = "at the given inputs"
        output()
        numeric = {}
        for name, x in zip(names, work[: len(grads)], strict=False):
            where = f"when perturbing {name!r}"
            numeric[name] = _differences(
                output,
                x,
                eps,
                reduce=lambda d: float(np.sum(d * g)),
                magnitude=touched,
                refine=True,
            )
    return _report(analytic, numeric, dict(zip(names, work, strict=False)), eps, rtol, atol, dtype)


def _read_only(x: np.ndarray) -> np.ndarray:
    view = x.view()
    view.flags.writeable = False
    return view


def _guarded(fn: Callable[..., Any], label: str, *args: Any) -> Any:
    """``fn(*args)``, naming the culprit when it writes into a read-only input."""
    try:
        return fn(*args)
    except ValueError as e:
        if "read-only" not in str(e):
            raise
        raise ValueError(
            f"{label} raised {e!r}: the checker passes its arrays read-only so that a "
            f"function writing into its input cannot move the point of the check; "
            f"if {label} writes into an input, copy it first (e.g. p['w'].copy())"
        ) from e


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return result if isinstance(result, tuple) else (result,)


def _defaults(
    dtype: str, eps: float | None, rtol: float | None, atol: float | None
) -> tuple[float, float, float]:
    if dtype not in _DEFAULTS:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    d = _DEFAULTS[dtype]
    values = (
        d["eps"] if eps is None else eps,
        d["rtol"] if rtol is None else rtol,
        d["atol"] if atol is None else atol,
    )
    for name, v in zip(("eps", "rtol", "atol"), values, strict=True):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0) or (
            name == "eps" and v == 0
        ):
            raise ValueError(f"{name} must be a finite number > 0 (>= 0 for tolerances), got {v!r}")
    return float(values[0]), float(values[1]), float(values[2])


def _notes(dtype: str, reports: Mapping[str, ParamReport], rtol: float, atol: float) -> list[str]:
    notes = []
    # The tolerance lets an error of fd_error through; say so when that is far
    # coarser, against the parameter's largest gradient, than rtol asked for.
    limit = max(100 * rtol, 1e-3)
    for p in reports.values():
        if not p.ok:
            continue
        if 0 < p.max_gradient <= atol:
            notes.append(
                f"note: {p.name} passed on atol alone: its gradient is below atol={atol:g} "
                f"everywhere (largest {p.max_gradient:.2g}), so a wrong one would pass too; "
                f"pass a smaller atol to check it."
            )
        elif p.max_gradient > 0 and p.fd_error > limit * p.max_gradient:
            notes.append(
                f"note: {p.name} passed, but its finite differences are good only to "
                f"{p.fd_error:.1e} against gradients up to {p.max_gradient:.2g}; an error "
                f"smaller than that would pass too."
            )
    if dtype == "float32":
        notes.append(
            "note: a float32 check is weaker - rounding limits it to gross errors; "
            "use float64 to prove a gradient."
        )
    return notes


@contextlib.contextmanager
def _float64_jax(dtype: str) -> Any:
    jax = sys.modules.get("jax")
    if jax is None or dtype != "float64":
        yield
    else:
        with jax.enable_x64(True):
            yield


def _scalar_loss(value: Any, where: str) -> float:
    arr = np.asarray(value)
    if arr.shape != ():
        raise ValueError(f"loss_fn must return a scalar, got an array of shape {arr.shape}")
    v = float(arr)
    if not np.isfinite(v):
        raise ValueError(f"loss_fn returned {v} {where}; the gradient cannot be checked there")
    return v


def _num(v: float, digits: int) -> str:
    return f"{v + 0.0:.{digits}g}"  # + 0.0: no "-0"


def _compare(
    name: str,
    a: np.ndarray,
    n: np.ndarray,
    truncation: np.ndarray,
    rounding: np.ndarray,
    sharp: np.ndarray,
    x: np.ndarray,
    eps: float,
    rtol: float,
    atol: float,
    dtype: str,
) -> ParamReport:
    fd_error = truncation + rounding
    err = np.abs(a - n)
    excess = err - (atol + rtol * np.abs(n) + fd_error)
    finite = bool(np.all(np.isfinite(a)))
    failed = not finite or bool(np.any(excess > 0))
    # How large the finite-difference error is against the derivative it
    # measures; the tolerance keeps the cruder estimate, which cannot fail a
    # correct gradient at a kink that fools the sharp one.
    floor = _FLOOR * float(np.max(np.abs(n[np.isfinite(n)]), initial=0.0))
    measured = np.maximum(np.abs(n), max(2 * atol, floor))
    sharp_error = sharp + rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_fd = np.where(sharp_error > 0, sharp_error / measured, 0.0)
    relative_fd = np.where(np.isnan(relative_fd), np.inf, relative_fd)  # inf/inf
    unresolved = relative_fd > _RESOLVE
    scale = np.maximum(np.abs(a), np.abs(n))
    verdict: Verdict = "fail" if failed else "inconclusive" if unresolved.any() else "pass"

    rel = np.where(scale > atol, err / np.where(scale > 0, scale, 1.0), 0.0)
    if not a.size:
        idx: tuple[int, ...] = ()
    elif verdict == "inconclusive":
        idx = np.unravel_index(int(np.argmax(relative_fd)), a.shape)
    else:  # a NaN analytic entry is the worst violation
        idx = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), a.shape)
    idx = tuple(int(i) for i in idx)

    # Fit the ratio on entries whose numeric value stands out of its own error
    # and of atol: elsewhere n is noise (or zero) and a ratio says nothing.
    significant = np.abs(n) > np.maximum(fd_error, atol)
    ratio = residual = None
    if finite and significant.any():
        ns = n[significant]
        ratio = float(np.dot(a[significant], ns) / np.dot(ns, ns)) + 0.0
        norm_a = float(np.linalg.norm(a))
        residual = float(np.linalg.norm(a - ratio * n) / norm_a) if norm_a > 0 else 0.0

    if verdict == "fail":
        diagnosis = _diagnose(a, n, ratio, residual, idx, rtol, atol, _DIGITS[dtype])
    elif verdict == "inconclusive":
        diagnosis = _inconclusive_reason(
            name, idx, a, n, sharp, rounding, unresolved, x, eps, dtype
        )
    else:
        diagnosis = "ok"
    return ParamReport(
        name=name,
        shape=a.shape,
        verdict=verdict,
        max_abs_error=float(err.max()) if a.size else 0.0,
        max_rel_error=float(rel.max()) if a.size else 0.0,
        worst_index=idx,
        analytic=float(a[idx]) if a.size else 0.0,
        numeric=float(n[idx]) if a.size else 0.0,
        ratio=ratio,
        ratio_residual=residual,
        fd_error=float(fd_error.max()) if a.size else 0.0,
        max_gradient=float(np.max(scale, initial=0.0)),
        resolution=float(relative_fd.max()) if a.size else 0.0,
        unresolved=int(unresolved.sum()),
        diagnosis=diagnosis,
    )


def _inconclusive_reason(
    name: str,
    idx: tuple[int, ...],
    a: np.ndarray,
    n: np.ndarray,
    truncation: np.ndarray,
    rounding: np.ndarray,
    unresolved: np.ndarray,
    x: np.ndarray,
    eps: float,
    dtype: str,
) -> str:
    """Why the finite differences cannot decide at entry ``idx``, and what to try."""
    count = f"{int(unresolved.sum())} of {a.size} entries unresolved"
    if not np.isfinite(truncation[idx]):
        spacing = float(np.spacing(np.abs(x[idx])))
        return (
            f"eps={eps:g} is below the spacing of {dtype} numbers at {name}{list(idx)} = "
            f"{float(x[idx]):.3g} ({spacing:.2g}): x +- eps rounds to x, or to where "
            f"x +- 2 eps rounds ({count}); try: {'float64, ' if dtype == 'float32' else ''}"
            f"rescale {name} to order 1, or a larger eps"
        )
    fd = float(truncation[idx] + rounding[idx])
    where = (
        f"at {name}{list(idx)} the finite-difference error {fd:.2g} is not small against "
        f"the gradient there (analytic {float(a[idx]):.3g}, numeric {float(n[idx]):.3g}; {count})"
    )
    if rounding[idx] >= truncation[idx]:
        # rounding = 8 u M / (2 eps): recover M, the size of the differenced values.
        values = float(rounding[idx]) * 2 * eps / (8 * float(np.finfo(x.dtype).eps))
        first = "float64, " if dtype == "float32" else ""
        return (
            f"{where}: the rounding error of function values of ~{values:.2g}, divided by the "
            f"step eps={eps:g}, swamps the gradient; try: {first}subtract any large constant "
            f"offset from the loss, rescale the loss or {name} to order 1, or a larger eps"
        )
    return (
        f"{where}: the differences at eps and 2 eps disagree - the function curves "
        f"sharply or has a kink within 2 eps of the point; try: a smaller eps, or a point "
        f"away from the kink or singularity (ReLU at 0, BCE with p near 0 or 1)"
    )


def _diagnose(
    a: np.ndarray,
    n: np.ndarray,
    ratio: float | None,
    residual: float | None,
    idx: tuple[int, ...],
    rtol: float,
    atol: float,
    digits: int = 6,
) -> str:
    if not np.all(np.isfinite(a)):
        return "analytic gradient has NaN or inf entries"
    if not np.any(a) and np.any(n):
        return "analytic gradient is all zero (is this gradient ever computed?)"
    if ratio is not None and residual is not None and residual <= _FIT_TOL:
        k = round(ratio)
        inv = round(1 / ratio) if ratio else 0
        if abs(ratio + 1) <= _FIT_TOL:
            return "sign flipped: analytic = -numeric"
        if k >= 2 and abs(ratio - k) <= _FIT_TOL * k:
            return f"analytic is exactly {k}x too large (a sum where a mean belongs?)"
        if inv >= 2 and abs(1 / ratio - inv) <= _FIT_TOL * inv:
            return (
                f"analytic is exactly 1/{inv} of numeric "
                "(a mean where a sum belongs? a missing factor?)"
            )
        if k <= -2 and abs(ratio - k) <= _FIT_TOL * -k:
            return f"sign flipped and {-k}x too large: analytic = {k} x numeric"
        return f"off by a constant factor: analytic = {_num(ratio, digits)} x numeric"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and np.allclose(a.T, n, rtol=rtol, atol=atol):
        return "analytic is the transpose of numeric (x.T @ dout written as dout.T @ x?)"
    return (
        f"mismatch, not a constant factor: at {idx} analytic "
        f"{_num(float(a[idx]), digits)} vs numeric {_num(float(n[idx]), digits)}"
    )
