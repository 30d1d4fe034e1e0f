"""A user's own kernel in one call: :func:`register_activation`, :func:`register_head`.

Each checks the pair against finite differences first
(:func:`backprop.gradcheck.check_kernel`, float64, on NumPy and, when it is
installed, on JAX) and refuses one that fails with :class:`KernelRefused`,
which carries the report. A pair that passes is declared in the kernel
registry beside the library's own, so its name works wherever ours do:
:func:`backprop.train_mlp` on both backends (the NumPy fast path runs it
through an in-place form built from the pair, unless one is given),
:class:`backprop.MLPClassifier` and ``python -m backprop fit --activation``.

The functions follow the library's contract (:mod:`backprop.kernels`): the
array namespace ``xp`` (``numpy`` or ``jax.numpy``) comes first, a forward
returns ``(out, cache)`` and a backward ``(dout, cache) -> d input``. For
JAX they must be pure and must not branch in Python on array values.
Optimizers are registered with :func:`backprop.optim.register_optimizer`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.gradcheck import GradcheckReport, check_kernel
from backprop.kernels import get_backend, registry
from backprop.kernels.spec import TARGETS, Domain, Head, InPlace, KernelSpec, elementwise


class KernelRefused(ValueError):
    """A registered pair failed its gradient check; ``.report`` holds the check."""

    def __init__(self, message: str, report: GradcheckReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def _backends() -> tuple[str, ...]:
    return ("numpy", "jax") if importlib.util.find_spec("jax") is not None else ("numpy",)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier such as 'softplus', got {name!r}")
    if name in registry.BUILT_IN:
        raise ValueError(f"{name!r} is one of the library's own kernels; choose another name")
    return name


def _check_callables(**fns: Any) -> None:
    for label, fn in fns.items():
        if not callable(fn):
            raise ValueError(f"{label} must be callable, got {fn!r}")


def _gradcheck(spec: KernelSpec, backends: tuple[str, ...]) -> None:
    """Check ``spec``'s pair on every backend at inputs from its domains; refuse a failure."""
    for backend in backends:
        K = get_backend(backend)
        inputs = registry.sample_inputs(spec, np.random.default_rng(0), n=4, d=3, m=3)
        try:
            report = check_kernel(*K.pair(spec.name, spec), inputs)
        except Exception as exc:  # a pair that cannot even run is refused the same way
            raise KernelRefused(
                f"{spec.name!r} refused: the pair fails on {backend} before any comparison: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not report.ok:
            raise KernelRefused(
                f"{spec.name!r} refused: its backward does not match finite differences of its "
                f"forward on {backend}:\n{report}",
                report,
            )


def _check_inplace(spec: KernelSpec) -> None:
    """A given in-place form against the pair, on NumPy, float64; refuse a mismatch."""
    z = registry.sample_inputs(spec, np.random.default_rng(1), n=5, d=3, m=4)["z"]
    dh = np.random.default_rng(2).standard_normal(z.shape)
    out, cache = spec.forward(np, z.copy())
    ref = spec.backward(np, dh, cache)  # type: ignore[misc]
    form = spec.inplace_form()
    buf, got = z.copy(), dh.copy()
    with np.errstate(over="ignore"):
        saved = form.forward(buf, np.empty_like(buf))
        form.backward(got, buf, saved, np.empty_like(buf))
    for label, a, b in (("forward", buf, out), ("backward", got, ref)):
        if not np.allclose(a, b, rtol=1e-10, atol=1e-12):
            raise KernelRefused(
                f"{spec.name!r} refused: its in-place {label} differs from the pure one by up "
                f"to {float(np.max(np.abs(a - np.asarray(b)))):.3g}"
            )


def _forget_compiled() -> None:
    # a name registered again may now mean other functions: drop compiled runs
    from backprop import _jaxrun

    _jaxrun._COMPILED.clear()


def register_activation(
    name: str,
    forward: Callable[[Any, Any], tuple[Any, Any]],
    backward: Callable[[Any, Any, Any], Any],
    *,
    inplace: InPlace | None = None,
    lo: float = -3.0,
    hi: float = 3.0,
    kinks: tuple[float, ...] = (),
    formula: str = "",
) -> KernelSpec:
    """Make ``name`` a hidden activation everywhere the library takes one.

    Parameters
    ----------
    name : str
        A new identifier (the library's own names cannot be replaced;
        registering a name again replaces your earlier one).
    forward : callable(xp, z) -> (out, cache)
        Elementwise: ``z`` (N, D) float, ``out`` of ``z``'s shape and dtype.
    backward : callable(xp, dout, cache) -> dz
        ``dout`` and ``dz`` of ``z``'s shape.
    inplace : InPlace, optional
        A NumPy in-place form for the fast path
        (:class:`backprop.kernels.spec.InPlace`); checked against the pair.
        Without one, the fast path runs the pair on NumPy arrays.
    lo, hi : float
        Where the gradient check draws ``z`` (uniform in [lo, hi]).
    kinks : tuple of float
        Points where the derivative is undefined; the check stays 1e-3 away.
    formula : str
        Forward and backward in words, for tables.

    Returns
    -------
    KernelSpec
        The declaration now in :data:`backprop.kernels.KERNELS`.

    Raises
    ------
    KernelRefused
        (a ``ValueError``) When the backward does not match finite
        differences of the forward on NumPy or (if installed) JAX, with the
        :class:`~backprop.gradcheck.GradcheckReport` as ``.report``; or the
        pair raises; or ``inplace`` differs from the pair.
    ValueError
        For a bad or built-in name, or functions that are not callable.
    """
    _check_name(name)
    _check_callables(forward=forward, backward=backward)
    if inplace is not None and not isinstance(inplace, InPlace):
        raise ValueError(f"inplace must be None or a kernels.spec.InPlace, got {inplace!r}")
    domain = Domain("real", float(lo), float(hi), tuple(kinks), 1e-3 if kinks else 0.0)
    spec = KernelSpec(
        name,
        "activation",
        forward,
        backward,
        ("z",),
        1,
        elementwise,
        formula or f"{name} (registered)",
        {"z": domain},
        inplace=inplace,
    )
    _gradcheck(spec, _backends())
    if inplace is not None:
        _check_inplace(spec)
    registry.add(spec)
    _forget_compiled()
    return spec


def register_head(
    name: str,
    loss: str,
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[[Any, Any, Any], Any],
    *,
    predict: Callable[[Any, Any], Any],
    correct: Callable[[Any, Any, Any], Any] | None = None,
    check_targets: Callable[[str, Any], None] | None = None,
    targets: Domain = TARGETS,
    per_row: bool = False,
    min_units: int = 1,
    inplace: Callable[[Any, Any, Any], float] | None = None,
    outputs: str = "values",
) -> Head:
    """Make ``name`` an output head (``train_mlp(output=name)``) fused with its loss ``loss``.

    Parameters
    ----------
    name : str
        The output's name (a new identifier).
    loss : str
        The loss's name (a new identifier): the fused kernel is registered
        under it.
    forward : callable(xp, z, y, weights=None) -> (loss, cache)
        The loss on logits ``z`` (N, DL) against targets ``y`` (N, DL): a
        0-d array, the weighted sum of per-element (or, with ``per_row``,
        per-row) losses, weights defaulting to the mean.
    backward : callable(xp, dloss, cache) -> dz
    predict : callable(xp, z) -> (N, DL)
        The output activation on logits (what :func:`backprop.predict` returns).
    correct : callable(xp, z, y) -> bool (N,), optional
        Whether each row is predicted right; default: every output on the
        right side of 1/2 (z > 0.5 against y > 0.5).
    check_targets : callable(name, Y), optional
        Raise ``ValueError`` for targets the loss is not defined for.
    targets : Domain
        Where the gradient check draws the targets (0/1 labels by default).
    per_row, min_units, inplace, outputs :
        As in :class:`backprop.kernels.spec.Head` (``outputs``: "values" by
        default; "probabilities" or "independent" make model files and the
        command line treat the outputs as class probabilities).

    Returns
    -------
    Head

    Raises
    ------
    KernelRefused
        When the loss's backward does not match finite differences (NumPy
        and, if installed, JAX).
    ValueError
        For bad or built-in names, or functions that are not callable.
    """
    _check_name(name)
    _check_name(loss)
    _check_callables(forward=forward, backward=backward, predict=predict)
    spec = KernelSpec(
        loss,
        "loss",
        forward,
        backward,
        ("z", "y"),
        1,
        lambda n, d, m: {"z": (n, m), "y": (n, m)},
        f"{loss} (registered, the {name} head's loss)",
        {"y": targets},
    )
    _gradcheck(spec, _backends())
    head = Head(
        name,
        loss,
        loss,
        predict=predict,
        correct=correct or (lambda xp, z, Y: xp.all((z > 0.5) == (Y > 0.5), axis=1)),
        check_targets=check_targets or (lambda label, Y: None),
        inplace=inplace,
        per_row=per_row,
        min_units=min_units,
        outputs=outputs,
    )
    registry.add(spec)
    registry.add_head(head)
    _forget_compiled()
    return head


def unregister(name: str) -> None:
    """Forget a registered activation, head (with its loss) or optimizer called ``name``."""
    from backprop import optim

    head = registry.HEADS.get(name)
    if head is not None and name not in registry.BUILT_IN:
        registry.remove(head.kernel)
    if name in optim.OPTIMIZERS and name not in optim.BUILT_IN:
        del optim.OPTIMIZERS[name]
    elif name not in optim.OPTIMIZERS:
        registry.remove(name)
    _forget_compiled()
