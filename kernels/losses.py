"""Losses, all reduced by the *mean* over every element.

Forward ``(prediction, target) -> (loss, cache)`` with ``loss`` a 0-d array of
the prediction's dtype; backward ``(dloss, cache) -> d prediction``. ``dloss``
is the upstream scalar (``1.0`` when the loss is the final cost). Targets get
no gradient. Prediction and target must have the *same* shape: broadcasting
(4, 1) against (4,) would silently build a (4, 4) loss, so it is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels._checks import as_float_array, as_upstream
from kernels.activations import _sigmoid

# Machine epsilon per float dtype: the BCE clip bound (see bce_forward).
_EPS = {name: float(np.finfo(name).eps) for name in ("float16", "float32", "float64")}


def _pair(xp: Any, pred_name: str, pred: Any, y: Any) -> tuple[Any, Any]:
    pred = as_float_array(xp, pred_name, pred)
    y = xp.asarray(y)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"y must be a numeric array, got dtype {y.dtype}")
    if tuple(y.shape) != tuple(pred.shape):
        raise ValueError(
            f"y must have the shape of {pred_name}, {tuple(pred.shape)}, "
            f"got {tuple(y.shape)} (no broadcasting in a loss)"
        )
    if pred.size == 0:
        raise ValueError(f"{pred_name} is empty: the mean of no losses is undefined")
    return pred, y.astype(pred.dtype)


def bce_forward(xp: Any, p: Any, y: Any) -> tuple[Any, Any]:
    """Mean binary cross-entropy on probabilities.

    L = -(1/N) sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)], N = p.size.
    p: any shape, probabilities in [0, 1]; y: same shape, targets in [0, 1]
    (cast to p's dtype). Returns a 0-d loss of p's dtype.

    p is first clipped to [eps, 1 - eps] with eps = finfo(p.dtype).eps
    (1.19e-7 in float32, 2.2e-16 in float64): both bounds are representable
    in that dtype (a fixed 1e-9 would round 1 - 1e-9 to 1 in float32), so the
    loss stays finite at p = 0 and p = 1, at most -log(eps) per element
    (15.9 in float32, 36.0 in float64). log(1 - p) is computed as log1p(-p).
    The cache holds the clipped ``p`` and ``y``.
    """
    p, y = _pair(xp, "p", p, y)
    eps = _EPS[p.dtype.name]
    # minimum(maximum(.)) is clip; NumPy's clip costs ~3 us of Python overhead
    # per call at the XOR size, the two ufuncs ~0.8 us.
    pc = xp.minimum(xp.maximum(p, eps), 1.0 - eps)
    loss = -(y * xp.log(pc) + (1.0 - y) * xp.log1p(-pc)).sum() / pc.size
    return loss, (pc, y)


def bce_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of mean BCE on probabilities.

    dL/dp_i = (p_i - y_i) / (p_i (1 - p_i)) / N, times the scalar ``dloss``.
    Uses the cached *clipped* p: inside (eps, 1 - eps) this is the exact
    derivative; at or beyond the clip bounds it is the derivative at the bound
    (finite, and still pointing the right way) rather than the clip's 0.
    Returns dp with p's shape and dtype.
    """
    pc, y = cache
    dloss = as_upstream(xp, "dloss", dloss, (), pc.dtype)
    return dloss * (pc - y) / (pc * (1.0 - pc)) / pc.size


def bce_with_logits_forward(xp: Any, z: Any, y: Any) -> tuple[Any, Any]:
    """Mean binary cross-entropy on logits, fused with the sigmoid.

    L = (1/N) sum_i [softplus(z_i) - y_i z_i], which equals BCE(sigmoid(z), y).
    z: any shape of logits; y: same shape, targets in [0, 1]. Evaluated as
    max(z, 0) - z y + log1p(exp(-|z|)): exp never sees a positive argument, so
    any finite z gives a finite loss with no clipping at all. Caches (z, y).
    """
    z, y = _pair(xp, "z", z, y)
    loss = (xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).sum() / z.size
    return loss, (z, y)


def bce_with_logits_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of fused BCE on logits: dL/dz_i = (sigma(z_i) - y_i) / N.

    The sigmoid's derivative sigma(1 - sigma) cancels against BCE's
    1 / (p (1 - p)), which is why the fused form is stable. Uses the cached
    *input* logits z (and y); returns dz with z's shape and dtype.
    """
    z, y = cache
    dloss = as_upstream(xp, "dloss", dloss, (), z.dtype)
    return dloss * (_sigmoid(xp, z) - y) / z.size


def mse_forward(xp: Any, yhat: Any, y: Any) -> tuple[Any, Any]:
    """Mean squared error L = (1/N) sum_i (yhat_i - y_i)^2, N = yhat.size.

    yhat: any shape; y: same shape. Caches the residual ``yhat - y``.
    """
    yhat, y = _pair(xp, "yhat", yhat, y)
    r = yhat - y
    return (r * r).sum() / r.size, r


def mse_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of MSE: dL/dyhat_i = 2 (yhat_i - y_i) / N, times ``dloss``.

    Uses the cached residual; returns dyhat with yhat's shape and dtype.
    """
    r = cache
    dloss = as_upstream(xp, "dloss", dloss, (), r.dtype)
    return dloss * 2.0 * r / r.size
