"""The study notes' experiments, each a function that prints what the notes
printed and a one-line conclusion, and returns its numbers.

Every function takes ``backend``, ``seed``, ``dtype``, ``verbose`` (print the
training history too) and, where it trains,
``lr`` and ``epochs`` (defaults: the notes' settings), ``init`` (explicit
starting parameters, e.g. from :func:`backprop.io.load_params`), ``progress``
(see :func:`backprop.train_mlp`) and an ``out`` callable used for printing
(``print`` by default; pass ``lambda *a: None`` to silence).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backprop.data import truth_table, xor_blobs
from backprop.kernels import get_backend
from backprop.model import load_model
from backprop.model import save as save_model
from backprop.nets import Net, init_params, loss_and_grads, make_net, predict
from backprop.perceptron import PerceptronResult, perceptron_rule
from backprop.train import MLPResult, train_mlp

LN2 = math.log(2)
# Layer sizes of the networks the experiments train (what --load must match).
SIZES = {
    "single-layer": [2, 1],
    "deep": [2, 64, 32, 16, 1],
    "linear-mse": [2, 1],
    "blobs": [2, 5, 1],
}
Printer = Callable[..., Any]


def experiment_net(name: str, activation: str = "sigmoid") -> Net:
    """The network experiment ``name`` trains (``activation``: deep's hidden activation)."""
    if name not in SIZES:
        raise ValueError(f"name must be one of {', '.join(SIZES)}, got {name!r}")
    if name == "deep":
        return make_net(SIZES[name], activation, "sigmoid")
    if name == "blobs":
        return make_net(SIZES[name], "relu", "sigmoid")
    return make_net(SIZES[name], output="identity" if name == "linear-mse" else "sigmoid")


def _history(out: Printer, r: MLPResult, every: int, verbose: bool) -> None:
    if not verbose:
        return
    for e in range(0, len(r.losses), every):
        out(f"epoch {e:>6}  loss {r.losses[e]:.6f}  accuracy {r.accuracies[e]:.0%}")


def _final(out: Printer, r: MLPResult, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = predict(r.params, X, r.net)
    loss = _loss(r, X, y)
    for x_row, t, q in zip(X.astype(int), y[:, 0], p[:, 0], strict=True):
        out(f"  {tuple(int(v) for v in x_row)} -> {q:.4f}  (target {int(t)})")
    acc = float(np.mean((p > 0.5) == (y > 0.5)))
    out(f"final loss {loss:.6f}, accuracy {acc:.0%}")
    return p


def _loss(r: MLPResult, X: np.ndarray, y: np.ndarray) -> float:
    dt = r.params[0].w.dtype
    return float(
        loss_and_grads(get_backend("numpy"), r.params, X.astype(dt), y.astype(dt), r.net)[0]
    )


def single_layer(
    gate: str = "and",
    *,
    backend: str = "numpy",
    seed: int = 0,
    lr: float = 1.0,
    epochs: int = 1000,
    dtype: str = "float32",
    init: Any = None,
    progress: Any = None,
    out: Printer = print,
    verbose: bool = False,
) -> MLPResult:
    """Experiments 1 and 2: one linear unit + sigmoid, mean BCE, SGD, on a truth table.

    AND and OR converge (100 %, loss ~0.01-0.02 by epoch 1000); XOR settles at
    ln 2 = 0.6931 because no line separates it.
    """
    X, y = truth_table(gate, dtype)
    r = train_mlp(
        SIZES["single-layer"],
        X,
        y,
        lr=lr,
        epochs=epochs,
        seed=seed,
        backend=backend,
        dtype=dtype,
        init=init,
        progress=progress,
    )
    out(f"== single sigmoid unit on {gate.upper()}, lr {lr}, {epochs} epochs ({backend}) ==")
    _history(out, r, max(1, epochs // 10), verbose)
    _final(out, r, X, y)
    final = _loss(r, X, y)
    if gate == "xor":
        out(
            f"conclusion: the loss settles at {final:.4f} ~ ln 2 = {LN2:.4f}: the best a single "
            "line can do on XOR is output 1/2 everywhere - no line separates XOR "
            "(Minsky and Papert, 1969)."
        )
    else:
        out(
            f"conclusion: {gate.upper()} is linearly separable, so one unit learns it "
            f"(loss {final:.4f})."
        )
    return r


def deep_stack(
    *,
    activation: str = "sigmoid",
    backend: str = "numpy",
    seed: int = 0,
    lr: float = 1.0,
    epochs: int = 5000,
    dtype: str = "float32",
    init: Any = None,
    progress: Any = None,
    out: Printer = print,
    verbose: bool = False,
) -> MLPResult:
    """Experiment 5: a 2-64-32-16-1 stack on XOR; per-layer gradient norms show why
    sigmoid stacks sit on the ln 2 plateau (vanishing gradients) and ReLU ones do not.
    """
    X, y = truth_table("xor", dtype)
    sizes = SIZES["deep"]
    r = train_mlp(
        sizes,
        X,
        y,
        activation=activation,
        lr=lr,
        epochs=epochs,
        seed=seed,
        backend=backend,
        dtype=dtype,
        init=init,
        progress=progress,
    )
    hidden = activation
    out(f"== deep {hidden} stack {'-'.join(map(str, sizes))} on XOR, lr {lr}, {epochs} epochs ==")
    every = max(1, epochs // 10)
    for e in range(0, epochs, every) if verbose else ():
        norms = "  ".join(f"{v:.1e}" for v in r.grad_norms[e])
        out(f"epoch {e:>6}  loss {r.losses[e]:.6f}  |dW| per layer (input first): {norms}")
    _final(out, r, X, y)
    plateau = int(np.argmax(r.losses < LN2 - 0.01)) if np.any(r.losses < LN2 - 0.01) else epochs
    out(
        f"conclusion: the loss stayed within 0.01 of ln 2 for {plateau} epochs; at the start "
        f"{gradient_shape(r.grad_norms[0, 0], r.grad_norms[0, -1])}."
    )
    return r


def gradient_shape(first: float, last: float) -> str:
    """What the first layer's gradient norm ``first`` says against the last layer's ``last``,
    in words read from the two numbers (not from the activation's name)."""
    ratio = last / first if first > 0 else np.inf
    if ratio >= 10:
        return (
            f"the first layer's gradient was {ratio:.0f}x smaller than the last layer's: it "
            "vanished on its way down the stack"
        )
    if ratio <= 0.1:
        return (
            f"the first layer's gradient was {1 / ratio:.0f}x larger than the last layer's: it "
            "grew on its way down the stack"
        )
    return (
        f"the first layer's gradient was within a factor of 10 of the last layer's "
        f"({first:.1e} against {last:.1e}): it did not vanish on its way down the stack"
    )


def perceptron(
    gate: str = "and",
    *,
    w0: Any = (0.3, 0.4, 0.1),
    lr: float = 0.05,
    epochs: int = 100,
    exact: bool = False,
    out: Printer = print,
    verbose: bool = False,
) -> PerceptronResult:
    """Experiment 6: Rosenblatt's rule with a step unit and a -1 bias input.

    ``exact=True`` runs the rule in exact decimal arithmetic, as the notes
    computed it by hand. Prints the first 10 passes, or every pass with
    ``verbose``. It trains no network: ``backend``, ``seed``, ``dtype``,
    files and plots do not apply.
    """
    X, y = truth_table(gate, "float64")
    r = perceptron_rule(X, y, w0=w0, lr=lr, epochs=epochs, exact=exact)
    arithmetic = "exact decimals" if exact else "float64"
    out(
        f"== perceptron rule on {gate.upper()}, w0 (bias, w1, w2) = {tuple(w0)}, lr {lr}, "
        f"{arithmetic} =="
    )
    for p, (w, m) in enumerate(zip(r.history[1:], r.mistakes, strict=True), start=1):
        out(f"pass {p:>3}: {_mistakes(m)}, weights {np.round(w, 4).tolist()}")
        if p >= 10 and not verbose and p < r.passes:
            out(f"... ({r.passes - p} more passes)")
            break
    out(f"outputs {r.predict(X).astype(int).tolist()}, targets {y[:, 0].astype(int).tolist()}")
    out(f"conclusion: {r.reason}.")
    if not exact and r.converged and r.rounding_note:
        out(r.rounding_note)
    return r


def _mistakes(n: int) -> str:
    return f"{n} mistake" if n == 1 else f"{n} mistakes"


def linear_mse(
    gate: str = "and",
    *,
    backend: str = "numpy",
    seed: int = 0,
    lr: float = 0.5,
    epochs: int = 500,
    dtype: str = "float32",
    init: Any = None,
    progress: Any = None,
    out: Printer = print,
    verbose: bool = False,
) -> MLPResult:
    """Experiment 7: one linear unit, mean squared error, SGD; rounded outputs give the table.

    The default lr 0.5 is this library's choice for full-batch descent on four
    rows (the notes' Keras run used SGD's 0.01 with one row per step).
    """
    X, y = truth_table(gate, dtype)
    r = train_mlp(
        SIZES["linear-mse"],
        X,
        y,
        output="identity",
        lr=lr,
        epochs=epochs,
        seed=seed,
        backend=backend,
        dtype=dtype,
        init=init,
        progress=progress,
    )
    out(f"== linear unit with MSE on {gate.upper()}, lr {lr}, {epochs} epochs ==")
    _history(out, r, max(1, epochs // 10), verbose)
    p = predict(r.params, X, r.net)[:, 0]
    rounded = np.round(p).astype(int)
    out(
        f"outputs {np.round(p, 3).tolist()} -> rounded {rounded.tolist()}, "
        f"targets {y[:, 0].astype(int).tolist()}"
    )
    same = bool(np.all(rounded == y[:, 0]))
    verb = "reproduces" if same else "does NOT reproduce"
    out(f"conclusion: rounding the least-squares line {verb} the {gate.upper()} truth table.")
    return r


def blobs(
    *,
    backend: str = "numpy",
    seed: int = 0,
    lr: float = 0.03,
    epochs: int = 2000,
    dtype: str = "float32",
    save: str | None = None,
    init: Any = None,
    progress: Any = None,
    out: Printer = print,
    verbose: bool = False,
) -> dict[str, Any]:
    """Experiment 9: four Gaussian blobs, a 2-5-1 ReLU/sigmoid net, BCE, SGD.

    Prints the test loss before and after training, saves the model
    (``save`` or a temporary file; a model file, see :func:`backprop.save`),
    loads it into a fresh model and predicts the probability that (-1, 1)
    has label 1.
    """
    import tempfile

    Xtr, ytr, Xte, yte = xor_blobs(seed=seed, dtype=dtype)
    sizes = SIZES["blobs"]
    net = make_net(sizes, "relu", "sigmoid")
    K = get_backend("numpy")
    # what train_mlp starts from
    start = init_params(sizes, seed=seed, dtype=dtype) if init is None else init
    before = float(loss_and_grads(K, start, Xte, yte, net)[0])
    r = train_mlp(
        sizes,
        Xtr,
        ytr,
        activation="relu",
        lr=lr,
        epochs=epochs,
        seed=seed,
        backend=backend,
        dtype=dtype,
        init=init,
        progress=progress,
    )
    after = float(loss_and_grads(K, r.params, Xte, yte, net)[0])
    out(f"== four blobs, 2-5-1 ReLU/sigmoid, lr {lr}, {epochs} epochs ({backend}) ==")
    _history(out, r, max(1, epochs // 10), verbose)
    out(f"test loss before training {before:.4f}, after {after:.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(save) if save else Path(tmp) / "blobs.npz"
        save_model(r, path, classes=[0, 1], training={"lr": lr, "epochs": epochs, "seed": seed})
        loaded = load_model(path)
        out(f"saved to {path if save else 'a temporary file'}, loaded into a fresh model")
    point = np.array([[-1.0, 1.0]], dtype=r.params[0].w.dtype)
    prob = float(loaded.predict_proba(point)[0, 1])
    same = bool(np.array_equal(loaded.output(Xte), predict(r.params, Xte, net)))
    out(f"P(label 1 | (-1, 1)) = {prob:.4f}; the loaded model predicts as the trained one: {same}")
    out("conclusion: a small ReLU network separates the XOR-like blobs that no line can.")
    return {
        "result": r,
        "test_loss_before": before,
        "test_loss_after": after,
        "p_minus1_1": prob,
        "identical_after_load": same,
    }
