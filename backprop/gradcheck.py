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
extrapolation, (4 D(eps) - D(2 eps)) / 3, each with an error estimate: the
truncation |D(eps) - D(2 eps)| / 3 plus the rounding of the differenced
values (see :func:`numeric_gradient`). An entry passes when

    |analytic - numeric| <= atol + rtol * |numeric| + estimated FD error,

so a sharply curved point (BCE near p = 0) cannot fail a correct gradient,
while any real mistake - a factor, a sign, a missing term - is far larger.

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
from typing import Any

import numpy as np

_DEFAULTS = {
    "float64": {"eps": 1e-6, "rtol": 1e-5, "atol": 1e-8},
    "float32": {"eps": 1e-2, "rtol": 1e-2, "atol": 1e-3},
}
# A constant ratio analytic/numeric is "exact" when it explains the analytic
# gradient to this relative residual.
_FIT_TOL = 1e-3


@dataclass(frozen=True)
class ParamReport:
    """The comparison for one parameter (or one kernel input).

    ``worst_index`` is the entry with the largest violation of the
    tolerance, where ``analytic`` and ``numeric`` are read. ``ratio`` is the
    least-squares constant c in analytic ~ c * numeric (None when the
    numeric gradient is all zero) and ``ratio_residual`` how well it fits:
    ||analytic - c numeric|| / ||analytic||, 0 for an exact multiple.
    ``fd_error`` is the largest estimated error of the finite differences
    themselves (see :func:`numeric_gradient`), which the tolerance allows for.
    """

    name: str
    shape: tuple[int, ...]
    ok: bool
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    ratio: float | None
    ratio_residual: float | None
    fd_error: float
    diagnosis: str


@dataclass(frozen=True)
class GradcheckReport:
    """Per-parameter results of a gradient check; ``ok`` when all pass."""

    params: dict[str, ParamReport]
    eps: float
    rtol: float
    atol: float
    dtype: str
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.params.values())

    @property
    def failing(self) -> list[str]:
        """Names of the parameters whose gradient is wrong, in check order."""
        return [n for n, p in self.params.items() if not p.ok]

    def __getitem__(self, name: str) -> ParamReport:
        return self.params[name]

    def __str__(self) -> str:
        rows = sorted(self.params.values(), key=lambda p: p.ok)  # failing first, stable
        header = (
            "param",
            "shape",
            "max abs err",
            "max rel err",
            "worst at",
            "analytic",
            "numeric",
            "ratio a/n",
            "verdict",
        )
        table = [header]
        for p in rows:
            ratio = "-" if p.ratio is None else f"{p.ratio:.6g}"
            if p.ratio is not None and p.ratio_residual is not None and p.ratio_residual > _FIT_TOL:
                ratio += " (poor fit)"
            table.append(
                (
                    p.name,
                    str(p.shape),
                    f"{p.max_abs_error:.3e}",
                    f"{p.max_rel_error:.3e}",
                    str(p.worst_index),
                    f"{p.analytic:.6g}",
                    f"{p.numeric:.6g}",
                    ratio,
                    "ok" if p.ok else "FAIL: " + p.diagnosis,
                )
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
        lines = []
        for r in table:
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
            )
        verdict = (
            "gradient check passed"
            if self.ok
            else (f"gradient check FAILED for {', '.join(self.failing)}")
        )
        lines.insert(
            0,
            f"{verdict} ({self.dtype}, central differences eps={self.eps:g}, "
            f"rtol={self.rtol:g}, atol={self.atol:g})",
        )
        lines.extend(self.notes)
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` carrying the report table unless every parameter passed."""
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

    ``x`` is perturbed in place and restored (so ``f`` must read it); pass a
    copy. With D(h) = reduce(f(x + h e_i) - f(x - h e_i)) / (2 h), returns
    ``(grad, error)``: grad_i = (4 D(eps) - D(2 eps)) / 3, the Richardson
    extrapolation of central differences (truncation O(eps^4) instead of
    O(eps^2)), and error_i, an estimate of how wrong the differences can be
    there: the truncation |D(eps) - D(2 eps)| / 3 (large where the function
    curves sharply, e.g. BCE near p = 0) plus the rounding 8 u M / (2 eps),
    with u the unit roundoff of x's dtype and M = ``magnitude(f_plus,
    f_minus)`` the size of the values whose difference is taken (default
    |f_plus| + |f_minus|): a perturbation of 1e-6 cannot be resolved below
    the last bit of an output of 100. ``reduce`` turns a difference of
    outputs into a number; differencing the outputs *before* reducing
    (``check_kernel`` reduces with a dot product) cancels the rounding noise
    of every output the perturbation did not touch.
    """
    if magnitude is None:
        magnitude = lambda plus, minus: abs(float(plus)) + abs(float(minus))  # noqa: E731
    unit = float(np.finfo(x.dtype).eps)
    grad = np.empty_like(x)
    error = np.empty_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        values = []
        for h in (eps, 2 * eps):
            x[i] = orig + h
            f_plus = f()
            x[i] = orig - h
            f_minus = f()
            values.append(reduce(f_plus - f_minus) / (2 * h))
            if h == eps:
                rounding = 8 * unit * magnitude(f_plus, f_minus) / (2 * h)
        x[i] = orig
        d1, d2 = values
        grad[i] = (4 * d1 - d2) / 3
        error[i] = abs(d1 - d2) / 3 + rounding
    return grad, error


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

    params: mapping name -> array (any shapes). ``loss_fn(params)`` returns a
    scalar; ``grad_fn(params)`` a mapping with the same names, each array of
    its parameter's shape. Both are called on ``dtype`` copies of ``params``
    (float64 by default); the caller's arrays are never modified. When JAX
    is imported the calls run inside ``jax.enable_x64(True)`` so JAX code
    computes in float64 too.

    Raises ``ValueError`` when ``grad_fn``'s names or shapes differ from
    ``params``, when the loss is not a scalar, or when it is NaN or infinite
    at any evaluated point - never a false pass.
    """
    eps, rtol, atol = _defaults(dtype, eps, rtol, atol)
    if not isinstance(params, Mapping) or not params:
        raise ValueError(f"params must be a non-empty mapping of name -> array, got {params!r}")
    work = {name: np.array(value, dtype=dtype) for name, value in params.items()}

    with _float64_jax(dtype):
        grads = grad_fn(work)
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
            g = np.asarray(grads[name], dtype=np.float64)
            if g.shape != x.shape:
                raise ValueError(
                    f"grad_fn returned shape {g.shape} for {name!r}, expected {x.shape} "
                    f"(the shape of params[{name!r}])"
                )
            analytic[name] = g

        def loss() -> float:
            return _scalar_loss(loss_fn(work), where)

        where = "at the given params"
        loss()
        numeric = {}
        for name, x in work.items():
            where = f"when perturbing {name!r}"
            numeric[name] = numeric_gradient(loss, x, eps)

    return _report(analytic, numeric, eps, rtol, atol, dtype)


def _report(
    analytic: dict[str, np.ndarray],
    numeric: dict[str, tuple[np.ndarray, np.ndarray]],
    eps: float,
    rtol: float,
    atol: float,
    dtype: str,
) -> GradcheckReport:
    reports = {n: _compare(n, analytic[n], *numeric[n], rtol, atol) for n in analytic}
    return GradcheckReport(reports, eps, rtol, atol, dtype, _notes(dtype))


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
    ``backward(g, cache)`` must return. inputs: a mapping name -> array, or
    a sequence (named x0, x1, ...), in the forward's argument order. The
    backward's k gradients belong to the first k inputs (losses take no
    gradient for their target, which comes last). Same report and errors as
    :func:`gradcheck`.
    """
    if not isinstance(inputs, Mapping):
        inputs = {f"x{i}": v for i, v in enumerate(inputs)}
    names = list(inputs)
    eps, rtol, atol = _defaults(dtype, eps, rtol, atol)
    work = [np.array(v, dtype=dtype) for v in inputs.values()]
    with _float64_jax(dtype):
        out, cache = forward(*work)
        g = np.random.default_rng(seed).standard_normal(np.shape(out)).astype(dtype)
        upstream = g if g.ndim else g.item()  # losses take a Python scalar dloss
        grads = _as_tuple(backward(upstream, cache))
        if len(grads) > len(names):
            raise ValueError(f"backward returned {len(grads)} gradients for {len(names)} inputs")
        analytic = {}
        for name, x, grad in zip(names, work, grads, strict=False):
            a = np.asarray(grad, dtype=np.float64)
            if a.shape != x.shape:
                raise ValueError(
                    f"backward returned shape {a.shape} for {name!r}, expected {x.shape} "
                    f"(the shape of that input)"
                )
            analytic[name] = a

        def output() -> np.ndarray:
            # A copy: an identity forward returns its input, which is perturbed in place.
            out = np.array(forward(*work)[0], dtype=np.float64)
            if not np.all(np.isfinite(out)):
                raise ValueError(f"forward returned NaN or inf {where}")
            return out

        def touched(plus: np.ndarray, minus: np.ndarray) -> float:
            """Size of the weighted outputs the perturbation changed."""
            changed = plus != minus
            return float(
                np.sum(np.abs(plus[changed] * g[changed]) + np.abs(minus[changed] * g[changed]))
            )

        where = "at the given inputs"
        output()
        numeric = {}
        for name, x in zip(names, work[: len(grads)], strict=False):
            where = f"when perturbing {name!r}"
            numeric[name] = numeric_gradient(
                output, x, eps, reduce=lambda d: float(np.sum(d * g)), magnitude=touched
            )
    return _report(analytic, numeric, eps, rtol, atol, dtype)


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


def _notes(dtype: str) -> list[str]:
    if dtype == "float32":
        return [
            "note: a float32 check is weaker - rounding limits it to gross errors; "
            "use float64 to prove a gradient."
        ]
    return []


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


def _compare(
    name: str, a: np.ndarray, n: np.ndarray, fd_error: np.ndarray, rtol: float, atol: float
) -> ParamReport:
    err = np.abs(a - n)
    excess = err - (atol + rtol * np.abs(n) + fd_error)
    ok = bool(np.all(excess <= 0)) and bool(np.all(np.isfinite(a)))
    scale = np.maximum(np.abs(a), np.abs(n))
    rel = np.where(scale > atol, err / np.where(scale > 0, scale, 1.0), 0.0)
    if a.size:
        bad = np.where(np.isfinite(excess), excess, np.inf)
        idx = np.unravel_index(int(np.argmax(bad)), a.shape)
    else:
        idx = ()
    nn = float(np.dot(n.ravel(), n.ravel()))
    ratio = residual = None
    if nn > 0 and np.all(np.isfinite(a)):
        ratio = float(np.dot(a.ravel(), n.ravel()) / nn)
        norm_a = float(np.linalg.norm(a))
        residual = float(np.linalg.norm(a - ratio * n) / norm_a) if norm_a > 0 else 1.0
    return ParamReport(
        name=name,
        shape=a.shape,
        ok=ok,
        max_abs_error=float(err.max()) if a.size else 0.0,
        max_rel_error=float(rel.max()) if a.size else 0.0,
        worst_index=tuple(int(i) for i in idx),
        analytic=float(a[idx]) if a.size else 0.0,
        numeric=float(n[idx]) if a.size else 0.0,
        ratio=ratio,
        ratio_residual=residual,
        fd_error=float(fd_error.max()) if a.size else 0.0,
        diagnosis="ok" if ok else _diagnose(a, n, ratio, residual, idx, rtol, atol),
    )


def _diagnose(
    a: np.ndarray,
    n: np.ndarray,
    ratio: float | None,
    residual: float | None,
    idx: tuple[int, ...],
    rtol: float,
    atol: float,
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
        return f"off by a constant factor: analytic = {ratio:.6g} x numeric"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and np.allclose(a.T, n, rtol=rtol, atol=atol):
        return "analytic is the transpose of numeric (x.T @ dout written as dout.T @ x?)"
    return (
        f"mismatch, not a constant factor: at {tuple(int(i) for i in idx)} analytic "
        f"{a[idx]:.6g} vs numeric {n[idx]:.6g}"
    )
