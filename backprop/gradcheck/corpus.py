"""A planted-bug corpus: correct and wrong gradients the checker must tell apart.

:func:`corpus` yields :class:`Case` objects, deterministically from a seed,
in pairs built on the same function: the correct gradient and one with a
bug planted. Families:

- ``network``: random dense networks chained from the library's own NumPy
  kernels (matmul, add_bias, sigmoid / tanh / relu, then MSE, BCE with
  logits or softmax cross-entropy), the loss in float64 or float32, plus a
  constant offset of 0 to 1e9 (up to 1e3 for float32, whose spacing at 1e6
  is already 0.06). Bugs: a parameter's gradient scaled by 0.9,
  1.1, 0.5, 2, -1 or 0, sigma' skipped on a hidden layer, a square weight's
  gradient transposed, a sum where a mean belongs (all gradients x N), one
  entry zeroed, sign-flipped or scaled.
- ``kink``: points where the loss is not differentiable: the library's
  ReLU at 0 and within +-4e-7 of it, a ReLU network with all-zero input
  rows and zero biases (every hidden unit of those rows at its kink), |w| at
  0 and 1e-7, max at a tie, the step function. Correct: the library's
  subgradient; wrong: a value outside the one-sided slopes.
- ``curvature``: sum(exp(k w)) / k, k up to 20; ``oscillation``:
  sum(sin(k w)) / k, k up to 300; bugs 0.87x to -1x, one entry or all.

A wrong case is kept only when its bug moves some entry by at least 10
times the tolerance it is checked with (a bug inside the tolerance is not a
wrong gradient at that tolerance).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.gradcheck.core import DEFAULTS
from backprop.kernels import get_backend

K = get_backend("numpy")

ACTIVATIONS = ("sigmoid", "tanh", "relu")
LOSSES = ("mse", "bce_with_logits", "softmax_cross_entropy")
OFFSETS = (0.0, 0.0, 0.0, 1e3, 1e6, 1e9)
SCALES = (0.9, 1.1, 0.5, 2.0, -1.0, 0.0)
NETWORK_BUGS = (
    "scale", "scale", "missing_sigma_prime", "transposed", "sum_not_mean",
    "entry_zero", "entry_flip", "entry_scale",
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One gradient to check: ``loss_fn(params)``, ``grad_fn(params)``, ``params``.

    ``correct``: whether ``grad_fn`` is right (a valid subgradient at a
    kink); ``smooth``: the loss is differentiable at the point; ``family``,
    ``loss_dtype``, ``offset`` and ``bug`` (None when correct) describe it.
    """

    name: str
    family: str
    correct: bool
    smooth: bool
    loss_dtype: str
    offset: float
    bug: str | None
    loss_fn: Callable[[dict[str, np.ndarray]], Any]
    grad_fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    params: dict[str, np.ndarray]

    @property
    def resolvable(self) -> bool:
        """The loss offset leaves the differences something to resolve at the default tolerance.

        False for float64 offsets of 1e6 and up and float32 offsets of 1e3:
        the loss's spacing there (1e-10 and 6e-5) divided by any step that
        keeps the truncation small exceeds the tolerance, so a correct
        gradient can only come back inconclusive.
        """
        return self.offset * float(np.finfo(self.loss_dtype).eps) < 1e-12

    def tolerance(self) -> tuple[float, float]:
        """(rtol, atol) the checker uses by default for this case's loss dtype."""
        d = DEFAULTS[self.loss_dtype]
        return d["rtol"], d["atol"]


def _mismatch(case_tol: tuple[float, float], good: dict, bad: dict) -> float:
    """Largest |bad - good| / (atol + rtol |good|) over all entries."""
    rtol, atol = case_tol
    worst = 0.0
    for k in good:
        g, b = np.asarray(good[k], float), np.asarray(bad[k], float)
        worst = max(worst, float(np.max(np.abs(b - g) / (atol + rtol * np.abs(g)), initial=0.0)))
    return worst


def _network(rng: np.random.Generator, act: str, loss: str, dtype: str, offset: float, kink: bool):
    """Loss and gradient functions of a random network of the library's kernels."""
    n = 8
    d_in = int(rng.integers(2, 5))
    hidden = [int(rng.integers(2, 7)) for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.5:  # a square weight somewhere, for the transpose bug
        hidden = [d_in, *hidden[1:]]
    d_out = int(rng.integers(1, 4)) if loss != "softmax_cross_entropy" else int(rng.integers(2, 4))
    sizes = [d_in, *hidden, d_out]
    X = rng.standard_normal((n, d_in))
    if kink:
        X[: n // 2] = 0.0  # rows of zeros: with zero biases every unit sits at its kink
    if loss == "mse":
        Y = rng.standard_normal((n, d_out))
    elif loss == "bce_with_logits":
        Y = rng.integers(0, 2, (n, d_out)).astype(float)
    else:
        Y = np.eye(d_out)[rng.integers(0, d_out, n)]
    params = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        params[f"w{i}"] = rng.standard_normal((a, b)) / np.sqrt(a)
        params[f"b{i}"] = np.zeros(b) if kink else 0.1 * rng.standard_normal(b)
    layers = len(sizes) - 1
    act_f = getattr(K, f"{act}_forward")
    act_b = getattr(K, f"{act}_backward")
    loss_f = getattr(K, f"{loss}_forward")
    loss_b = getattr(K, f"{loss}_backward")

    def forward(p: dict, dt: Any):
        h = X.astype(dt)
        caches = []
        for i in range(layers):
            z, c_mm = K.matmul_forward(h, p[f"w{i}"].astype(dt))
            z, c_b = K.add_bias_forward(z, p[f"b{i}"].astype(dt))
            c_act = None
            if i < layers - 1:
                z, c_act = act_f(z)
            caches.append((c_mm, c_b, c_act))
            h = z
        value, c_loss = loss_f(h, Y.astype(dt))
        return value, caches, c_loss

    def loss_fn(p: dict) -> Any:
        value = forward(p, dtype)[0]
        return np.asarray(value, dtype=dtype)[()] + np.asarray(offset, dtype=dtype)[()]

    def grads(p: dict, bug: str | None = None, where: int = 0) -> dict:
        _, caches, c_loss = forward(p, "float64")
        dz = loss_b(1.0, c_loss)
        g = {}
        for i in reversed(range(layers)):
            c_mm, c_b, c_act = caches[i]
            if i < layers - 1 and not (bug == "missing_sigma_prime" and i == where):
                dz = act_b(dz, c_act)
            dz, g[f"b{i}"] = K.add_bias_backward(dz, c_b)
            dz, g[f"w{i}"] = K.matmul_backward(dz, c_mm)
        return {k: g[k] for k in params}

    return loss_fn, grads, params, layers, n


def _network_pair(rng: np.random.Generator, index: int, kink: bool) -> Iterator[Case]:
    act = "relu" if kink else ACTIVATIONS[index % 3]
    loss = LOSSES[(index // 3) % 3]
    dtype = "float32" if (index // 9) % 3 == 2 else "float64"
    offset = 0.0 if kink else OFFSETS[(index // 27) % len(OFFSETS)]
    if dtype == "float32":
        offset = min(offset, 1e3)  # float32 spacing at 1e6 is 0.06: nothing left to difference
    loss_fn, grads, params, layers, n = _network(rng, act, loss, dtype, offset, kink)
    base = f"{'kink/relu-net' if kink else 'network'}/{act}/{loss}/{dtype}/offset={offset:g}"
    family = "kink" if kink else "network"
    yield Case(
        f"{base}/correct", family, True, not kink, dtype, offset, None,
        loss_fn, lambda p: grads(p), params,
    )  # fmt: skip
    tol = DEFAULTS[dtype]["rtol"], DEFAULTS[dtype]["atol"]
    good = grads(params)
    names = list(params)
    for attempt in range(12):
        bug = NETWORK_BUGS[(index + attempt) % len(NETWORK_BUGS)]
        if kink and bug in ("missing_sigma_prime", "sum_not_mean"):
            continue  # at a kink a changed hidden gradient may still be a valid subgradient
        # At kinks only w0 and the output layer are differentiable (the zero
        # rows do not move with w0): plant the bug there, so that "wrong" is
        # wrong, not another valid subgradient.
        pool = [names[0], names[-2], names[-1]] if kink else names
        target = pool[int(rng.integers(0, len(pool)))]
        c = SCALES[int(rng.integers(0, len(SCALES)))]
        where = int(rng.integers(0, max(layers - 1, 1)))
        entry_c = float(rng.choice([0.9, 0.5, -0.5, -1.0, 2.0]))
        if bug == "transposed":
            squares = [
                k for k in pool if params[k].ndim == 2 and params[k].shape[0] == params[k].shape[1]
            ]
            if not squares:
                continue
            target = squares[0]
        if bug == "missing_sigma_prime" and layers < 2:
            continue
        flat = np.abs(good[target]).ravel()
        big = np.flatnonzero(flat > 100 * (tol[1] + tol[0] * flat))
        if bug.startswith("entry") and not big.size:
            continue
        entry = int(rng.choice(big)) if big.size else 0

        def bad(p: dict, bug=bug, target=target, c=c, where=where, entry=entry, entry_c=entry_c):
            g = grads(p, bug, where)
            if bug == "scale":
                g[target] = c * g[target]
            elif bug == "transposed":
                g[target] = g[target].T.copy()
            elif bug == "sum_not_mean":
                g = {k: n * v for k, v in g.items()}
            elif bug.startswith("entry"):
                v = g[target].copy().ravel()
                v[entry] = {"entry_zero": 0.0, "entry_flip": -v[entry]}.get(bug, entry_c * v[entry])
                g[target] = v.reshape(g[target].shape)
            return g

        if _mismatch(tol, good, bad(params)) < 10:
            continue
        label = (
            f"{bug}:{c:g}"
            if bug == "scale"
            else f"{bug}:{entry_c:g}"
            if bug == "entry_scale"
            else bug
        )
        yield Case(
            f"{base}/{label}:{target}", family, False, not kink, dtype, offset, label,
            loss_fn, bad, params,
        )  # fmt: skip
        return


def _elementwise_pair(rng: np.random.Generator, index: int) -> Iterator[Case]:
    """Kinks of single functions: relu kernel, abs, max at a tie, step."""
    kind = ("relu", "abs", "max", "step")[index % 4]
    dtype = "float64" if (index // 4) % 4 else "float32"
    tol = DEFAULTS[dtype]["rtol"], DEFAULTS[dtype]["atol"]
    m = 5
    if kind == "relu":
        z = rng.choice([0.0, 4e-7, -4e-7, 1e-9, 0.5, -0.7], m)
        z[0] = 0.0
        G = rng.standard_normal(m)

        def loss_fn(p):
            return np.asarray(
                np.sum(K.relu_forward(p["z"].astype(dtype))[0] * G.astype(dtype)), dtype
            )[()]

        def good(p):
            return {"z": np.asarray(K.relu_backward(G, p["z"]), float)}

        def bad(p):  # the mask's complement: dout where z <= 0 - outside [0, g] at 0
            g = good(p)["z"]
            return {"z": np.where(p["z"] > 0, g, -G)}

        params = {"z": z}
    elif kind == "abs":
        w = rng.choice([0.0, 1e-7, -1e-7, 0.3, -2.0], m)
        w[0] = 0.0

        def loss_fn(p):
            return np.asarray(np.sum(np.abs(p["w"].astype(dtype))), dtype)[()]

        def good(p):
            return {"w": np.sign(p["w"])}

        def bad(p):
            return {"w": np.where(p["w"] == 0, 2.0, -np.sign(p["w"]))}

        params = {"w": w}
    elif kind == "max":
        w = rng.standard_normal(m)
        w[1] = w[3] = np.max(w) + 0.5  # a tie for the maximum

        def loss_fn(p):
            return np.asarray(np.max(p["w"].astype(dtype)), dtype)[()]

        def good(p):
            g = np.zeros(m)
            g[int(np.argmax(p["w"]))] = 1.0
            return {"w": g}

        def bad(p):
            return {"w": -good(p)["w"]}

        params = {"w": w}
    else:
        z = rng.choice([0.0, 0.5, -0.8, 2.0, -1.5], m)
        z[0] = 0.0
        G = np.abs(rng.standard_normal(m)) + 0.5

        def loss_fn(p):
            out = K.step_forward(p["z"].astype(dtype))[0]
            return np.asarray(np.sum(out * G.astype(dtype)), dtype)[()]

        def good(p):
            return {"z": np.zeros(m)}  # the step's derivative is 0 wherever it exists

        def bad(p):  # a straight-through "gradient" G: wrong where z != 0
            return {"z": np.where(p["z"] == 0, 0.0, G)}

        params = {"z": z}
    base = f"kink/{kind}/{dtype}"
    yield Case(f"{base}/correct", "kink", True, False, dtype, 0.0, None, loss_fn, good, params)
    if _mismatch(tol, good(params), bad(params)) >= 10:
        yield Case(
            f"{base}/outside", "kink", False, False, dtype, 0.0, "outside", loss_fn, bad, params
        )


def _smooth_pair(rng: np.random.Generator, index: int) -> Iterator[Case]:
    """High curvature (exp(k w)) and oscillation (sin(k w)), float64 and float32."""
    osc = index % 3 == 2
    k = (
        float(rng.choice([30.0, 100.0, 300.0]))
        if osc
        else float(rng.choice([1.0, 5.0, 13.0, 20.0]))
    )
    dtype = "float32" if index % 4 == 3 else "float64"
    offset = 0.0 if index % 5 else 1e3
    w = rng.uniform(-0.5, 0.5, 4) if not osc else rng.uniform(-1, 1, 4)
    tol = DEFAULTS[dtype]["rtol"], DEFAULTS[dtype]["atol"]
    f, fp = (np.sin, np.cos) if osc else (np.exp, np.exp)

    def loss_fn(p):
        v = np.sum(f(k * p["w"].astype(dtype))) / np.asarray(k, dtype)
        return np.asarray(v + np.asarray(offset, dtype), dtype)[()]

    def good(p):
        return {"w": fp(k * p["w"])}

    c = float(rng.choice([0.9, 1.08, 0.87, 0.5, -1.0, 0.0]))
    one = bool(rng.integers(0, 2))

    def bad(p):
        g = good(p)["w"].copy()
        if one:
            g[0] = c * g[0]
        else:
            g = c * g
        return {"w": g}

    family = "oscillation" if osc else "curvature"
    base = f"{family}/k={k:g}/{dtype}/offset={offset:g}"
    params = {"w": w}
    yield Case(f"{base}/correct", family, True, True, dtype, offset, None, loss_fn, good, params)
    if _mismatch(tol, good(params), bad(params)) >= 10:
        label = f"{'entry' if one else 'scale'}:{c:g}"
        yield Case(
            f"{base}/{label}", family, False, True, dtype, offset, label, loss_fn, bad, params
        )


def corpus(pairs: int = 1100, seed: int = 0) -> list[Case]:
    """``pairs`` correct cases and (almost as many) wrong ones, deterministic in ``seed``.

    The mixture per 20 pairs: 13 networks, 2 ReLU networks at kinks, 2
    elementwise kinks, 3 curvature / oscillation functions.

    Parameters
    ----------
    pairs : int
        How many correct cases; a wrong one follows each unless no bug
        planted on its function moves it beyond 10x the tolerance.
    seed : int

    Returns
    -------
    list of Case
    """
    rng = np.random.default_rng(seed)
    out: list[Case] = []
    counters = {"network": 0, "relu-net": 0, "elementwise": 0, "smooth": 0}
    for i in range(pairs):
        slot = i % 20
        if slot < 13:
            out.extend(_network_pair(rng, counters["network"], kink=False))
            counters["network"] += 1
        elif slot < 15:
            out.extend(_network_pair(rng, counters["relu-net"], kink=True))
            counters["relu-net"] += 1
        elif slot < 17:
            out.extend(_elementwise_pair(rng, counters["elementwise"]))
            counters["elementwise"] += 1
        else:
            out.extend(_smooth_pair(rng, counters["smooth"]))
            counters["smooth"] += 1
    return out
