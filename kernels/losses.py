"""Losses and the L2 weight penalty.

Forward ``(prediction, target, weights=None) -> (loss, cache)`` with ``loss``
a 0-d array of the prediction's dtype; backward ``(dloss, cache) -> d
prediction``. ``dloss`` is the upstream scalar (``1.0`` when the loss is the
final cost). Targets get no gradient. Prediction and target must have the
*same* shape: broadcasting (4, 1) against (4,) would silently build a (4, 4)
loss, so it is refused. As in :mod:`backprop.kernels.linear`, ``xp`` is bound by
:func:`backprop.kernels.get_backend`, a non-float array raises ``TypeError``, and a
``dloss`` that is not a scalar raises ``ValueError``.

Reduction: every loss is a weighted *sum* of per-element (per-row, for
softmax cross-entropy) losses, ``L = sum_i weights_i * l_i``. The default
weights are ``1 / count``, i.e. the mean. Explicit weights broadcast against
the per-element losses: a row mask divided by the number of real rows leaves
padding rows out exactly (their weight is 0), and data-parallel training
gives each device's rows ``1 / (rows in the whole batch)`` so that the sum of
the devices' losses is the batch mean. Each term is weighted before the sum,
so the sum cannot overflow where the mean is representable.

Targets must lie where the loss is defined (``y`` in [0, 1] for BCE,
``y >= 0`` for cross-entropy). On concrete arrays (NumPy, or JAX outside a
trace) this is checked; inside ``jax.jit`` nothing can be checked without
branching on values, so the public training functions check their data
once, at the entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream, require_in_range
from .activations import _sigmoid, sigmoid_forward
from .spec import TARGETS, Domain, Head, KernelSpec, prediction


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


def _weights(xp: Any, weights: Any, shape: tuple[int, ...], dtype: Any, count: int) -> Any:
    """Per-element weights broadcastable to ``shape``; default ``1 / count`` (the mean)."""
    if weights is None:
        return xp.asarray(1.0 / count, dtype=dtype)
    weights = as_float_array(xp, "weights", weights).astype(dtype)
    require_in_range(xp, "weights", weights, 0.0, None)  # a negative or NaN weight: no loss
    try:
        broadcast = np.broadcast_shapes(tuple(weights.shape), tuple(shape))
    except ValueError:
        broadcast = None
    if broadcast != tuple(shape):
        raise ValueError(
            f"weights must broadcast to the per-element losses' shape {tuple(shape)}, "
            f"got shape {tuple(weights.shape)}"
        )
    return weights


def bce_forward(xp: Any, p: Any, y: Any, weights: Any = None) -> tuple[Any, Any]:
    """Binary cross-entropy on probabilities.

    L = -sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)], w_i = 1/N by
    default (the mean over all N = p.size elements).

    Parameters
    ----------
    p : array, any shape
        Probabilities in [0, 1], float32 or float64.
    y : array, p's shape
        Targets in [0, 1], cast to p's dtype.
    weights : array broadcastable to p's shape, optional
        Per-element weights; default 1 / p.size.

    Returns
    -------
    loss : 0-d array of p's dtype
    cache : tuple
        ``(clipped p, y, weights)``.

    Raises
    ------
    ValueError
        If ``y``'s shape is not ``p``'s, ``p`` is empty, ``p`` or ``y`` holds
        values outside [0, 1] or NaN, ``weights`` holds negative values or NaN
        (values are checked on concrete arrays only), or ``weights`` does not
        broadcast to ``p``'s shape.
    TypeError
        If ``y`` is not numeric.

    Notes
    -----
    p is first clipped to [tiny, 1 - eps/2] of its dtype (tiny = 1.2e-38
    and 1 - eps/2 = 0.99999994 in float32): both bounds are representable,
    so a probability as small as 1e-12 keeps its true loss (27.63, where a
    clip at eps would give 15.94) and p = 0 or 1 still gives a finite one.
    log(1 - p) is computed as log1p(-p). Where the logits exist, prefer
    :func:`bce_with_logits_forward`, which needs no clip at all.
    """
    p, y = _pair(xp, "p", p, y)
    require_in_range(xp, "p", p, 0.0, 1.0)
    require_in_range(xp, "y", y, 0.0, 1.0)
    w = _weights(xp, weights, p.shape, p.dtype, p.size)
    info = np.finfo(p.dtype)
    # minimum(maximum(.)) is clip; NumPy's clip costs ~3 us of Python overhead
    # per call at the XOR size, the two ufuncs ~0.8 us.
    pc = xp.minimum(xp.maximum(p, float(info.tiny)), 1.0 - float(info.epsneg))
    loss = -(w * (y * xp.log(pc) + (1.0 - y) * xp.log1p(-pc))).sum()
    return loss, (pc, y, w)


def bce_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of BCE on probabilities: dL/dp_i = w_i (p_i - y_i) / (p_i (1 - p_i)).

    Parameters
    ----------
    dloss : float or 0-d array
        Upstream gradient of the loss (1.0 for the final cost).
    cache : tuple
        ``(clipped p, y, weights)`` from :func:`bce_forward`: the formula uses
        the *clipped* p.

    Returns
    -------
    dp : array of p's shape and dtype
        Inside the clip bounds the exact derivative; at or beyond them the
        derivative at the bound (finite, and still pointing the right way)
        rather than the clip's 0.
    """
    pc, y, w = cache
    dloss = as_upstream(xp, "dloss", dloss, (), pc.dtype)
    # Divide before weighting: at p = tiny, w * (p - y) is subnormal and XLA on a
    # CPU flushes subnormals to zero, losing the gradient's direction; the ratio
    # (p - y) / (p (1 - p)) is of order 1 there.
    return dloss * w * ((pc - y) / (pc * (1.0 - pc)))


def bce_with_logits_forward(xp: Any, z: Any, y: Any, weights: Any = None) -> tuple[Any, Any]:
    """Binary cross-entropy on logits, fused with the sigmoid.

    L = sum_i w_i [softplus(z_i) - y_i z_i], which equals BCE(sigmoid(z), y)
    exactly (no clipping); w_i = 1/N by default (N = z.size).

    Parameters
    ----------
    z : array, any shape
        Logits, float32 or float64.
    y : array, z's shape
        Targets in [0, 1].
    weights : array broadcastable to z's shape, optional
        Per-element weights; default 1 / z.size.

    Returns
    -------
    loss : 0-d array of z's dtype
    cache : tuple
        ``(z, y, weights)``: the *input* logits, not sigmoid(z).

    Raises
    ------
    ValueError
        If ``y``'s shape is not ``z``'s, ``z`` is empty, ``y`` holds values
        outside [0, 1] or NaN, ``weights`` holds negative values or NaN (values
        are checked on concrete arrays only), or ``weights`` does not broadcast
        to ``z``'s shape.
    TypeError
        If ``y`` is not numeric.

    Notes
    -----
    Evaluated as max(z, 0) - z y + log1p(exp(-|z|)): exp never sees a
    positive argument, so every finite logit gives a finite loss and no
    overflow warning, at |z| = 1e4 in float32 too; a saturated output keeps
    its true loss (z = 40, y = 0 costs 40, not a clipped 16).
    """
    z, y = _pair(xp, "z", z, y)
    require_in_range(xp, "y", y, 0.0, 1.0)
    w = _weights(xp, weights, z.shape, z.dtype, z.size)
    loss = (w * (xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z))))).sum()
    return loss, (z, y, w)


def bce_with_logits_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of BCE on logits: dL/dz_i = w_i (sigma(z_i) - y_i).

    Parameters
    ----------
    dloss : float or 0-d array
        Upstream gradient of the loss (1.0 for the final cost).
    cache : tuple
        ``(z, y, weights)`` from :func:`bce_with_logits_forward`: the *input*
        logits ``z``.

    Returns
    -------
    dz : array of z's shape and dtype

    Notes
    -----
    The sigmoid's derivative sigma (1 - sigma) cancels against BCE's
    1 / (p (1 - p)), which is why the fused form is stable: at a saturated
    output the gradient is the full w_i (1 - y_i), not 0.
    """
    z, y, w = cache
    dloss = as_upstream(xp, "dloss", dloss, (), z.dtype)
    return dloss * w * (_sigmoid(xp, z) - y)


def softmax(xp: Any, z: Any) -> Any:
    """Softmax over the last axis: exp(z_c - m) / sum_c exp(z_c - m), m = max_c z_c.

    The prediction of a softmax output layer; training uses
    :func:`softmax_cross_entropy_forward`, which fuses it with the loss.

    Parameters
    ----------
    z : array, shape (..., C)
        Logits.

    Returns
    -------
    p : array of z's shape and dtype
        Probabilities, each row summing to 1.

    Raises
    ------
    ValueError
        If ``z`` is 0-d or has no classes (a last axis of length 0).

    Notes
    -----
    Subtracting the row maximum keeps exp's argument <= 0, so no logit
    overflows.
    """
    z = as_float_array(xp, "z", z)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"z must have at least one class on its last axis, got shape {z.shape}")
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy_forward(xp: Any, z: Any, y: Any, weights: Any = None) -> tuple[Any, Any]:
    """Softmax cross-entropy on logits, fused with the softmax.

    L = sum_n w_n sum_c y_nc (logsumexp(z_n) - z_nc); with one-hot (or any
    probability-vector) rows this is -sum_n w_n log softmax(z_n)[label_n].

    Parameters
    ----------
    z : array (N, C)
        Logits, float32 or float64.
    y : array (N, C)
        Target distributions, y >= 0 (one-hot rows for hard labels).
    weights : array (N,) or broadcastable, optional
        Per-row weights; default 1 / N (the mean over rows).

    Returns
    -------
    loss : 0-d array of z's dtype
    cache : tuple
        ``(softmax(z), y, weights)``: the softmax *output*, not the logits.

    Raises
    ------
    ValueError
        If ``z`` is not 2-D, ``y``'s shape is not ``z``'s, ``z`` is empty, ``y``
        or ``weights`` holds negative values or NaN (concrete arrays only), or
        ``weights`` does not broadcast to (N,).
    TypeError
        If ``y`` is not numeric.

    Notes
    -----
    With m_n = max_c z_nc, every term is evaluated as y_nc ((m_n - z_nc) +
    log sum_c exp(z_nc - m_n)): exp sees only arguments <= 0 and the sum is
    in [1, C], so logits up to +-1e4 give finite, warning-free losses in
    float32 and float64, and the true label's term m_n - z_nc is exactly 0
    when it holds the maximum, with no cancellation of two large numbers.
    """
    z, y = _pair(xp, "z", z, y)
    if z.ndim != 2:
        raise ValueError(f"z must be (N, C) logits, got shape {tuple(z.shape)}")
    require_in_range(xp, "y", y, 0.0, None)
    w = _weights(xp, weights, (z.shape[0],), z.dtype, z.shape[0])
    m = z.max(axis=1, keepdims=True)
    e = xp.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    per_row = (y * ((m - z) + xp.log(s))).sum(axis=1)
    return (w * per_row).sum(), (e / s, y, w)


def softmax_cross_entropy_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of softmax cross-entropy: dL/dz_nc = w_n (softmax(z_n)_c s_n - y_nc).

    Parameters
    ----------
    dloss : float or 0-d array
        Upstream gradient of the loss (1.0 for the final cost).
    cache : tuple
        ``(softmax(z), y, weights)`` from :func:`softmax_cross_entropy_forward`:
        uses the cached *softmax output* (not the logits) and y.

    Returns
    -------
    dz : array (N, C) of z's dtype

    Notes
    -----
    s_n = sum_c y_nc is 1 for target distributions, so the gradient is the
    familiar w_n (softmax(z_n) - y_n); the general form keeps it exact for
    any y >= 0.
    """
    p, y, w = cache
    dloss = as_upstream(xp, "dloss", dloss, (), p.dtype)
    w = xp.reshape(w, (-1, 1)) if w.ndim == 1 else w
    return dloss * w * (p * y.sum(axis=1, keepdims=True) - y)


def mse_forward(xp: Any, yhat: Any, y: Any, weights: Any = None) -> tuple[Any, Any]:
    """Squared error L = sum_i w_i (yhat_i - y_i)^2; w_i = 1/N by default (the mean).

    Parameters
    ----------
    yhat : array, any shape
        Predictions.
    y : array, yhat's shape
        Targets.
    weights : array broadcastable to yhat's shape, optional
        Per-element weights; default 1 / yhat.size.

    Returns
    -------
    loss : 0-d array of yhat's dtype
    cache : tuple
        ``(yhat - y, weights)``: the residual, not ``yhat``.

    Raises
    ------
    ValueError
        If ``y``'s shape is not ``yhat``'s, ``yhat`` is empty, or ``weights``
        holds negative values or NaN (concrete arrays only) or does not
        broadcast to ``yhat``'s shape.
    TypeError
        If ``y`` is not numeric.
    """
    yhat, y = _pair(xp, "yhat", yhat, y)
    w = _weights(xp, weights, yhat.shape, yhat.dtype, yhat.size)
    r = yhat - y
    return (w * (r * r)).sum(), (r, w)


def mse_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of the squared error: dL/dyhat_i = 2 w_i (yhat_i - y_i), times ``dloss``.

    Parameters
    ----------
    dloss : float or 0-d array
        Upstream gradient of the loss (1.0 for the final cost).
    cache : tuple
        ``(yhat - y, weights)`` from :func:`mse_forward`: uses the cached residual.

    Returns
    -------
    dyhat : array of yhat's shape and dtype
    """
    r, w = cache
    dloss = as_upstream(xp, "dloss", dloss, (), r.dtype)
    return dloss * 2.0 * w * r


def l2_penalty_forward(xp: Any, w: Any, scale: Any) -> tuple[Any, Any]:
    """L2 weight penalty L = scale / 2 * sum(w^2).

    Parameters
    ----------
    w : array, any shape
        Weights, float32 or float64.
    scale : scalar >= 0
        The penalty's strength per example: scikit-learn's ``alpha / n``
        for a batch of n rows. Gets no gradient.

    Returns
    -------
    loss : 0-d array of w's dtype
    cache : tuple
        ``(w, scale)``, ``scale`` cast to w's dtype.

    Raises
    ------
    ValueError
        If ``scale`` is not a scalar, or is negative or NaN (concrete arrays only).
    """
    w = as_float_array(xp, "w", w)
    if isinstance(scale, (str, bytes)) or scale is None:  # asarray would parse "inf"
        raise TypeError(f"scale must be a real number >= 0, got {scale!r}")
    scale = xp.asarray(scale, dtype=w.dtype)
    if scale.ndim != 0:
        raise ValueError(f"scale must be a scalar, got shape {tuple(scale.shape)}")
    require_in_range(xp, "scale", scale, 0.0, None)
    return 0.5 * scale * (w * w).sum(), (w, scale)


def l2_penalty_backward(xp: Any, dloss: Any, cache: Any) -> Any:
    """Gradient of the L2 penalty: dL/dw = scale * w, times ``dloss``.

    Parameters
    ----------
    dloss : float or 0-d array
        Upstream gradient of the loss (1.0 for the final cost).
    cache : tuple
        ``(w, scale)`` from :func:`l2_penalty_forward`: uses the cached weights
        and scale.

    Returns
    -------
    dw : array of w's shape and dtype
    """
    w, scale = cache
    dloss = as_upstream(xp, "dloss", dloss, (), w.dtype)
    return dloss * scale * w


DECLARATIONS = (
    KernelSpec(
        "bce",
        "loss",
        bce_forward,
        bce_backward,
        ("p", "y"),
        1,
        prediction("p"),
        "-mean(y log p + (1-y) log(1-p)), p clipped to [tiny, 1 - eps/2] "
        "| dp = (p - y) / (p (1 - p)) / N",
        {"p": Domain("real", 1e-3, 1 - 1e-3), "y": TARGETS},
    ),
    KernelSpec(
        "bce_with_logits",
        "loss",
        bce_with_logits_forward,
        bce_with_logits_backward,
        ("z", "y"),
        1,
        prediction("z"),
        "mean(max(z, 0) - z y + log1p(e^-|z|)) | dz = (sigma(z) - y) / N",
        {"z": Domain("real", -100.0, 100.0), "y": TARGETS},
    ),
    KernelSpec(
        "softmax_cross_entropy",
        "loss",
        softmax_cross_entropy_forward,
        softmax_cross_entropy_backward,
        ("z", "y"),
        1,
        prediction("z"),
        "mean over rows of logsumexp(z) - y . z | dz = (softmax(z) - y) / N",
        {"z": Domain("real", -30.0, 30.0), "y": Domain("onehot")},
        extras=(softmax,),
    ),
    KernelSpec(
        "mse",
        "loss",
        mse_forward,
        mse_backward,
        ("yhat", "y"),
        1,
        prediction("yhat"),
        "mean((yhat - y)^2) | dyhat = 2 (yhat - y) / N",
    ),
    KernelSpec(
        "l2_penalty",
        "loss",
        l2_penalty_forward,
        l2_penalty_backward,
        ("w", "scale"),
        1,
        lambda n, d, m: {"w": (d, m), "scale": ()},
        "scale / 2 sum(w^2) | dw = scale w",
        {"scale": Domain("scale", 0.0, 2.0)},
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""


# --- output heads: an output activation fused with its loss ---------------------------
#
# Each head's in-place form is the fused kernel above written out for the
# NumPy fast path, with the mean's weights 1 / N (per element for the
# elementwise heads): loss on logits z (N, DL), d loss / dz into dz.


def _sigmoid_bce_inplace(z: np.ndarray, Y: np.ndarray, dz: np.ndarray) -> float:
    n, m = z.shape
    e = np.exp(-np.abs(z))  # as bce_with_logits_forward: exp never sees z > 0
    loss = float(np.sum(np.maximum(z, 0) - z * Y + np.log1p(e))) / (n * m)
    np.divide(np.maximum(e, z >= 0), 1.0 + e, out=dz)  # sigma(z), as _sigmoid
    dz -= Y
    dz *= 1.0 / (n * m)
    return loss


def _softmax_ce_inplace(z: np.ndarray, Y: np.ndarray, dz: np.ndarray) -> float:
    n = z.shape[0]
    top = z.max(axis=1, keepdims=True)  # as softmax_cross_entropy_forward
    np.subtract(z, top, out=dz)
    np.exp(dz, out=dz)
    total = dz.sum(axis=1, keepdims=True)
    loss = float(np.sum(Y * ((top - z) + np.log(total)))) / n
    dz /= total  # the kernel's p * sum_c y_c - y with sum_c y_c = 1: targets are one-hot rows
    dz -= Y
    dz *= 1.0 / n
    return loss


def _identity_mse_inplace(z: np.ndarray, Y: np.ndarray, dz: np.ndarray) -> float:
    n, m = z.shape
    np.subtract(z, Y, out=dz)
    loss = float(np.dot(dz.ravel(), dz.ravel())) / (n * m)
    dz *= 2.0 / (n * m)
    return loss


def _in_unit_interval(name: str, Y: np.ndarray) -> None:
    if Y.size and (Y.min() < 0 or Y.max() > 1):
        raise ValueError(
            f"{name} must hold values in [0, 1] for a sigmoid output with BCE, got values in "
            f"[{Y.min():g}, {Y.max():g}]"
        )


def _one_hot_rows(name: str, Y: np.ndarray) -> None:
    bad_rows = ~np.all((Y == 0) | (Y == 1), axis=1) | (Y.sum(axis=1) != 1)
    if np.any(bad_rows):
        bad = int(np.argmax(bad_rows))
        raise ValueError(
            f"{name} must be one-hot rows (one 1, the rest 0) for a softmax output; row "
            f"{bad} is {Y[bad].tolist()}"
        )


def _any_real(name: str, Y: np.ndarray) -> None:
    return None  # mse is defined for every finite target (the caller checks finiteness)


def _class_labels(name: str, y: np.ndarray, width: int, dtype: Any) -> np.ndarray:
    """Integer labels (N,) in [0, width) -> one-hot rows (N, width) of ``dtype``."""
    if y.dtype.kind not in "iu" and not (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    ):
        raise ValueError(
            f"{name} must hold integer class labels in [0, {width}) (or one-hot rows "
            f"(N, {width})), got dtype {y.dtype}"
        )
    if y.size and (y.min() < 0 or y.max() >= width):  # before the cast, which could wrap
        raise ValueError(
            f"{name} must hold class labels in [0, {width}) for a {width}-unit softmax "
            f"output, got labels in [{y.min()}, {y.max()}]"
        )
    return np.eye(width, dtype=dtype)[y.astype(np.int64)]


def _above(threshold: float) -> Any:
    """Every output on the right side of ``threshold`` (targets read as 0/1 at 1/2)."""
    return lambda xp, z, Y: xp.all((z > threshold) == (Y > 0.5), axis=1)


HEADS = (
    Head(
        "sigmoid",
        "bce",
        "bce_with_logits",
        predict=lambda xp, z: sigmoid_forward(xp, z)[0],
        correct=_above(0.0),  # sigma(z) > 1/2 exactly where z > 0
        check_targets=_in_unit_interval,
        inplace=_sigmoid_bce_inplace,
        outputs="independent",
    ),
    Head(
        "softmax",
        "cross_entropy",
        "softmax_cross_entropy",
        predict=softmax,
        correct=lambda xp, z, Y: xp.argmax(z, axis=1) == xp.argmax(Y, axis=1),
        check_targets=_one_hot_rows,
        labels=_class_labels,
        inplace=_softmax_ce_inplace,
        per_row=True,
        min_units=2,
        outputs="probabilities",
    ),
    Head(
        "identity",
        "mse",
        "mse",
        predict=lambda xp, z: z,
        correct=_above(0.5),  # 0/1 targets; for real-valued ones accuracy means nothing
        check_targets=_any_real,
        inplace=_identity_mse_inplace,
        outputs="values",
    ),
)
"""The output heads, each fused with its loss (see :class:`backprop.kernels.spec.Head`)."""
