"""Verdicts per entry and parameter, diagnoses, and the printed report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from backprop.gradcheck.estimate import KINK, UNRESOLVED, Estimates

Verdict = Literal["pass", "fail", "inconclusive", "kink"]

# A constant ratio analytic/numeric is "exact" when it explains the analytic
# gradient to this relative residual.
_FIT_TOL = 1e-3
_SHOWN_KINKS = 4


def _max(arr: np.ndarray) -> float:
    """Largest entry, NaN ignored (0 for none)."""
    arr = np.asarray(arr, dtype=float)
    return float(np.max(np.where(np.isnan(arr), -np.inf, arr), initial=0.0))


def _argmax(arr: np.ndarray, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Index of the largest entry, NaN counting as the largest (it is a violation)."""
    arr = np.where(np.isnan(arr), np.inf, arr)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(arr)), shape))


def _num(v: float, digits: int) -> str:
    return f"{v + 0.0:.{digits}g}"  # + 0.0: no "-0"


def _factor(c: float, digits: int) -> str:
    """``c`` with enough digits not to read as 1 (never "1 x")."""
    for d in range(digits, 17):
        s = _num(c, d)
        if float(s) != 1.0 or c == 1.0:
            return s
    return repr(c)  # pragma: no cover


@dataclass(frozen=True)
class Kink:
    """A non-differentiable point of the loss along one entry.

    ``left`` and ``right`` are the one-sided slopes (extrapolated),
    ``analytic`` the checked value and ``relation`` where it lies:
    "left slope", "right slope", "between" (all valid subgradients) or
    "outside" (a failure). ``jump``: the function itself jumps there (the
    one-sided slopes grow without bound as the step shrinks, as for a step
    function); then any value on the side of the jump is admissible.
    ``within`` is the step below which the kink could not be followed (it
    lies within that distance of the point).
    """

    index: tuple[int, ...]
    left: float
    right: float
    analytic: float
    relation: str
    jump: bool
    within: float

    def describe(self, name: str, digits: int) -> str:
        where = f"{name}{list(self.index)}"
        if self.jump:
            what = (
                f"the loss jumps (a discontinuity within {self.within:.1g}): one-sided slopes "
                f"grow as the step shrinks (up to {_num(self.left, 3)} / {_num(self.right, 3)})"
            )
        else:
            what = (
                f"kink within {self.within:.1g}: left slope {_num(self.left, digits)}, "
                f"right slope {_num(self.right, digits)}"
            )
        rel = {
            "left slope": "= the left slope (a valid subgradient)",
            "right slope": "= the right slope (a valid subgradient)",
            "between": "lies between them (a valid subgradient)",
            "outside": "is OUTSIDE them (wrong)",
        }[self.relation]
        return f"{where}: {what}; analytic {_num(self.analytic, digits)} {rel}"


@dataclass(frozen=True)
class ParamReport:
    """The comparison for one parameter (or one kernel input).

    ``verdict``: "pass" (every entry certified: |analytic - numeric| +
    bound <= tolerance, so the analytic value is within the tolerance of the
    true derivative), "fail" (some entry misses by more than tolerance +
    bound: certainly wrong), "kink" (no failure, and at some entries the
    loss is not differentiable while the analytic value is a valid
    subgradient there: between or at the one-sided slopes; the others pass)
    or "inconclusive" (no failure, but the finite differences cannot
    separate right from wrong at some entry; ``diagnosis`` says why).
    ``ok`` is true for "pass" and "kink".

    ``worst_index`` is the entry that decided the verdict, where
    ``analytic`` and ``numeric`` are read; ``error_measure`` = |analytic -
    numeric| there, ``bound`` what it was compared with (tolerance - fd
    error for a pass, tolerance + fd error for a fail) and ``bound_set_by``
    which part dominated it: "tolerance" (atol + rtol |numeric|),
    "truncation" or "rounding" (of the finite differences), or "kink".
    ``fd_error`` is the largest finite-difference bound over the entries,
    ``resolution`` the largest bound / tolerance, ``unresolved`` how many
    smooth entries have a bound above the tolerance. ``ratio`` is the
    least-squares c in analytic ~ c numeric over the entries whose numeric
    value stands out of its bound and atol (None when none does), and
    ``ratio_residual`` ||analytic - c numeric|| / ||analytic||. ``step`` is
    the largest step used at the worst entry; ``kinks`` lists the
    non-differentiable entries.
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
    error_measure: float = 0.0
    bound: float = 0.0
    bound_set_by: str = "tolerance"
    step: float = 0.0
    failing_entries: int = 0
    kinks: tuple[Kink, ...] = ()

    @property
    def ok(self) -> bool:
        """True for "pass" and "kink" (a valid subgradient is not a failure)."""
        return self.verdict in ("pass", "kink")


@dataclass(frozen=True)
class GradcheckReport:
    """Per-parameter results of a gradient check; ``ok`` when all pass or are valid at kinks.

    ``verdict`` is "fail" if any parameter fails, else "inconclusive" if any
    is, else "kink" if any has a kink, else "pass". ``failing``,
    ``inconclusive`` and ``kinked`` name the parameters with those verdicts,
    in check order. ``dtype`` is the working precision of the parameters,
    ``loss_dtype`` the dtype of the loss values (its rounding is the one
    the bounds use); ``eps`` the first step of the step search.
    """

    params: dict[str, ParamReport]
    eps: float
    rtol: float
    atol: float
    dtype: str
    notes: list[str] = field(default_factory=list)
    loss_dtype: str = "float64"
    evaluations: int = 0

    @property
    def verdict(self) -> Verdict:
        """The overall verdict: fail > inconclusive > kink > pass."""
        if self.failing:
            return "fail"
        if self.inconclusive:
            return "inconclusive"
        return "kink" if self.kinked else "pass"

    @property
    def ok(self) -> bool:
        """True when every parameter passed or is a valid subgradient at its kinks."""
        return all(p.ok for p in self.params.values())

    @property
    def failing(self) -> list[str]:
        """Names of the parameters whose gradient is wrong, in check order."""
        return [n for n, p in self.params.items() if p.verdict == "fail"]

    @property
    def inconclusive(self) -> list[str]:
        """Names of the parameters the finite differences could not decide, in check order."""
        return [n for n, p in self.params.items() if p.verdict == "inconclusive"]

    @property
    def kinked(self) -> list[str]:
        """Names of the parameters with kinks (and valid subgradients there), in check order."""
        return [n for n, p in self.params.items() if p.verdict == "kink"]

    def __getitem__(self, name: str) -> ParamReport:
        return self.params[name]

    def __str__(self) -> str:
        digits = 4 if "float32" in (self.dtype, self.loss_dtype) else 6
        order = {"fail": 0, "inconclusive": 1, "kink": 2, "pass": 3}
        rows = sorted(self.params.values(), key=lambda p: order[p.verdict])  # stable
        header = (
            "param", "shape", "verdict", "worst at", "analytic", "numeric",
            "|a-n|", "vs bound", "bound set by", "step",
        )  # fmt: skip
        table = [header]
        for p in rows:
            cmp = "<=" if p.verdict in ("pass", "kink") else ">" if p.verdict == "fail" else "~"
            table.append(
                (
                    p.name,
                    str(p.shape),
                    p.verdict.upper() if p.verdict != "pass" else "ok",
                    str(p.worst_index),
                    _num(p.analytic, digits),
                    _num(p.numeric, digits),
                    f"{p.error_measure:.2e}",
                    f"{cmp} {p.bound:.2e}",
                    p.bound_set_by,
                    f"{p.step:.1e}",
                )
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
        ]
        v = self.verdict
        if v == "pass":
            title = "gradient check passed"
        elif v == "kink":
            title = (
                f"gradient check passed, with kinks in {', '.join(self.kinked)} "
                "(valid subgradients)"
            )
        elif v == "fail":
            title = f"gradient check FAILED for {', '.join(self.failing)}"
            if self.inconclusive:
                title += f"; INCONCLUSIVE for {', '.join(self.inconclusive)}"
        else:
            title = (
                f"gradient check INCONCLUSIVE for {', '.join(self.inconclusive)}: "
                "the finite differences cannot tell a right gradient from a wrong one there"
            )
        loss = "" if self.loss_dtype == self.dtype else f", loss in {self.loss_dtype}"
        lines.insert(
            0,
            f"{title} ({self.dtype}{loss}, rtol={self.rtol:g}, atol={self.atol:g}, "
            f"first step {self.eps:g}; pass: |a-n| + fd error <= atol + rtol |n|)",
        )
        for p in rows:
            if p.verdict == "fail":
                lines.append(f"{p.name}: FAIL - {p.diagnosis}")
            elif p.verdict == "inconclusive":
                lines.append(f"{p.name}: inconclusive - {p.diagnosis}")
            for k in p.kinks[:_SHOWN_KINKS]:
                lines.append(k.describe(p.name, digits))
            if len(p.kinks) > _SHOWN_KINKS:
                lines.append(f"{p.name}: ... and {len(p.kinks) - _SHOWN_KINKS} more kinks")
        lines.extend(self.notes)
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise unless every parameter passed (or is a valid subgradient at its kinks).

        Raises
        ------
        AssertionError
            When any parameter failed or is inconclusive; the message is the
            report, with the diagnosis or the reason for each.
        """
        if not self.ok:
            raise AssertionError("\n" + str(self))


def compare(
    name: str,
    a: np.ndarray,
    est: Estimates,
    x: np.ndarray,
    rtol: float,
    atol: float,
    digits: int,
    dtype: str,
) -> ParamReport:
    """The verdict for one parameter from its analytic gradient and the estimates."""
    n = est.numeric
    err = est.error
    kink = est.status == KINK
    near = est.near_kink
    smooth = ~kink & ~near
    finite_a = np.isfinite(a)
    tol = atol + rtol * np.abs(n)
    d = np.abs(a - n)
    with np.errstate(invalid="ignore"):
        # smooth entries: certified right / certified wrong / undecided
        # wrong beyond the bound of the best estimate and of every other one
        outside = (a < est.env_lo - tol) | (a > est.env_hi + tol)
        fail_s = smooth & (((d - err > tol) & outside) | ~finite_a)
        pass_s = smooth & finite_a & (d + err <= tol)
        # kinks: inside [lo, hi] widened by the slopes' bound and the tolerance
        margin = est.side_error + atol + rtol * np.maximum(np.abs(est.left), np.abs(est.right))
        lo = est.lo - margin
        hi = np.where(est.jump & (est.hi > 0), np.inf, est.hi) + margin
        lo = np.where(est.jump & (est.lo < 0), -np.inf, lo)
        inside = (a >= lo) & (a <= hi)
    fail_k = (kink & ~(inside & finite_a)) | (near & ~finite_a)
    failing = fail_s | fail_k
    undecided = (smooth & ~fail_s & ~pass_s) | (near & ~fail_k)
    verdict: Verdict = (
        "fail" if failing.any() else
        "inconclusive" if undecided.any() else
        "kink" if kink.any() else "pass"
    )  # fmt: skip

    with np.errstate(divide="ignore", invalid="ignore"):
        score_fail = np.where(failing, np.where(finite_a, (d - err) / tol, np.inf), -np.inf)
        score = np.where(smooth, (d + err) / tol, np.where(near, np.inf, -np.inf))
        resolution_arr = np.where(smooth, err / tol, 0.0)
    if not a.size:
        idx: tuple[int, ...] = ()
    elif verdict == "fail":
        idx = _argmax(np.where(failing, score_fail, -np.inf), a.shape)
    elif verdict == "kink":
        idx = _argmax(kink.astype(float), a.shape)
    elif verdict == "inconclusive":
        idx = _argmax(np.where(undecided, score, -np.inf), a.shape)
    else:
        idx = _argmax(score, a.shape)

    measure = bound = 0.0
    set_by = "tolerance"
    if a.size:
        t_i, e_i = float(tol[idx]), float(err[idx])
        measure = float(d[idx])
        if kink[idx] or near[idx]:
            measure = float(max(lo[idx] - a[idx], a[idx] - hi[idx], 0.0))
            bound, set_by = float(margin[idx]), "kink"
        else:
            bound = t_i - e_i if verdict == "pass" else t_i + e_i
            parts = {
                "tolerance": t_i,
                "truncation": float(est.truncation[idx]),
                "rounding": float(est.rounding[idx]),
            }
            set_by = max(parts, key=lambda k: parts[k]) if verdict != "pass" else "tolerance"
            if verdict == "pass" and e_i > t_i / 4:
                set_by = max(("truncation", "rounding"), key=lambda k: parts[k])

    scale = np.maximum(np.abs(a), np.abs(n))
    significant = smooth & finite_a & (np.abs(n) > np.maximum(err, atol))
    ratio = residual = None
    if significant.any() and finite_a.all():
        ns = n[significant]
        ratio = float(np.dot(a[significant], ns) / np.dot(ns, ns)) + 0.0
        norm_a = float(np.linalg.norm(a[significant]))
        residual = (
            float(np.linalg.norm(a[significant] - ratio * ns) / norm_a) if norm_a > 0 else 0.0
        )

    kinks = tuple(
        Kink(
            index=tuple(int(j) for j in k),
            left=float(est.left[k]),
            right=float(est.right[k]),
            analytic=float(a[k]),
            relation=_relation(
                float(a[k]),
                float(est.left[k]),
                float(est.right[k]),
                float(margin[k]),
                bool(inside[k]),
            ),
            jump=bool(est.jump[k]),
            within=float(est.step[k]) / 4,
        )
        for k in np.ndindex(kink.shape)
        if kink[k]
    )
    if verdict == "fail":
        diagnosis = diagnose(
            a, n, err, tol, failing, fail_k, significant, ratio, residual, idx, digits
        )
    elif verdict == "inconclusive":
        diagnosis = inconclusive_reason(name, idx, a, n, est, tol, undecided, x, dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(smooth, np.maximum(d + err - atol, 0.0) / np.abs(n), 0.0)
        r_star = _max(np.where(np.isnan(need), np.inf, need))
        if not near.any() and 0 < r_star < 0.1:
            diagnosis += (
                f"; all the same, analytic agrees with numeric to within rtol={r_star:.1g} "
                f"including the bound: a check with rtol={2 * r_star:.1g} would decide"
            )
    elif verdict == "kink":
        diagnosis = f"valid subgradient at {int(kink.sum())} kink(s)"
    else:
        diagnosis = "ok"
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > atol, d / np.where(scale > 0, scale, 1.0), 0.0)
    return ParamReport(
        name=name,
        shape=a.shape,
        verdict=verdict,
        max_abs_error=_max(np.where(smooth, d, 0.0)),
        max_rel_error=_max(np.where(smooth, rel, 0.0)),
        worst_index=idx,
        analytic=float(a[idx]) if a.size else 0.0,
        numeric=float(n[idx]) if a.size else 0.0,
        ratio=ratio,
        ratio_residual=residual,
        fd_error=float(np.max(np.where(smooth, err, 0.0), initial=0.0)),
        max_gradient=_max(scale),
        resolution=_max(resolution_arr),
        unresolved=int(np.sum(smooth & (est.status == UNRESOLVED))),
        diagnosis=diagnosis,
        error_measure=measure,
        bound=bound,
        bound_set_by=set_by,
        step=float(est.step[idx]) if a.size else 0.0,
        failing_entries=int(failing.sum()),
        kinks=kinks,
    )


def _relation(a: float, left: float, right: float, margin: float, inside: bool) -> str:
    if not inside:
        return "outside"
    if abs(a - left) <= margin and abs(a - left) <= abs(a - right):
        return "left slope"
    if abs(a - right) <= margin:
        return "right slope"
    return "between"


def diagnose(
    a: np.ndarray,
    n: np.ndarray,
    err: np.ndarray,
    tol: np.ndarray,
    failing: np.ndarray,
    fail_kink: np.ndarray,
    significant: np.ndarray,
    ratio: float | None,
    residual: float | None,
    idx: tuple[int, ...],
    digits: int = 6,
) -> str:
    """What kind of mistake the failing entries look like."""
    if not np.all(np.isfinite(a)):
        return "analytic gradient has NaN or inf entries"
    k, size = int(failing.sum()), a.size
    some = f"at {k} of {size} entries" if k < size else "at every entry"
    at = f"{list(idx)}"
    if failing.any() and np.all(fail_kink[failing]):
        return (
            f"analytic lies outside the one-sided slopes at {k} kink(s), e.g. at {at}: "
            f"not a subgradient"
        )
    if not np.any(a) and np.any(n[significant] if significant.any() else n):
        return "analytic gradient is all zero (is this gradient ever computed?)"
    allowed = tol + err
    if np.all(a[failing] == 0):
        return (
            f"analytic is 0 where numeric is not, {some} "
            f"(e.g. at {at}: numeric {_num(float(n[idx]), digits)}); an entry never written?"
        )
    if a.ndim == 2 and a.shape[0] == a.shape[1] > 1 and np.all(np.abs(a.T - n) <= allowed):
        return "analytic is the transpose of numeric (x.T @ dout written as dout.T @ x?)"
    if (
        ratio is not None
        and residual is not None
        and residual <= _FIT_TOL
        and abs(ratio - 1) > _FIT_TOL
    ):
        kk = round(ratio)
        inv = round(1 / ratio) if ratio else 0
        if abs(ratio + 1) <= _FIT_TOL:
            return "sign flipped: analytic = -numeric"
        if kk >= 2 and abs(ratio - kk) <= _FIT_TOL * kk:
            return f"analytic is exactly {kk}x too large (a sum where a mean belongs?)"
        if inv >= 2 and abs(1 / ratio - inv) <= _FIT_TOL * inv:
            return (
                f"analytic is exactly 1/{inv} of numeric "
                "(a mean where a sum belongs? a missing factor?)"
            )
        if kk <= -2 and abs(ratio - kk) <= _FIT_TOL * -kk:
            return f"sign flipped and {-kk}x too large: analytic = {kk} x numeric"
        return f"off by a constant factor: analytic = {_factor(ratio, digits)} x numeric"
    if np.all(np.abs(a[failing] + n[failing]) <= allowed[failing]):
        return f"sign flipped {some}: analytic = -numeric there (e.g. at {at})"
    fa, fn = a[failing], n[failing]
    nz = fn != 0
    if nz.any():
        r = fa[nz] / fn[nz]
        c = float(np.median(r))
        if (
            np.all(np.abs(fa - c * fn) <= allowed[failing] + 1e-9 * np.abs(fa))
            and abs(c - 1) > _FIT_TOL
        ):
            others = "; the other entries agree" if k < size else ""
            return f"analytic = {_factor(c, digits)} x numeric {some}{others}"
        if np.all(r > 0) and r.size > 1:
            return (
                f"same sign, but analytic/numeric varies from {_num(float(r.min()), 3)} to "
                f"{_num(float(r.max()), 3)} {some}: a missing or misplaced derivative factor "
                f"(sigma' skipped, or taken of the activation instead of the pre-activation?)"
            )
    return (
        f"mismatch, not a constant factor, {some} (a missing or misplaced factor such as "
        f"sigma', or a dropped term?): at {at} analytic {_num(float(a[idx]), digits)} vs "
        f"numeric {_num(float(n[idx]), digits)}"
    )


def inconclusive_reason(
    name: str,
    idx: tuple[int, ...],
    a: np.ndarray,
    n: np.ndarray,
    est: Estimates,
    tol: np.ndarray,
    undecided: np.ndarray,
    x: np.ndarray,
    dtype: str,
) -> str:
    """Why the finite differences cannot decide at entry ``idx``, and what to try."""
    count = f"{int(undecided.sum())} of {a.size} entries undecided"
    where = f"{name}{list(idx)}"
    trunc, rnd = float(est.truncation[idx]), float(est.rounding[idx])
    if est.near_kink[idx]:
        return (
            f"at {where} the one-sided slopes differ (left {float(est.left[idx]):.4g}, right "
            f"{float(est.right[idx]):.4g}) at every step down to {float(est.step[idx]) / 4:.1g}, "
            f"where rounding blurs them: a kink lies that close to the point (on a side the "
            f"differences cannot tell, perhaps with others within the steps), analytic "
            f"{float(a[idx]):.4g} ({count}); try: float64, a loss without a large offset (so "
            f"that smaller steps resolve it), or a point farther from the kink"
        )
    if not np.isfinite(trunc + rnd):
        spacing = float(np.spacing(np.abs(x[idx])))
        return (
            f"no usable step at {where} = {float(x[idx]):.3g}: steps near the spacing of "
            f"{dtype} numbers there ({spacing:.2g}) are rounded away ({count}); try: "
            f"{'float64, ' if dtype == 'float32' else ''}rescale {name} to order 1, or a larger eps"
        )
    fd, t = trunc + rnd, float(tol[idx])
    head = (
        f"at {where} the finite-difference bound {fd:.2g} is not small against the tolerance "
        f"{t:.2g} (analytic {float(a[idx]):.4g}, numeric {float(n[idx]):.4g}; {count})"
    )
    if fd <= t:
        return (
            f"{head}: |a-n| = {abs(float(a[idx] - n[idx])):.2g} lies within the bound of the "
            f"tolerance, neither certainly right nor certainly wrong; try a larger rtol/atol"
        )
    if rnd >= trunc:
        first = "float64, " if dtype == "float32" else ""
        return (
            f"{head}: the rounding of the loss values, divided by the largest step that keeps "
            f"the truncation small ({float(est.step[idx]):.1g}), swamps it; try: {first}subtract "
            f"any large constant offset from the loss, rescale the loss or {name} to order 1, "
            f"or a larger rtol/atol"
        )
    return (
        f"{head}: the differences disagree at every step down to {float(est.step[idx]) / 4:.1g} "
        f"- the function curves too sharply or oscillates there; try: a point away from the "
        f"singularity, or a larger rtol/atol"
    )
