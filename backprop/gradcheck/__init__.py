"""Gradient checking with an error bound: pass, fail, kink or inconclusive.

:func:`gradcheck` compares a hand-written gradient function against finite
differences of the loss, entry by entry of every parameter (any pytree of
NumPy or JAX arrays); :func:`check_kernel` does the same for one
forward/backward kernel pair through a random upstream gradient.

**The bound.** For each entry the derivative is estimated by Richardson
extrapolation of central differences at steps h, h/2, h/4, with a bound on
its error: the truncation |A - B| of two extrapolations, plus the rounding
of the loss values, 1.5 e / (h/4) with e = 4 u (|L(x+h)| + |L(x-h)|) and u
the unit roundoff of the *loss value's* dtype (a float32 loss, NumPy or JAX,
gets float32 rounding, and its steps are taken on float32 values). The step
starts at ``eps`` and is halved while truncation dominates, grown while
rounding dominates, until the bound is below a quarter of the tolerance
atol + rtol |numeric| or it cannot improve (see
:mod:`backprop.gradcheck.estimate`). Then each entry gets

- **pass** when |analytic - numeric| + bound <= tolerance: the analytic value
  is within the tolerance of the true derivative;
- **fail** when |analytic - numeric| - bound > tolerance: certainly wrong by
  more than the tolerance; the parameter's failing entries are diagnosed
  (zeroed entries, sign flips on some or all entries, a transposed square
  matrix, a constant or integer factor such as a sum where a mean belongs,
  a missing derivative factor);
- **kink** when the one-sided slopes (each extrapolated, with its own bound)
  differ by more than their bounds at every step down to where rounding
  hides them: the loss is not differentiable there (ReLU at 0, |w| at 0, a
  tie in a max). The analytic value passes as a valid subgradient when it
  lies between or at the two slopes (within their bounds and the
  tolerance), and fails otherwise. A kink near the point but not at it
  (ReLU at 4e-7) disappears at small enough steps and is checked as the
  smooth point it is. A jump of the function itself (a step function at 0)
  is a kink whose one-sided slopes grow without bound: any value on the
  side of the jump, 0 included, is admissible;
- **inconclusive** otherwise: the bound is too large against the tolerance
  (a loss offset by 1e12 rounds away every difference; parameters of 1e16
  leave no usable step) or the mismatch lies within the bound of the
  tolerance. The report says why and what to try.

A parameter's verdict is the worst of its entries' (fail > inconclusive >
kink > pass); ``report.ok`` is true for pass and kink, and
:meth:`GradcheckReport.assert_ok` raises otherwise. The check is
per coordinate: at a point where several entries sit at kinks together (a
tie in a max) each analytic entry is checked against its own one-sided
slopes, which is necessary for a valid subgradient, not sufficient.

Defaults: for float64 losses ``eps = 1e-3`` (the first step), ``rtol =
1e-5``, ``atol = 1e-8``; for float32 losses (or ``dtype="float32"``)
``eps = 1e-2``, ``rtol = 1e-2``, ``atol = 1e-3``. JAX's x64 switch is never
touched: a JAX loss is checked in the precision it computes in.

``loss_fn``/``grad_fn`` (and a kernel's forward and backward) receive
read-only views of the checker's working arrays, so the check is taken where
it says: a function that writes into its input raises instead of silently
moving the point of the differences.
"""

from __future__ import annotations

from backprop.gradcheck.core import DEFAULTS, check_kernel, gradcheck, numeric_gradient
from backprop.gradcheck.report import GradcheckReport, Kink, ParamReport, Verdict

__all__ = [
    "DEFAULTS",
    "GradcheckReport",
    "Kink",
    "ParamReport",
    "Verdict",
    "check_kernel",
    "gradcheck",
    "numeric_gradient",
]
