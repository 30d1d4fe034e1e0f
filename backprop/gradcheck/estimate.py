"""Finite-difference derivatives with an error bound, step search and kink detection.

For one entry x_i of a parameter, phi(t) = f(x + t e_i). From phi at +-h,
+-h/2, +-h/4 (a "triple" of levels) and phi(0):

- **central**: D(h) = (phi(h) - phi(-h)) / 2h; two Richardson extrapolations
  A = (4 D(h/2) - D(h)) / 3 and B = (4 D(h/4) - D(h/2)) / 3 (both O(h^4)).
  The estimate is B; its truncation bound is |A - B| (A's error is ~16 times
  B's where the expansion holds, so |A - B| over-states B's error ~15-fold;
  where it does not hold, A and B disagree and the step is shrunk).
- **rounding**: each value of phi carries an error of at most
  e = 4 u (|phi(h)| + |phi(-h)|), u the unit roundoff of the *loss value's*
  dtype (float32 for an ``np.float32`` or JAX float32 loss, whatever the
  working arrays are). B = D(h/4) + (D(h/4) - D(h/2)) / 3 then carries at
  most 1.5 e / (h/4).
- **one-sided**: R(h) = (phi(h) - phi(0)) / h and L(h) = (phi(0) - phi(-h)) / h,
  extrapolated twice (O(h) and O(h^2) terms removed), with bounds the same
  way. At a smooth point they agree to within their bounds; at a kink they
  differ by the jump of the derivative at every step, which no step removes.

A value is certainly wrong only when it lies outside every smooth
estimate met on the way, widened by its bound (``env_lo``, ``env_hi``):
where the steps straddle kinks, one estimate can look consistent by chance.

The search starts at ``eps`` (times |x_i| where that exceeds 1) and
shrinks the step (halving) while the
truncation bound dominates, grows it (x4) while rounding dominates, until
the bound is below a quarter of the tolerance at the entry, or the step
cannot move further: then the entry is *unresolved* and the best bound
found is kept. Non-finite values at a step shrink it; a kink seen at one
step is followed down to where rounding hides it, so a kink near (not at)
the point is resolved as the smooth point it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Status codes per entry.
SMOOTH = 0  # the bound met its target
KINK = 1  # one-sided slopes differ beyond their bounds at the smallest usable step
UNRESOLVED = 2  # no step made the bound small enough (``near_kink``: a kink within the steps)

MAX_DOWN = 40  # halvings below eps (relu at 4e-7 from eps = 1e-3 needs ~12)
MAX_UP = 4  # steps of x4 above eps when rounding dominates
KINK_LOCAL = 1e-6  # a kink followed to within 1e-6 max(1, |x|) is at the point
ROUNDING_PER_EVAL = 4.0  # e = 4 u (|phi(h)| + |phi(-h)|): ~8 u |loss| per value


class NonFinite(Exception):
    """The function returned NaN or inf at an evaluated point."""


@dataclass
class Estimates:
    """Per-entry results for one parameter; every array has the parameter's shape.

    ``numeric``: the central estimate B (for a kink: the central average);
    ``truncation``, ``rounding``: the two parts of its bound, ``error`` their
    sum (inf where no step could be taken); ``step``: the largest step of the
    triple used; ``status``: SMOOTH, KINK or UNRESOLVED; ``left``, ``right``:
    the extrapolated one-sided slopes; ``side_error``: the larger bound of
    the two; ``lo``, ``hi``: every one-sided slope seen at the final steps
    (a kink's admissible interval); ``jump``: the function itself jumps (the
    one-sided slopes grow like 1/h); ``evaluations``: function calls spent.
    """

    numeric: np.ndarray
    truncation: np.ndarray
    rounding: np.ndarray
    step: np.ndarray
    status: np.ndarray
    left: np.ndarray
    right: np.ndarray
    side_error: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    jump: np.ndarray
    near_kink: np.ndarray
    env_lo: np.ndarray
    env_hi: np.ndarray
    evaluations: int = 0

    @property
    def error(self) -> np.ndarray:
        return self.truncation + self.rounding

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> Estimates:
        def z() -> np.ndarray:
            return np.zeros(shape)

        return cls(
            z(), z(), z(), z(), np.zeros(shape, dtype=int), z(), z(), z(), z(), z(),
            np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool), z(), z(),
        )  # fmt: skip


def unit_roundoff(dtype: Any) -> float:
    """Machine epsilon of a float dtype (NumPy or ml_dtypes, e.g. bfloat16)."""
    try:
        return float(np.finfo(dtype).eps)
    except (TypeError, ValueError):  # pragma: no cover - exotic dtypes
        import ml_dtypes  # type: ignore[import-not-found]

        return float(ml_dtypes.finfo(dtype).eps)


def estimate(
    f: Callable[[], Any],
    x: np.ndarray,
    eps: float,
    tolerance: Callable[[float], float],
    unit: float,
    grid: Any = None,
    reduce: Callable[[Any], float] = float,
    magnitude: Callable[[Any, Any], float] | None = None,
    f0: Any = None,
) -> Estimates:
    """Derivative of ``reduce(f())`` by every entry of ``x``, with its bound.

    Parameters
    ----------
    f : callable
        ``f()`` evaluates at the current ``x`` (it reads ``x`` or a view of
        it); raises :class:`NonFinite` for NaN or inf.
    x : ndarray, shape (...)
        Perturbed in place entry by entry and restored exactly.
    eps : float
        The first step of the search.
    tolerance : callable
        ``tolerance(value)``: atol + rtol |value|; the search stops once the
        bound is below a quarter of it.
    unit : float
        Unit roundoff of the function's values.
    grid : numpy dtype, optional
        Perturbed values are rounded to this dtype (a float32 loss computes
        on float32 copies of the parameters: the step actually taken is the
        float32 one). Default: x's dtype.
    reduce, magnitude : callable, optional
        ``reduce(a - b)`` turns a difference of outputs into a number
        (default float); ``magnitude(a, b)`` is the size of the values whose
        difference is taken (default |a| + |b|).
    f0 : optional
        ``f()`` at the unperturbed point, if already known.

    Returns
    -------
    Estimates
    """
    if magnitude is None:
        magnitude = lambda a, b: abs(float(a)) + abs(float(b))  # noqa: E731
    grid = np.dtype(grid if grid is not None else x.dtype)
    if f0 is None:
        f0 = f()
    out = Estimates.empty(x.shape)
    calls = [0]

    def counted() -> Any:
        calls[0] += 1
        return f()

    for i in np.ndindex(x.shape):
        _entry(counted, x, i, eps, tolerance, unit, grid, reduce, magnitude, f0, out)
    out.evaluations = calls[0]
    return out


class _Level:
    """phi at +-h for one step h: the values, the steps actually taken, the rounding."""

    __slots__ = ("central", "error", "h", "left", "right")

    def __init__(self, central: float, right: float, left: float, h: float, error: float):
        self.central, self.right, self.left, self.h, self.error = central, right, left, h, error


def _entry(
    f: Callable[[], Any],
    x: np.ndarray,
    i: tuple[int, ...],
    eps: float,
    tolerance: Callable[[float], float],
    unit: float,
    grid: np.dtype,
    reduce: Callable[[Any], float],
    magnitude: Callable[[Any, Any], float],
    f0: Any,
    out: Estimates,
) -> None:
    orig = x[i]
    origf = float(orig)
    if np.isfinite(origf):
        eps = eps * max(1.0, abs(origf))  # a relative step for large entries
    # Smallest usable step: 64 spacings of the grid at x, so that the step
    # actually taken is within 1/64 of the nominal one.
    floor = 64 * float(np.spacing(grid.type(abs(origf)))) if np.isfinite(origf) else np.inf
    levels: dict[int, _Level | None] = {}

    def level(k: int) -> _Level | None:
        if k in levels:
            return levels[k]
        h = eps * 2.0**-k
        if h < floor:
            levels[k] = None
            return None
        up = grid.type(origf + h)
        down = grid.type(origf - h)
        hp, hm = float(up) - origf, origf - float(down)
        try:
            x[i] = up
            fp = f()
            x[i] = down
            fm = f()
        except NonFinite:
            levels[k] = None
            return None
        finally:
            x[i] = orig
        central = reduce(fp - fm) / (hp + hm)
        right = reduce(fp - f0) / hp
        left = reduce(f0 - fm) / hm
        size = max(magnitude(fp, fm), magnitude(fp, f0), magnitude(f0, fm))
        levels[k] = _Level(central, right, left, (hp + hm) / 2, ROUNDING_PER_EVAL * unit * size)
        return levels[k]

    def triple(k: int) -> dict[str, float] | None:
        ls = [level(k), level(k + 1), level(k + 2)]
        if any(v is None for v in ls):
            return None
        l0, l1, l2 = ls  # type: ignore[misc]
        e = max(l0.error, l1.error, l2.error)
        r1 = (l0.h / l1.h) ** 2
        r2 = (l1.h / l2.h) ** 2
        a = (r1 * l1.central - l0.central) / (r1 - 1)
        b = (r2 * l2.central - l1.central) / (r2 - 1)
        trunc = abs(a - b)
        rnd = 1.5 * e / l2.h
        # Where the expansion D(h) = f' + c h^2 + ... holds, successive
        # differences shrink 4-fold. Elsewhere (kinks between the steps, a
        # function that oscillates on the step's scale) |A - B| says
        # nothing: fall back on the spread of the differences themselves.
        d1, d2 = l0.central - l1.central, l1.central - l2.central
        if not (d2 != 0 and 2.5 <= d1 / d2 <= 6.5):
            trunc = max(trunc, abs(d1), abs(d2))

        def side(s0: float, s1: float, s2: float) -> tuple[float, float]:
            ra, rb = 2 * s1 - s0, 2 * s2 - s1
            rc = (4 * rb - ra) / 3
            return rc, abs(rc - rb) + 7.5 * e / l2.h

        right, er = side(l0.right, l1.right, l2.right)
        left, el = side(l0.left, l1.left, l2.left)
        # A kink within the steps (not at the point) bends the central
        # differences in a way Richardson does not see, while the one-sided
        # slope on the far side stays exact: the central estimate must agree
        # with both one-sided ones to within their bounds. Where it does not
        # (a kink the rounding hides: central differences are then exact
        # averages of the two slopes), the bound grows to cover all three.
        if abs(b - right) > er + trunc + rnd or abs(b - left) > el + trunc + rnd:
            trunc = max(trunc, abs(b - right) + er, abs(b - left) + el)
        raw = (l0.right, l1.right, l2.right, l0.left, l1.left, l2.left, right, left)
        # The function itself jumps: one-sided slopes grow like 1/h (x4 over the triple).
        grows = max(abs(l2.right), abs(l2.left)) > 3 * max(abs(l0.right), abs(l0.left), 1e-300)
        return {
            "b": b, "trunc": trunc, "rnd": rnd, "right": right, "left": left,
            "eside": max(er, el), "jerr": er + el, "noise": 15 * e / l2.h,
            "lo": min(raw), "hi": max(raw),
            "h": l0.h, "jump": float(grows), "within": l2.h,
        }  # fmt: skip

    k, grown, shrunk, nonfinite = 0, 0, False, False
    best: dict[str, float] | None = None
    kink: dict[str, float] | None = None
    kink_within = 0.0
    env_lo, env_hi = np.inf, -np.inf
    while True:
        t = triple(k)
        if t is None:
            if eps * 2.0 ** -(k + 2) < floor:  # below the spacing at x: grow
                if shrunk or grown >= MAX_UP:
                    break
                k -= 2
                grown += 1
                continue
            nonfinite = True  # NaN or inf at some step: try smaller ones
            if k >= MAX_DOWN:
                break
            k += 1
            shrunk = True
            continue
        jump = abs(t["right"] - t["left"])
        if jump > 2 * t["jerr"] + tolerance(max(abs(t["right"]), abs(t["left"]))):
            if kink is None or t["jerr"] <= kink["jerr"]:
                kink = t  # the best-resolved slopes
            kink_within = t["h"] / 4
            # Follow the kink down until rounding starts to blur the one-sided
            # slopes: a kink near the point, not at it, turns smooth at
            # smaller steps.
            if k < MAX_DOWN and t["noise"] < jump / 16:
                k += 1
                shrunk = True
                continue
            break
        err = t["trunc"] + t["rnd"]
        env_lo, env_hi = min(env_lo, t["b"] - err), max(env_hi, t["b"] + err)
        if best is None or err < best["trunc"] + best["rnd"]:
            best = t
        if err <= tolerance(t["b"]) / 4:
            kink = None  # smooth at this step: a kink seen at larger steps was not at the point
            break
        if t["trunc"] >= t["rnd"]:
            if k >= MAX_DOWN:
                break
            k += 1
            shrunk = True
        else:
            if shrunk or grown >= MAX_UP:
                break
            k -= 2
            grown += 1
    near = False
    if kink is not None:
        t, status = {**kink, "h": 4 * kink_within}, KINK
        # A kink is placed at the point only when followed to within
        # KINK_LOCAL |x| of it. Further out (float32 rounding stops the
        # search near 1e-3) it may lie on either side, and other kinks may
        # lie within the steps too, bending the one-sided slopes: the entry
        # is unresolved, neither pass nor fail.
        if kink_within > KINK_LOCAL * max(1.0, abs(origf)):
            status, near = UNRESOLVED, True
    elif best is not None:
        t = best
        status = SMOOTH if t["trunc"] + t["rnd"] <= tolerance(t["b"]) / 4 else UNRESOLVED
    else:
        if nonfinite:
            raise NonFinite
        out.numeric[i] = np.nan
        out.truncation[i] = out.rounding[i] = out.side_error[i] = np.inf
        out.status[i] = UNRESOLVED
        out.step[i] = eps
        out.left[i] = out.right[i] = out.lo[i] = out.hi[i] = np.nan
        out.env_lo[i], out.env_hi[i] = -np.inf, np.inf
        return
    out.numeric[i] = t["b"]
    out.truncation[i] = t["trunc"]
    out.rounding[i] = t["rnd"]
    out.step[i] = t["h"]
    out.status[i] = status
    out.left[i], out.right[i] = t["left"], t["right"]
    out.side_error[i] = t["eside"]
    out.lo[i], out.hi[i] = t["lo"], t["hi"]
    out.jump[i] = bool(t["jump"]) and status == KINK
    out.near_kink[i] = near
    # Every smooth estimate met on the way, with its bound: a value outside
    # all of them is wrong at every step tried, not just at the best one.
    out.env_lo[i], out.env_hi[i] = (env_lo, env_hi) if env_lo <= env_hi else (-np.inf, np.inf)
