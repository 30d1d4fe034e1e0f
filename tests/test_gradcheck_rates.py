"""False alarms and missed bugs of the gradient checker, on a fixed sample.

A small, deterministic version of the rates measured when the third verdict
came in: correct gradients at random well-conditioned points all pass,
every planted bug of the kinds hand-written backprop makes fails, and where
finite differences cannot resolve the gradient (a loss offset of 1e8 or
1e12, parameters of 1e10) nothing passes - right or wrong, the check is
inconclusive or, when the mismatch is still resolvable, fails.

The networks are written out here in NumPy, independent of the library's
own models, so that a bug can be planted anywhere in the backward pass.
"""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

from backprop.gradcheck import check_kernel, gradcheck
from backprop.kernels import get_backend

pytestmark = pytest.mark.gradcheck

ACTIVATIONS = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, h: h * (1 - h)),
    "tanh": (np.tanh, lambda z, h: 1 - h * h),
    "relu": (lambda z: np.maximum(z, 0), lambda z, h: (z > 0).astype(float)),
}
BUGS = (
    "sign",
    "factor2",
    "zero",
    "missing_sigma_prime",
    "transposed",
    "sum_not_mean",
    "relative_1e-3",
)


def network(seed, *, offset=0.0, bug=None, square=False):
    """A random dense network: ``(loss_fn, grad_fn, params, bugged parameter name)``.

    1-3 hidden layers of 2-12 units (all of one width when ``square``), one of
    sigmoid/tanh/relu, a BCE-with-logits or MSE loss over 16 rows, plus
    ``offset``. ``bug`` plants one mistake in the gradient of one layer.
    """
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))
    width = int(rng.integers(2, 9))
    hidden = [width] * depth if square else [int(rng.integers(2, 13)) for _ in range(depth)]
    sizes = [width if square else int(rng.integers(1, 6)), *hidden, int(rng.integers(1, 4))]
    act = ["sigmoid", "tanh", "relu"][int(rng.integers(0, 3))]
    if bug == "missing_sigma_prime" and act == "relu":
        act = "tanh"  # a missing ReLU mask is no bug where every unit is active
    bce = bool(rng.integers(0, 2))
    X = rng.standard_normal((16, sizes[0]))
    y = (
        rng.integers(0, 2, (16, sizes[-1])).astype(float)
        if bce
        else rng.standard_normal((16, sizes[-1]))
    )
    params = {}
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        params[f"w{i}"] = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
        params[f"b{i}"] = 0.1 * rng.standard_normal(d_out)
    n_layers = len(sizes) - 1
    # the bugged layer: a square weight for "transposed", a hidden layer's
    # derivative for "missing_sigma_prime"
    last = n_layers - 1 if bug in ("transposed", "missing_sigma_prime") else n_layers
    layer = int(rng.integers(0, last))
    f, f_prime = ACTIVATIONS[act]

    def forward(p):
        hs, zs = [X], []
        for i in range(n_layers):
            zs.append(hs[-1] @ p[f"w{i}"] + p[f"b{i}"])
            if i < n_layers - 1:
                hs.append(f(zs[-1]))
        z = zs[-1]
        if bce:
            loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
            dz = (1 / (1 + np.exp(-z)) - y) / z.size
        else:
            loss = 0.5 * np.mean((z - y) ** 2)
            dz = (z - y) / z.size
        return loss + offset, hs, zs, dz

    def loss_fn(p):
        return forward(p)[0]

    def grad_fn(p):
        _, hs, zs, dz = forward(p)
        g = {}
        for i in reversed(range(n_layers)):
            g[f"w{i}"] = hs[i].T @ dz
            g[f"b{i}"] = dz.sum(0)
            if i:
                dh = dz @ p[f"w{i}"].T
                skip = bug == "missing_sigma_prime" and i - 1 == layer
                dz = dh if skip else dh * f_prime(zs[i - 1], hs[i])
        w = f"w{layer}"
        if bug == "sign":
            g[w] = -g[w]
        elif bug == "factor2":
            g[w] = 2 * g[w]
        elif bug == "zero":
            g[w] = np.zeros_like(g[w])
        elif bug == "transposed":
            g[w] = g[w].T
        elif bug == "sum_not_mean":
            g = {k: 16 * v for k, v in g.items()}
        elif bug == "relative_1e-3":
            g[w] = g[w] * (1 + 1e-3)
        return g

    return loss_fn, grad_fn, params, f"w{layer}"


def test_correct_gradients_at_50_random_points_all_pass():
    verdicts = collections.Counter(
        gradcheck(*network(seed)[:3]).verdict for seed in range(1000, 1050)
    )
    assert verdicts == {"pass": 50}


@pytest.mark.parametrize("bug", BUGS)
def test_every_planted_bug_fails_on_its_parameter(bug):
    for seed in range(2000, 2006):
        loss_fn, grad_fn, params, bugged = network(seed, bug=bug, square=bug == "transposed")
        report = gradcheck(loss_fn, grad_fn, params)
        assert report.verdict == "fail", str(report)
        if bug == "missing_sigma_prime":  # every layer below the missing derivative
            assert bugged in report.failing
        elif bug == "sum_not_mean":
            assert "exactly 16x too large" in report[bugged].diagnosis
        else:
            assert report.failing == [bugged], str(report)


@pytest.mark.parametrize("bug", [None, "sign", "factor2", "zero"])
def test_nothing_passes_where_a_loss_offset_swamps_the_differences(bug):
    """Offsets of 1e8 and 1e12: before, 2x and zero gradients passed here."""
    for seed, offset in zip(range(3000, 3010), [1e8, 1e12] * 5, strict=True):
        report = gradcheck(*network(seed, offset=offset, bug=bug)[:3])
        assert report.verdict != "pass", str(report)
        if bug is None:
            assert report.verdict == "inconclusive"


def test_the_audit_cases_do_not_pass():
    """The two cases of the audit: a loss offset by 1e12 with an all-zero
    gradient, and parameters of 1e10 with twice the gradient. Both used to
    pass; the step search now resolves both as certainly wrong."""
    loss_fn, _, params, _ = network(0, offset=1e12)
    report = gradcheck(loss_fn, lambda p: {k: np.zeros_like(v) for k, v in p.items()}, params)
    assert report.verdict in ("fail", "inconclusive") and not report.ok
    w = np.random.default_rng(1).choice([-1.0, 1.0], 6) * 10 ** np.linspace(9.5, 10.5, 6)
    report = gradcheck(lambda p: 0.5 * np.sum(p["w"] ** 2), lambda p: {"w": 2 * p["w"]}, {"w": w})
    assert report.verdict == "fail" and "exactly 2x too large" in report["w"].diagnosis


def test_a_kernel_with_sigma_prime_of_its_output_fails_everywhere():
    K = get_backend("numpy")
    rng = np.random.default_rng(4)
    for _ in range(10):
        z = rng.uniform(-5, 5, (int(rng.integers(1, 9)), int(rng.integers(1, 9))))
        report = check_kernel(
            K.sigmoid_forward, lambda dout, s: dout * K.sigmoid_prime(s), {"z": z}
        )
        assert report.verdict == "fail"
