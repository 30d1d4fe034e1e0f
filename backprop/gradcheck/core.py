""":func:`gradcheck`, :func:`check_kernel` and :func:`numeric_gradient`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from backprop.gradcheck.estimate import NonFinite, estimate, unit_roundoff
from backprop.gradcheck.inputs import as_float, flatten, key_sets
from backprop.gradcheck.report import GradcheckReport, ParamReport, compare

# First step of the search and tolerances, by the precision of the loss
# values (the coarser of the working dtype and the loss's own dtype).
DEFAULTS = {
    "float64": {"eps": 1e-3, "rtol": 1e-5, "atol": 1e-8},
    "float32": {"eps": 1e-2, "rtol": 1e-2, "atol": 1e-3},
}
_DIGITS = {"float64": 6, "float32": 4}


def _check_options(dtype: str, eps: float | None, rtol: float | None, atol: float | None) -> None:
    if dtype not in DEFAULTS:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    for name, v in (("eps", eps), ("rtol", rtol), ("atol", atol)):
        if v is None:
            continue
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0) or (
            name == "eps" and v == 0
        ):
            raise ValueError(f"{name} must be a finite number > 0 (>= 0 for tolerances), got {v!r}")


def _precision(value: Any, dtype: str) -> tuple[str, float, np.dtype]:
    """(name, unit roundoff, grid dtype) of the coarser of the loss value's dtype and ``dtype``."""
    vdt = getattr(value, "dtype", None)
    try:
        vdt = np.dtype(vdt) if vdt is not None else np.dtype("float64")
    except TypeError:  # pragma: no cover - a dtype NumPy cannot name
        vdt = np.dtype("float32")
    if vdt.kind != "f":
        vdt = np.dtype("float64")
    work = np.dtype(dtype)
    coarse = vdt if unit_roundoff(vdt) > unit_roundoff(work) else work
    return str(coarse), unit_roundoff(coarse), coarse


def _resolve(
    precision: str, eps: float | None, rtol: float | None, atol: float | None
) -> tuple[float, float, float]:
    d = DEFAULTS["float32" if precision != "float64" else "float64"]
    return (
        float(d["eps"] if eps is None else eps),
        float(d["rtol"] if rtol is None else rtol),
        float(d["atol"] if atol is None else atol),
    )


def _read_only(x: np.ndarray) -> np.ndarray:
    view = x.view()
    view.flags.writeable = False
    return view


def _guarded(fn: Callable[..., Any], label: str, *args: Any) -> Any:
    """``fn(*args)``, naming the culprit when it writes into a read-only input."""
    try:
        return fn(*args)
    except ValueError as e:
        if "read-only" not in str(e):
            raise
        raise ValueError(
            f"{label} raised {e!r}: the checker passes its arrays read-only so that a "
            f"function writing into its input cannot move the point of the check; "
            f"if {label} writes into an input, copy it first (e.g. p['w'].copy())"
        ) from e


def _notes(
    reports: Mapping[str, ParamReport],
    dtype: str,
    precision: str,
    rtol: float,
    atol: float,
    cast: list[str],
    moved: list[str],
) -> list[str]:
    notes = list(cast)
    if precision != dtype:
        notes.append(
            f"note: the loss values are {precision}: the bounds use {precision} rounding, the "
            f"steps are taken on {precision} values, and the tolerances default to "
            f"rtol={DEFAULTS['float32']['rtol']:g}, atol={DEFAULTS['float32']['atol']:g}; "
            f"for a sharper proof evaluate in float64 (JAX: inside jax.enable_x64(True))"
        )
    if moved:
        notes.append(
            f"note: {', '.join(moved)} rounded to {precision} values (the precision the loss "
            f"computes in) before checking"
        )
    for p in reports.values():
        if p.ok and 0 < p.max_gradient <= atol:
            notes.append(
                f"note: {p.name} passed on atol alone: its gradient is below atol={atol:g} "
                f"everywhere (largest {p.max_gradient:.2g}), so a wrong one would pass too; "
                f"pass a smaller atol to check it."
            )
    if dtype == "float32":
        notes.append(
            "note: a float32 check is weaker - rounding limits it to gross errors; "
            "use float64 to prove a gradient."
        )
    return notes


def gradcheck(
    loss_fn: Callable[[Any], Any],
    grad_fn: Callable[[Any], Any],
    params: Any,
    *,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: str = "float64",
) -> GradcheckReport:
    """Check ``grad_fn`` against finite differences of ``loss_fn``, with an error bound.

    Both functions are called with a fresh copy of the structure of
    ``params`` holding *read-only* ``dtype`` views of the checker's working
    copies: the caller's arrays are never modified, and a function that
    writes into its input raises a ``ValueError`` instead of moving the
    point where the differences are taken. JAX settings are left as they
    are (no x64 switch): a JAX loss in float32 is checked as float32, in
    float64 (inside ``jax.enable_x64(True)``) as float64.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(params) -> scalar`` (a float, NumPy or JAX scalar); its
        dtype sets the rounding the bounds use.
    grad_fn : callable
        ``grad_fn(params)`` -> gradients in the structure of ``params``, each
        leaf an array of its parameter's shape.
    params : pytree of array_like
        A mapping name -> array, or nested dicts / lists / tuples of arrays
        (NumPy or JAX, any shapes, 0-d included; integer arrays are cast to
        ``dtype`` with a note; complex arrays are refused).
    eps : float, optional
        First step of the step search (default 1e-3; 1e-2 for float32).
    rtol, atol : float, optional
        The accuracy asked of the analytic gradient: an entry passes when
        |analytic - numeric| + bound <= atol + rtol |numeric|, bound the
        finite differences' error bound (defaults 1e-5 / 1e-8 for float64
        losses, 1e-2 / 1e-3 for float32 ones).
    dtype : {"float64", "float32"}
        The precision of the working copies.

    Returns
    -------
    GradcheckReport
        One :class:`ParamReport` per leaf, named by its path (``w``,
        ``layers[0].b``), verdict "pass", "fail", "kink" or "inconclusive";
        ``report.ok`` when all pass or are valid subgradients at kinks.

    Raises
    ------
    ValueError
        When ``grad_fn``'s structure (both key sets are named), shapes or
        dtypes (complex) differ from ``params``; when the loss is not a
        scalar, or NaN or infinite at the point or at every step tried;
        when a function writes into its read-only input; on a bad ``dtype``,
        ``eps``, ``rtol``, ``atol`` or leaf.
    """
    _check_options(dtype, eps, rtol, atol)
    if isinstance(params, Mapping) and not params:
        raise ValueError(
            f"params must be a non-empty mapping (or pytree) of arrays, got {params!r}"
        )
    leaves, rebuild = flatten(params)
    if not leaves:
        raise ValueError(
            f"params must be a non-empty mapping (or pytree) of arrays, got {params!r}"
        )
    names = [n for n, _ in leaves]
    if len(set(names)) != len(names):
        raise ValueError(f"params has repeated leaf names: {names}")
    work, cast = {}, []
    for name, value in leaves:
        work[name], note = as_float(name, value, dtype)
        if note:
            cast.append(note)
    views = [_read_only(x) for x in work.values()]
    state = {"where": "at the given params"}

    def loss() -> float:
        value = _guarded(loss_fn, "loss_fn", rebuild(list(views)))
        arr = np.asarray(value)
        if arr.shape != ():
            raise ValueError(f"loss_fn must return a scalar, got an array of shape {arr.shape}")
        v = float(arr)
        if not np.isfinite(v):
            state["bad"] = str(v)
            raise NonFinite
        return v

    first = _guarded(loss_fn, "loss_fn", rebuild(list(views)))
    try:
        loss()
    except NonFinite:
        raise ValueError(
            f"loss_fn returned {state['bad']} at the given params; the gradient cannot be "
            f"checked there"
        ) from None
    precision, unit, grid = _precision(first, dtype)
    eps, rtol, atol = _resolve(precision, eps, rtol, atol)
    moved = []
    if grid != np.dtype(dtype):
        for name, x in work.items():
            rounded = x.astype(grid).astype(dtype)
            if not np.array_equal(rounded, x):
                moved.append(name)
            x[...] = rounded

    grads = _guarded(grad_fn, "grad_fn", rebuild(list(views)))
    if isinstance(params, Mapping) and not isinstance(grads, Mapping):
        raise ValueError(
            f"grad_fn must return a mapping of name -> array, got {type(grads).__name__}"
        )
    gleaves = dict(flatten(grads)[0])
    if set(gleaves) != set(work):
        raise ValueError(
            f"grad_fn returned gradients for {sorted(gleaves, key=str)}, params are "
            f"{sorted(work, key=str)} ({key_sets(list(work), list(gleaves))})"
        )
    analytic = {}
    for name, x in work.items():
        g = np.asarray(gleaves[name])
        if g.dtype.kind == "c":
            raise ValueError(
                f"grad_fn returned a complex gradient for {name!r} ({g.dtype}); the loss is "
                f"real, so its gradient is real: the imaginary part would be dropped"
            )
        if g.dtype.kind not in "fiub":
            raise ValueError(f"grad_fn returned dtype {g.dtype} for {name!r}, expected floats")
        g = np.array(g, dtype=np.float64)  # a copy: a grad_fn may return its input
        if g.shape != x.shape:
            raise ValueError(
                f"grad_fn returned shape {g.shape} for {name!r}, expected {x.shape} "
                f"(the shape of params {name!r})"
            )
        analytic[name] = g

    f0 = loss()
    estimates = {}
    for name, x in work.items():
        state["where"] = f"when perturbing {name!r}"
        try:
            estimates[name] = estimate(
                loss, x, eps, lambda v: atol + rtol * abs(v), unit, grid, f0=f0
            )
        except NonFinite:
            raise ValueError(
                f"loss_fn returned {state['bad']} when perturbing {name!r}, at every step "
                f"tried; the gradient cannot be checked there"
            ) from None
    digits = _DIGITS["float32" if precision != "float64" else "float64"]
    reports = {
        n: compare(n, analytic[n], estimates[n], work[n], rtol, atol, digits, dtype) for n in work
    }
    return GradcheckReport(
        reports, eps, rtol, atol, dtype,
        _notes(reports, dtype, precision, rtol, atol, cast, moved),
        loss_dtype=precision,
        evaluations=sum(e.evaluations for e in estimates.values()),
    )  # fmt: skip


def check_kernel(
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[[Any, Any], Any],
    inputs: Mapping[str, Any] | Sequence[Any],
    *,
    seed: int = 0,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: str = "float64",
) -> GradcheckReport:
    """Check one kernel pair ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache)``.

    A random upstream gradient ``g`` (standard normal, ``seed``) of the
    output's shape turns the kernel into the scalar loss sum(out * g); its
    finite-difference gradient is the vector-Jacobian product that
    ``backward(g, cache)`` must return. ``forward`` receives read-only views
    of the working copies of the inputs (so the cache holds read-only arrays
    too) and ``backward`` a read-only ``g``: a kernel that writes into its
    inputs, its cache or its upstream gradient raises instead of corrupting
    the check. The output's dtype sets the rounding, as for :func:`gradcheck`.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)``, out of any shape.
    backward : callable
        ``backward(dout, cache)`` -> the gradient of the first input, or a
        tuple of the gradients of the first k inputs (losses take no
        gradient for their target, which comes last). ``dout`` has
        ``out``'s shape; a Python float when ``out`` is a scalar.
    inputs : mapping of str to array_like, or sequence of array_like
        In the forward's argument order; a sequence is named x0, x1, ...
    seed : int
        Seed of the upstream gradient.
    eps, rtol, atol, dtype :
        As for :func:`gradcheck`.

    Returns
    -------
    GradcheckReport
        One :class:`ParamReport` per input that takes a gradient.

    Raises
    ------
    ValueError
        When ``backward`` returns more gradients than there are inputs, or a
        gradient of the wrong shape or a complex one; when ``forward``
        returns NaN or inf at the point or at every step tried; when a
        function writes into a read-only input; on bad ``dtype``, ``eps``,
        ``rtol``, ``atol`` or inputs.
    """
    _check_options(dtype, eps, rtol, atol)
    if not isinstance(inputs, Mapping):
        inputs = {f"x{i}": v for i, v in enumerate(inputs)}
    names = list(inputs)
    work, cast = [], []
    for name, v in inputs.items():
        arr, note = as_float(name, v, dtype, what="input")
        work.append(arr)
        if note:
            cast.append(note)
    views = [_read_only(x) for x in work]
    out, cache = _guarded(forward, "forward", *views)
    precision, unit, grid = _precision(out, dtype)
    eps, rtol, atol = _resolve(precision, eps, rtol, atol)
    moved = []
    if grid != np.dtype(dtype):
        for name, x in zip(names, work, strict=True):
            rounded = x.astype(grid).astype(dtype)
            if not np.array_equal(rounded, x):
                moved.append(name)
            x[...] = rounded
        out, cache = _guarded(forward, "forward", *views)
    g = np.random.default_rng(seed).standard_normal(np.shape(out)).astype(dtype)
    upstream = _read_only(g) if g.ndim else g.item()  # losses take a Python scalar dloss
    grads = _guarded(backward, "backward", upstream, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) > len(names):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(names)} inputs")
    analytic = {}
    for name, x, grad in zip(names, work, grads, strict=False):
        raw = np.asarray(grad)
        if raw.dtype.kind == "c":
            raise ValueError(f"backward returned a complex gradient for {name!r} ({raw.dtype})")
        a = np.array(raw, dtype=np.float64)
        if a.shape != x.shape:
            raise ValueError(
                f"backward returned shape {a.shape} for {name!r}, expected {x.shape} "
                f"(the shape of that input)"
            )
        analytic[name] = a
    bad = {}

    def output() -> np.ndarray:
        # A copy: an identity forward returns its input, which is perturbed in place.
        o = np.array(_guarded(forward, "forward", *views)[0], dtype=np.float64)
        if not np.all(np.isfinite(o)):
            bad["value"] = "NaN or inf"
            raise NonFinite
        return o

    def touched(plus: np.ndarray, minus: np.ndarray) -> float:
        """Size of the weighted outputs whose difference is taken.

        Per output, |plus| + |minus| bounds the rounding of its difference;
        across outputs the errors are weighted by the random signs of g, so
        they add in quadrature (E[(sum g_k e_k)^2] = sum e_k^2 for any
        errors e_k), not in a plain sum. An array output left unchanged was
        not touched (its difference is exactly 0); a scalar output (a loss)
        always counts: a loss offset by 1e12 stays unchanged because
        rounding swallows the perturbation.
        """
        size = (np.abs(plus) + np.abs(minus)) * np.abs(g)
        if size.ndim:
            size = size[plus != minus]
        return float(np.sqrt(np.sum(size * size)))

    try:
        f0 = output()
    except NonFinite:
        raise ValueError("forward returned NaN or inf at the given inputs") from None
    estimates = {}
    for name, x in zip(names, work[: len(grads)], strict=False):
        try:
            estimates[name] = estimate(
                output, x, eps, lambda v: atol + rtol * abs(v), unit, grid,
                reduce=lambda d: float(np.sum(d * g)), magnitude=touched, f0=f0,
            )  # fmt: skip
        except NonFinite:
            raise ValueError(
                f"forward returned NaN or inf when perturbing {name!r}, at every step tried"
            ) from None
    digits = _DIGITS["float32" if precision != "float64" else "float64"]
    points = dict(zip(names, work, strict=False))
    reports = {
        n: compare(n, analytic[n], estimates[n], points[n], rtol, atol, digits, dtype)
        for n in analytic
    }
    return GradcheckReport(
        reports, eps, rtol, atol, dtype,
        _notes(reports, dtype, precision, rtol, atol, cast, moved),
        loss_dtype=precision,
        evaluations=sum(e.evaluations for e in estimates.values()),
    )  # fmt: skip


def numeric_gradient(
    f: Callable[[], Any],
    x: np.ndarray,
    eps: float = 1e-3,
    reduce: Callable[[Any], float] = float,
    magnitude: Callable[[Any, Any], float] | None = None,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference derivative of ``reduce(f())`` by every entry of ``x``, with a bound.

    The step search of :mod:`backprop.gradcheck.estimate`, from ``eps``,
    until the bound is below (atol + rtol |derivative|) / 4 or no step can
    do better.

    Parameters
    ----------
    f : callable
        ``f()`` evaluates the function at the current ``x``; it must read
        ``x`` (or a view of it) each call.
    x : ndarray, shape (...)
        Perturbed in place entry by entry and restored to its exact values.
    eps : float
        First step.
    reduce : callable, optional
        Turns a difference of outputs into a number (default ``float``).
    magnitude : callable, optional
        ``magnitude(a, b)``: the size of the values differenced (default
        |a| + |b|).
    rtol, atol : float
        The accuracy the search aims for.

    Returns
    -------
    grad : ndarray, shape x.shape, float64
        The derivative (at a kink: the central average).
    error : ndarray, shape x.shape, float64
        Its error bound, truncation + rounding (inf where no step could be
        taken).
    """
    first = f()
    _, unit, _ = _precision(first, str(x.dtype) if x.dtype.kind == "f" else "float64")

    def checked() -> Any:
        v = f()
        if not np.all(np.isfinite(np.asarray(v, dtype=np.float64))):
            raise NonFinite
        return v

    est = estimate(
        checked, x, eps, lambda v: atol + rtol * abs(v), unit,
        reduce=reduce, magnitude=magnitude, f0=first,
    )  # fmt: skip
    return est.numeric, est.error
