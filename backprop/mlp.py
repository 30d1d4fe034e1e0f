"""A general multi-layer perceptron built from the same hand-derived kernels.

Any stack of dense layers ``sizes = [D0, D1, ..., DL]``, one activation per
hidden layer ("sigmoid", "relu", "identity"), an output activation
("sigmoid" or "identity") and a loss ("bce" or "mse"), trained by plain
full-batch gradient descent on NumPy or JAX. Parameters are a tuple of
:class:`Layer` (``w`` (D_in, D_out), ``b`` (D_out,)), a JAX pytree.

A sigmoid output under BCE is evaluated by the fused kernel
``bce_with_logits`` (its gradient is (sigma(z) - y) / N): the same loss
as sigmoid followed by BCE on probabilities, minus the clipping, and
finite for any logit. Every other combination chains the separate kernels.

:func:`mlp_step` is the reference and what JAX compiles; :func:`train_mlp`
on NumPy runs the same derivation in place (:mod:`backprop.mlp_fused`,
tested against it).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from backprop._jaxrun import compile_and_run
from backprop._validate import check_backend, check_lr, check_positive_int, first_nonfinite
from backprop.data import check_dtype
from kernels import Backend, get_backend

HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "identity")
OUTPUT_ACTIVATIONS = ("sigmoid", "identity")
LOSSES = ("bce", "mse")
INITS = ("uniform", "normal")


class Layer(NamedTuple):
    """One dense layer: ``w`` (D_in, D_out), ``b`` (D_out,)."""

    w: Any
    b: Any


@dataclass(frozen=True)
class MLPConfig:
    """The architecture: activations per hidden layer, output activation, loss."""

    hidden: tuple[str, ...]
    output: str
    loss: str

    @property
    def fused(self) -> bool:
        """Whether the output sigmoid and BCE run as one ``bce_with_logits`` kernel."""
        return self.output == "sigmoid" and self.loss == "bce"


def make_config(
    sizes: Sequence[int], hidden: str | Sequence[str], output: str, loss: str
) -> MLPConfig:
    """Validate an architecture; ``hidden`` is one name for all hidden layers or one per layer."""
    if not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes!r}")
    for s in sizes:
        check_positive_int("each entry of sizes", s)
    n_hidden = len(sizes) - 2
    acts = (hidden,) * n_hidden if isinstance(hidden, str) else tuple(hidden)
    if len(acts) != n_hidden:
        raise ValueError(
            f"hidden must name one activation per hidden layer ({n_hidden} for sizes "
            f"{list(sizes)}), got {list(acts)}"
        )
    for a in acts:
        if a not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"hidden activation must be one of {HIDDEN_ACTIVATIONS}, got {a!r}")
    if output not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output must be one of {OUTPUT_ACTIVATIONS}, got {output!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss == "bce" and output != "sigmoid":
        raise ValueError("loss 'bce' needs output='sigmoid' (BCE is defined on probabilities)")
    return MLPConfig(acts, output, loss)


def init_mlp(
    sizes: Sequence[int], *, seed: int = 0, dtype: object = "float32", scheme: str = "uniform"
) -> tuple[Layer, ...]:
    """Initial parameters for ``sizes`` drawn with NumPy's ``default_rng(seed)``.

    ``scheme="uniform"``: w and b from U(-1/sqrt(D_in), 1/sqrt(D_in)), the
    default of the frameworks the notes used (PyTorch's ``nn.Linear``).
    ``scheme="normal"``: w from N(0, 1), b = 0 (as in the manual XOR loop).
    """
    dt = check_dtype(dtype)
    if scheme not in INITS:
        raise ValueError(f"scheme must be one of {INITS}, got {scheme!r}")
    rng = np.random.default_rng(seed)
    layers = []
    for d_in, d_out in itertools.pairwise(sizes):
        if scheme == "uniform":
            bound = 1.0 / np.sqrt(d_in)
            w = rng.uniform(-bound, bound, (d_in, d_out))
            b = rng.uniform(-bound, bound, d_out)
        else:
            w, b = rng.standard_normal((d_in, d_out)), np.zeros(d_out)
        layers.append(Layer(w.astype(dt), b.astype(dt)))
    return tuple(layers)


_ACT = {
    "sigmoid": ("sigmoid_forward", "sigmoid_backward"),
    "relu": ("relu_forward", "relu_backward"),
    "identity": ("identity_forward", "identity_backward"),
}
_LOSS = {
    "bce": ("bce_forward", "bce_backward"),
    "mse": ("mse_forward", "mse_backward"),
}


def mlp_forward(K: Backend, params: Sequence[Layer], X: Any, config: MLPConfig) -> tuple[Any, list]:
    """Forward pass. X: (N, D0) -> output (N, DL) after the output activation.

    Returns ``(out, caches)``; with a fused output the cache of the last layer
    holds its logits, and ``out`` is still the sigmoid of them.
    """
    caches = []
    h = X
    n = len(params)
    for i, (w, b) in enumerate(params):
        z, c_mm = K.matmul_forward(h, w)
        z, c_b = K.add_bias_forward(z, b)
        act = config.hidden[i] if i < n - 1 else config.output
        if i == n - 1 and config.fused:
            h, c_act = K.sigmoid_forward(z)[0], z
        else:
            h, c_act = getattr(K, _ACT[act][0])(z)
        caches.append((c_mm, c_b, c_act))
    return h, caches


def mlp_loss_and_grads(
    K: Backend, params: Sequence[Layer], X: Any, y: Any, config: MLPConfig
) -> tuple[Any, Any, tuple[Layer, ...]]:
    """Loss, output and gradients. X: (N, D0); y: (N, DL).

    Returns ``(loss, out, grads)`` with ``grads`` a tuple of :class:`Layer`
    shaped like ``params``. Backward, layer by layer from the top: the loss
    gives d out (or, fused, d logits = (sigma(z) - y) / N), each activation's
    backward gives dz, ``add_bias_backward`` gives db = sum over rows,
    ``matmul_backward`` gives dw = h.T @ dz and dh = dz @ w.T for the layer
    below (not computed for the input layer, which needs none).
    """
    out, caches = mlp_forward(K, params, X, config)
    n = len(params)
    if config.fused:
        loss, c_loss = K.bce_with_logits_forward(caches[-1][2], y)
        dz = K.bce_with_logits_backward(1.0, c_loss)
    else:
        fwd, bwd = _LOSS[config.loss]
        loss, c_loss = getattr(K, fwd)(out, y)
        dh = getattr(K, bwd)(1.0, c_loss)
    grads: list[Layer] = []
    for i in reversed(range(n)):
        c_mm, c_b, c_act = caches[i]
        if not (i == n - 1 and config.fused):
            act = config.hidden[i] if i < n - 1 else config.output
            dz = getattr(K, _ACT[act][1])(dh, c_act)
        dz_lin, db = K.add_bias_backward(dz, c_b)
        if i > 0:
            dh, dw = K.matmul_backward(dz_lin, c_mm)
        else:  # the data X needs no gradient: skip the dx = dz @ w.T product
            dw = K.matmul_backward_weights(dz_lin, c_mm)
        grads.append(Layer(dw, db))
    return loss, out, tuple(reversed(grads))


def mlp_step(
    K: Backend, params: Sequence[Layer], X: Any, y: Any, lr: Any, config: MLPConfig
) -> tuple[tuple[Layer, ...], Any, Any, tuple[Layer, ...]]:
    """One gradient-descent step: ``w = w - lr * dw``, ``b = b - lr * db`` per layer.

    Returns ``(new_params, loss, out, grads)``: loss, output and gradients at
    the parameters before the step.
    """
    loss, out, grads = mlp_loss_and_grads(K, params, X, y, config)
    new = tuple(Layer(w - lr * g.w, b - lr * g.b) for (w, b), g in zip(params, grads, strict=True))
    return new, loss, out, grads


def grad_norms(grads: Sequence[Layer], xp: Any) -> tuple[Any, ...]:
    """||dw|| (Frobenius norm) of each layer's weight gradient."""
    return tuple(xp.sqrt(xp.sum(g.w * g.w)) for g in grads)


def accuracy(out: Any, y: Any, xp: Any) -> Any:
    """Fraction of rows whose every output rounds to its target (0.5 threshold)."""
    return xp.mean(xp.all((out > 0.5) == (y > 0.5), axis=1))


@dataclass(frozen=True)
class MLPResult:
    """History of :func:`train_mlp`; arrays are NumPy, one row per epoch.

    ``losses`` (epochs,) and ``accuracies`` (epochs,) are measured at the
    parameters *before* each epoch's update; ``grad_norms`` (epochs, L) holds
    ||dw|| per layer. ``params`` are the final parameters.
    """

    params: tuple[Layer, ...]
    config: MLPConfig
    losses: np.ndarray
    accuracies: np.ndarray
    grad_norms: np.ndarray
    backend: str
    train_time: float
    compile_time: float


def train_mlp(
    sizes: Sequence[int],
    X: Any,
    y: Any,
    *,
    hidden: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    loss: str = "bce",
    lr: float = 1.0,
    epochs: int = 1000,
    seed: int = 0,
    init: Sequence[Any] | None = None,
    init_scheme: str = "uniform",
    backend: str = "numpy",
    dtype: str = "float32",
    progress: Callable[[int, float], None] | None = None,
) -> MLPResult:
    """Train an MLP by full-batch gradient descent with hand-derived gradients.

    sizes: layer widths, e.g. ``[2, 64, 32, 16, 1]``; X: (N, sizes[0]);
    y: (N, sizes[-1]). ``init``: explicit parameters, a sequence of
    ``(w, b)`` pairs with w (D_in, D_out), b (D_out,), to replay a run
    exactly; otherwise :func:`init_mlp` with ``seed`` and ``init_scheme``.
    On JAX the epochs run as one compiled ``lax.scan``.

    ``progress(epochs_done, loss)``, if given, is called after every epoch
    on NumPy, and once at the end on JAX (the compiled loop does not come
    back to Python in between).

    Raises ``ValueError`` for bad sizes, activations, loss, lr, epochs,
    dtype, backend, data or init shapes, and ``FloatingPointError`` naming
    the epoch if the loss becomes NaN or infinite.
    """
    check_backend(backend)
    config = make_config(sizes, hidden, output, loss)
    epochs = check_positive_int("epochs", epochs)
    dt = check_dtype(dtype)
    lr = check_lr(lr, dt)
    X = _check_data("X", X, sizes[0], dt)
    y = _check_data("y", y, sizes[-1], dt)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    params = (
        init_mlp(sizes, seed=seed, dtype=dt, scheme=init_scheme)
        if init is None
        else (check_params(init, sizes, dt))
    )

    if backend == "numpy":
        from backprop.mlp_fused import FusedStep  # imports this module

        # mlp_step's derivation, in place in reused buffers (backprop.mlp_fused)
        step = FusedStep(sizes, config, X.shape[0], dt)
        n = epochs
        losses = np.empty(n, dt)
        accs = np.empty(n, dt)
        norms = np.empty((n, len(params)), dt)
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for e in range(n):
                params, losses[e], out, grads = step(params, X, y, lr)
                norms[e] = grad_norms(grads, np)
                accs[e] = accuracy(out, y, np)
                if progress is not None:
                    progress(e + 1, float(losses[e]))
                if not np.isfinite(losses[e]):
                    break
        train_time, compile_time = time.perf_counter() - t0, 0.0
    else:
        get_backend("jax")
        args = (params, X, y, np.asarray(lr, dt))
        out, train_time, compile_time = compile_and_run(
            _jax_train, args, {"epochs": epochs, "config": config}, x64=dt == np.float64
        )
        params = tuple(Layer(*layer) for layer in out[0])
        losses, accs, norms = out[1], out[2], np.stack(out[3], axis=1)
        if progress is not None:
            progress(epochs, float(losses[-1]))

    k = first_nonfinite(losses)
    if k is not None:
        raise FloatingPointError(
            f"loss became {losses[k]} at epoch {k} (lr={lr}); training diverged - try a smaller lr"
        )
    return MLPResult(params, config, losses, accs, norms, backend, train_time, compile_time)


def _jax_train(params: Any, X: Any, y: Any, lr: Any, epochs: int, config: MLPConfig) -> Any:
    import jax.numpy as jnp
    from jax import lax

    K = get_backend("jax")

    def body(p: Any, _: None) -> tuple[Any, Any]:
        p, loss, out, grads = mlp_step(K, p, X, y, lr, config)
        return p, (loss, accuracy(out, y, jnp), grad_norms(grads, jnp))

    params, (losses, accs, norms) = lax.scan(body, params, None, length=epochs)
    return params, losses, accs, norms


def predict(
    params: Sequence[Layer], X: Any, config: MLPConfig, backend: str = "numpy"
) -> np.ndarray:
    """The network's output for X (N, D0): probabilities for a sigmoid output."""
    K = get_backend(check_backend(backend))
    out, _ = mlp_forward(K, params, X, config)
    return np.asarray(out)


def check_params(init: Sequence[Any], sizes: Sequence[int], dt: np.dtype) -> tuple[Layer, ...]:
    """Validate explicit parameters against ``sizes``; return dtype copies."""
    if not isinstance(init, Sequence) or len(init) != len(sizes) - 1:
        raise ValueError(
            f"init must be a sequence of {len(sizes) - 1} (w, b) pairs for sizes {list(sizes)}"
        )
    layers = []
    for i, (layer, d_in, d_out) in enumerate(zip(init, sizes[:-1], sizes[1:], strict=True)):
        if len(layer) != 2:
            raise ValueError(f"init[{i}] must be a (w, b) pair")
        w, b = np.asarray(layer[0]), np.asarray(layer[1])
        for name, a, shape in ((f"init[{i}].w", w, (d_in, d_out)), (f"init[{i}].b", b, (d_out,))):
            if a.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
            if a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must hold finite real numbers")
        layers.append(Layer(w.astype(dt), b.astype(dt)))
    return tuple(layers)


def _check_data(name: str, a: Any, width: int, dt: np.dtype) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != width or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, {width}) with N >= 1, got {a.shape}")
    if a.dtype.kind not in "fiub" or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must hold finite real numbers")
    return a.astype(dt)
