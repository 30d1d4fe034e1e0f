"""The general layer-list derivation: one forward, one backward, for any dense stack.

A network is a list of dense layers ``sizes = [D0, D1, ..., DL]`` with one
activation per hidden layer and an output *head*: an output activation fused
with its loss, evaluated on the output layer's logits ``z``:

====================  ==================  =====================================
output                loss                kernel (d loss / dz)
====================  ==================  =====================================
``"sigmoid"``         ``"bce"``           ``bce_with_logits`` (sigma(z) - y)
``"softmax"``         ``"cross_entropy"`` ``softmax_cross_entropy`` (p - y)
``"identity"``        ``"mse"``           ``mse`` (2 (z - y))
====================  ==================  =====================================

each times the row's weight (1/N for the mean). The activations and heads
are read from their declarations (:mod:`backprop.kernels.registry`), so a
kernel registered with :func:`backprop.register_activation` works here like
the library's own. Parameters are a tuple of :class:`Layer` (``w``
(D_in, D_out), ``b`` (D_out,)), a JAX pytree.

:func:`loss_and_grads` is the derivation every network except the notes'
2-H-1 loop uses (that one is written out in :mod:`backprop.xor`): the forward
pass chains ``matmul``, ``add_bias`` and the activation kernels; the backward
pass chains their backward halves in reverse, layer by layer. It is written
once against a kernel backend ``K``, so NumPy and JAX run the same math.
Training (:mod:`backprop.train`) composes it with an optimizer
(:mod:`backprop.optim`); data-parallel training sums
:func:`data_loss_and_grads` over devices and adds :func:`l2_loss_and_grads`
once.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from backprop.kernels import Backend, registry
from backprop.kernels.spec import Head


class _Names(Sequence[str]):
    """A live, read-only list of names, read from the registry at each use."""

    def __init__(self, read: Any, what: str) -> None:
        self._read, self._what = read, what

    def __getitem__(self, i: Any) -> Any:
        return tuple(self._read())[i]

    def __len__(self) -> int:
        return len(tuple(self._read()))

    def __contains__(self, name: object) -> bool:
        return name in tuple(self._read())

    def __repr__(self) -> str:
        return f"{self._what}{tuple(self._read())!r}"


ACTIVATIONS = _Names(registry.activations, "activations")
"""Hidden activations: every registered activation kernel with a backward (a live view)."""

HEADS = registry.HEADS
"""Output heads by name (:class:`~backprop.kernels.spec.Head`), fused with their losses."""

INITS = ("uniform", "normal", "glorot")


class Layer(NamedTuple):
    """One dense layer: ``w`` (D_in, D_out), ``b`` (D_out,)."""

    w: Any
    b: Any


@dataclass(frozen=True)
class Net:
    """An architecture: layer widths, one activation per hidden layer, the output head.

    Build it with :func:`make_net`, which validates every name.
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    output: str

    @property
    def head(self) -> Head:
        """The output head's declaration."""
        return registry.head(self.output)

    @property
    def loss(self) -> str:
        """The loss the output head trains with ("bce", "cross_entropy" or "mse")."""
        return self.head.loss

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def __str__(self) -> str:
        acts = "/".join(self.activations) or "no hidden layer"
        return f"{'-'.join(map(str, self.sizes))} ({acts}; {self.output} output, {self.loss})"


def make_net(
    sizes: Sequence[int],
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    loss: str | None = None,
) -> Net:
    """Validate an architecture.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths [D0, ..., DL], at least an input and an output width.
    activation : str or sequence of str
        One hidden activation for every hidden layer, or one per hidden layer;
        each one of :data:`ACTIVATIONS`.
    output : str
        The output head, one of :data:`HEADS`.
    loss : str, optional
        The head's loss; given, it must be the head's (``"bce"`` for a sigmoid
        output, ``"cross_entropy"`` for softmax, ``"mse"`` for identity).

    Returns
    -------
    Net

    Raises
    ------
    ValueError
        Naming the argument, for widths that are not integers >= 1, an
        unknown activation or output (listing the valid ones), a wrong number
        of activations, or a loss that does not belong to the output.
    """
    from backprop._validate import check_sizes

    sizes = check_sizes(sizes)
    n_hidden = len(sizes) - 2
    if not isinstance(activation, (str, Sequence)) or isinstance(activation, bytes):
        raise ValueError(
            f"activation must be a name, or a sequence of names (one per hidden layer), "
            f"got {activation!r}"
        )
    if isinstance(activation, str):
        registry.activation(activation)  # raises listing the valid names, used or not
    acts = (activation,) * n_hidden if isinstance(activation, str) else tuple(activation)
    if len(acts) != n_hidden:
        raise ValueError(
            f"activation must name one activation, or one per hidden layer ({n_hidden} for "
            f"sizes {list(sizes)}), got {list(acts)}"
        )
    for a in acts:
        registry.activation(a)
    head = registry.head(output)
    if loss is not None and loss != head.loss:
        pairs = ", ".join(f"{o!r} with {h.loss!r}" for o, h in HEADS.items())
        raise ValueError(
            f"loss {loss!r} does not go with output {output!r}; the heads are: {pairs}"
        )
    if sizes[-1] < head.min_units:
        raise ValueError(
            f"a {output} output needs at least {head.min_units} units, got sizes {list(sizes)}"
        )
    return Net(sizes, acts, output)


def init_params(
    sizes: Sequence[int], *, seed: int = 0, dtype: Any = "float32", scheme: str = "uniform"
) -> tuple[Layer, ...]:
    """Initial parameters for ``sizes``, drawn with NumPy's ``default_rng(seed)``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths [D0, ..., DL].
    seed : int
        Same seed, same parameters, whatever the backend.
    dtype : "float32" or "float64"
    scheme : str
        ``"uniform"``: w and b from U(-1/sqrt(D_in), 1/sqrt(D_in)), PyTorch's
        ``nn.Linear`` default, which the notes used. ``"normal"``: w from
        N(0, 1), b = 0, as in the manual XOR loop. ``"glorot"``: w and b from
        U(-r, r), r = sqrt(6 / (D_in + D_out)), scikit-learn's choice for
        every activation but the logistic.

    Returns
    -------
    tuple of Layer
        One (w (D_in, D_out), b (D_out,)) per layer.
    """
    from backprop._validate import check_dtype, check_fits, check_seed, check_sizes

    sizes = check_sizes(sizes)
    dt = check_dtype(dtype)
    if not isinstance(scheme, str) or scheme not in INITS:
        raise ValueError(f"scheme must be one of {', '.join(INITS)}, got {scheme!r}")
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    check_fits(f"parameters for sizes {list(sizes)}", n_params * (8 + dt.itemsize))
    rng = np.random.default_rng(check_seed(seed))
    layers = []
    for d_in, d_out in itertools.pairwise(sizes):
        if scheme == "normal":
            w, b = rng.standard_normal((d_in, d_out)), np.zeros(d_out)
        else:
            r = 1.0 / np.sqrt(d_in) if scheme == "uniform" else np.sqrt(6.0 / (d_in + d_out))
            w, b = rng.uniform(-r, r, (d_in, d_out)), rng.uniform(-r, r, d_out)
        layers.append(Layer(w.astype(dt), b.astype(dt)))
    return tuple(layers)


def _activation(K: Backend, name: str) -> tuple[Any, Any]:
    return K.pair(name)


def forward(K: Backend, params: Sequence[Layer], X: Any, net: Net) -> tuple[Any, list[Any]]:
    """The forward pass up to the output logits.

    Parameters
    ----------
    K : Backend
        Kernels of "numpy" or "jax".
    params : sequence of Layer
    X : array (N, D0)
    net : Net

    Returns
    -------
    z : array (N, DL)
        The output layer's pre-activation (logits); :func:`predict` applies
        the output activation.
    caches : list
        Per layer, the caches of its matmul, bias and (hidden) activation.
    """
    caches = []
    h = X
    last = len(params) - 1
    for i, (w, b) in enumerate(params):
        z, c_mm = K.matmul_forward(h, w)
        z, c_b = K.add_bias_forward(z, b)
        c_act = None
        if i < last:
            h, c_act = _activation(K, net.activations[i])[0](z)
        caches.append((c_mm, c_b, c_act))
    return z, caches


def head_output(K: Backend, z: Any, net: Net) -> Any:
    """The output activation applied to logits z (N, DL): probabilities, or z itself."""
    return net.head.predict(K.xp, z)


def data_loss_and_grads(
    K: Backend, params: Sequence[Layer], X: Any, Y: Any, net: Net, weights: Any = None
) -> tuple[Any, Any, tuple[Layer, ...]]:
    """The data term of the loss and its gradient with respect to every parameter.

    Parameters
    ----------
    K : Backend
    params : sequence of Layer
    X : array (N, D0)
    Y : array (N, DL)
        Targets: 0/1 (or in [0, 1]) for a sigmoid output, one-hot rows for
        softmax, real values for identity.
    net : Net
    weights : array (N, 1) for sigmoid and identity, (N,) for softmax, optional
        Per-row weights of the summed loss; default the mean over rows (and
        over outputs). Padding rows take weight 0.

    Returns
    -------
    loss : 0-d array
    z : array (N, DL), the output logits
    grads : tuple of Layer shaped like ``params``

    Notes
    -----
    Backward, from the top: the head's fused kernel gives d loss / dz
    directly; per layer, ``add_bias_backward`` gives db (the sum over rows)
    and ``matmul_backward`` gives dw = h.T @ dz and dh = dz @ w.T for the layer
    below, whose activation's backward turns dh into its dz. The input layer
    needs no dX, so ``matmul_backward_weights`` skips that product.
    """
    z, caches = forward(K, params, X, net)
    loss_forward, loss_backward = K.pair(net.head.kernel)
    loss, c_loss = loss_forward(z, Y, weights)
    dz = loss_backward(1.0, c_loss)
    grads: list[Layer] = []
    for i in reversed(range(len(params))):
        c_mm, c_b, _ = caches[i]
        dz, db = K.add_bias_backward(dz, c_b)
        if i == 0:
            grads.append(Layer(K.matmul_backward_weights(dz, c_mm), db))
            break
        dh, dw = K.matmul_backward(dz, c_mm)
        grads.append(Layer(dw, db))
        dz = _activation(K, net.activations[i - 1])[1](dh, caches[i - 1][2])
    return loss, z, tuple(reversed(grads))


def l2_loss_and_grads(
    K: Backend, params: Sequence[Layer], scale: Any
) -> tuple[Any, tuple[Any, ...]]:
    """The L2 penalty ``scale / 2 * sum of every w^2`` (biases are not penalised).

    ``scale`` is alpha / (rows in the batch), as in scikit-learn. Returns the
    penalty and one dw = scale * w per layer.
    """
    total, dws = 0.0, []
    for layer in params:
        value, cache = K.l2_penalty_forward(layer.w, scale)
        total = total + value
        dws.append(K.l2_penalty_backward(1.0, cache))
    return total, tuple(dws)


def loss_and_grads(
    K: Backend,
    params: Sequence[Layer],
    X: Any,
    Y: Any,
    net: Net,
    *,
    weights: Any = None,
    l2: Any = 0.0,
) -> tuple[Any, Any, tuple[Layer, ...]]:
    """Loss (data term plus L2 penalty) and gradients: the derivation of every network.

    Parameters are those of :func:`data_loss_and_grads`, plus ``l2``, the
    penalty's scale alpha / N (0: no penalty, and no penalty kernels run).

    Returns
    -------
    loss : 0-d array
    z : array (N, DL), the output logits
    grads : tuple of Layer shaped like ``params``
    """
    loss, z, grads = data_loss_and_grads(K, params, X, Y, net, weights)
    if isinstance(l2, (int, float)) and l2 == 0:
        return loss, z, grads
    penalty, dws = l2_loss_and_grads(K, params, l2)
    return loss + penalty, z, add_weight_grads(grads, dws)


def add_weight_grads(grads: Sequence[Layer], dws: Sequence[Any]) -> tuple[Layer, ...]:
    """Each layer's dw plus the matching entry of ``dws`` (a penalty's gradient)."""
    return tuple(Layer(g.w + dw, g.b) for g, dw in zip(grads, dws, strict=True))


def correct(xp: Any, z: Any, Y: Any, net: Net) -> Any:
    """Per row, 1.0 where the prediction from logits z (N, DL) matches Y, else 0.0.

    The head's rule: softmax, the arg-max class; sigmoid, every output on
    the right side of 1/2 (z > 0); identity, every output on the right side
    of 1/2 (0/1 targets; for real-valued targets accuracy means nothing).
    """
    return net.head.correct(xp, z, Y).astype(z.dtype)


def predict(params: Sequence[Layer], X: Any, net: Net, backend: str = "numpy") -> np.ndarray:
    """The network's output for X (N, D0): probabilities for a sigmoid or softmax head.

    Returns a NumPy array (N, DL). ``ValueError`` when ``params`` do not
    have the shapes ``net.sizes`` gives (describing both).
    """
    from backprop._validate import check_backend
    from backprop.kernels import get_backend

    K = get_backend(check_backend(backend))
    check_params_match(params, net)
    z, _ = forward(K, params, X, net)
    return np.asarray(head_output(K, z, net))


def check_params_match(params: Sequence[Layer], net: Net) -> None:
    """``ValueError`` describing both unless ``params`` has the layer shapes of ``net``."""
    try:
        shapes = [(tuple(np.shape(w)), tuple(np.shape(b))) for w, b in params]
    except (TypeError, ValueError):
        raise ValueError(
            f"params must be a sequence of (w, b) layers, got {type(params).__name__}"
        ) from None
    want = [((a, b), (b,)) for a, b in itertools.pairwise(net.sizes)]
    if shapes != want:
        got = ", ".join(f"w{s[0]} b{s[1]}" for s in shapes)
        raise ValueError(
            f"params ({got}) do not fit the net {net}, which needs "
            + ", ".join(f"w{s[0]} b{s[1]}" for s in want)
        )
