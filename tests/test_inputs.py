"""Every bad input the public API was audited with, in one table, plus a fuzz test.

The audit fed 327 inputs to the public entry points; this file lists each case
it named, each case found since (by hand and by the fuzz test below), and the
good behaviours that were once broken. A row names one entry point, its
arguments, and either the exact exception and a regex its message must match
(the message names the argument, or the file or option) or a check of the
result. The tables:

- ``AUDIT``: the cases the audit named, one row each;
- ``FOUND``: bad inputs found on the way (crashes, silently wrong answers,
  unclear messages), each with its fix;
- ``GOOD``: valid inputs that were once refused or answered wrongly.

Entry points are named by string (``ENTRY_POINTS``) and called through
:func:`call`, so that a script can replay the table against an older API.
``"numpy:bce_forward"`` names a kernel of ``get_backend("numpy")``;
``"cli"`` runs ``backprop.cli.main(argv)`` and turns a non-zero exit into
:class:`CliExit`, whose message is what was printed on stderr.

The fuzz test feeds junk (None, strings, negative, huge, NaN and infinite
numbers, bools, lists, dicts, wrong-shape, empty and object arrays) to one
or two arguments at a time of every main entry point and requires that each
call either succeeds with a finite result (or one whose non-finite values
came from a non-finite input) or raises ValueError or TypeError; training
that diverges may raise FloatingPointError, the documented outcome, whose
message must name the learning rate, the epoch or the starting parameters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

try:  # the estimators raise scikit-learn's own error for a bad parameter (a ValueError)
    from sklearn.utils._param_validation import InvalidParameterError as INVALID_PARAMETER
except ImportError:  # pragma: no cover
    INVALID_PARAMETER = ValueError

ENTRY_POINTS = {
    "train_xor_manual": "backprop.xor.manual:train_xor_manual",
    "train_xor_many": "backprop.xor.many:train_xor_many",
    "train_mlp": "backprop.train:train_mlp",
    "perceptron_rule": "backprop.perceptron:perceptron_rule",
    "load_dataset": "backprop.data:load_dataset",
    "xor_blobs": "backprop.data:xor_blobs",
    "truth_table": "backprop.data:truth_table",
    "init_params": "backprop.nets:init_params",
    "init_xor_params": "backprop.xor:init_xor_params",
    "make_net": "backprop.nets:make_net",
    "MLPClassifier": "backprop.estimator:MLPClassifier",
}

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 2))
BINARY = (X[:, :1] > 0).astype(np.float64)
LABELS = np.arange(12) % 3
GATE_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
AND = np.array([0, 0, 0, 1])
HUGE_START = {"w1": np.full((2, 2), 3e38), "b1": np.full(2, 3e38)}
HUGE_START |= {"w2": np.full((2, 1), 3e38), "b2": np.full(1, 3e38)}
XZ = np.c_[X, np.zeros(12)]  # a feature that is always 0: its weights get no gradient
MISSING_DIR = "/nonexistent-backprop-test-dir/params.npz"


class CliExit(Exception):
    """``backprop.cli.main`` returned a non-zero status; the message is its stderr."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(stderr)
        self.code, self.stderr = code, stderr


def resolve(entry: str) -> Any:
    """The function or class an entry name stands for."""
    if ":" in entry and entry.split(":")[0] in ("numpy", "jax"):
        from backprop.kernels import get_backend

        backend, kernel = entry.split(":")
        return getattr(get_backend(backend), kernel)
    module, name = ENTRY_POINTS[entry.split(".")[0]].split(":")
    return getattr(importlib.import_module(module), name)


def call(entry: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
    """Call an entry point; ``MLPClassifier.fit`` etc. take constructor kwargs and method args."""
    kwargs = dict(kwargs or {})
    if entry == "cli":
        from backprop.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's own errors
                code = exc.code
        if code:
            raise CliExit(code, err.getvalue())
        return out.getvalue()
    if entry.startswith("MLPClassifier."):
        method = entry.split(".")[1]
        # tol=1e9, n_iter_no_change=1: stop at the third epoch without a ConvergenceWarning
        base = {"max_iter": 3, "random_state": 0, "tol": 1e9, "n_iter_no_change": 1}
        clf = resolve("MLPClassifier")(**{**base, **kwargs})
        if method == "fit":
            return clf.fit(*args)
        return getattr(clf.fit(X, LABELS), method)(*args)
    return resolve(entry)(*args, **kwargs)


@dataclasses.dataclass(frozen=True)
class Bad:
    entry: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    error: type[BaseException]
    match: str


@dataclasses.dataclass(frozen=True)
class Good:
    entry: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    check: Callable[[Any], bool]


def bad(id_: str, entry: str, *args: Any, error: type = ValueError, match: str, **kwargs: Any):
    return pytest.param(Bad(entry, args, kwargs, error, match), id=id_)


def cli(id_: str, *argv: str, match: str):
    return pytest.param(Bad("cli", argv, {}, CliExit, match), id=id_)


def good(id_: str, entry: str, *args: Any, check: Callable[[Any], bool], **kwargs: Any):
    return pytest.param(Good(entry, args, kwargs, check), id=id_)


def _ln(p: float) -> float:
    return -math.log(p)


def _same_as(entry: str, **kwargs: Any) -> Callable[[Any], bool]:
    """A check: the result's costs equal those of ``entry(epochs=5, **kwargs)``."""

    def check(result: Any) -> bool:
        other = call(entry, (), {"epochs": 5, **kwargs})
        return np.array_equal(result.costs, other.costs)

    return check


# --- the audit's cases, one row each --------------------------------------------------

AUDIT = [
    # BCE with targets outside [0, 1]; probabilities where a public function takes them
    bad(
        "train_mlp-bce-targets-y*2",
        "train_mlp",
        [2, 1],
        X,
        BINARY * 2,
        epochs=2,
        match=r"y must hold values in \[0, 1\] for a sigmoid output with BCE, got .* \[0, 2\]",
    ),
    bad(
        "train_mlp-bce-targets-negative",
        "train_mlp",
        [2, 1],
        X,
        BINARY - 1,
        epochs=2,
        match=r"y must hold values in \[0, 1\]",
    ),
    bad(
        "numpy-bce-target-2",
        "numpy:bce_forward",
        np.array([[0.5]]),
        np.array([[2.0]]),
        match=r"y must hold values in \[0.0, 1.0\], got values in \[2.0",
    ),
    bad(
        "numpy-bce-probability-1.5",
        "numpy:bce_forward",
        np.array([[1.5]]),
        np.array([[1.0]]),
        match=r"p must hold values in \[0.0, 1.0\]",
    ),
    bad(
        "numpy-bce-logits-target-minus-1",
        "numpy:bce_with_logits_forward",
        np.array([[0.5]]),
        np.array([[-1.0]]),
        match=r"y must hold values in \[0.0, 1.0\]",
    ),
    bad(
        "jax-bce-target-2",
        "jax:bce_forward",
        np.array([[0.5]]),
        np.array([[2.0]]),
        match=r"y must hold values in \[0.0, 1.0\]",
    ),
    # seed: negative, float, string
    bad("xor-seed-negative", "train_xor_manual", seed=-1, match="seed must be an integer >= 0"),
    bad("xor-seed-float", "train_xor_manual", seed=1.5, match="seed must be .* got 1.5"),
    bad("xor-seed-string", "train_xor_manual", seed="0", match="seed must be .* got '0'"),
    bad("mlp-seed-negative", "train_mlp", [2, 1], X, BINARY, seed=-1, match="seed must be"),
    bad("many-seed-float", "train_xor_many", 2, epochs=2, seed=0.5, match="seed must be"),
    bad("init_xor_params-seed-string", "init_xor_params", seed="7", match="seed must be"),
    # lr=1e-60 in float32 was a silent no-op
    bad(
        "xor-lr-1e-60-float32",
        "train_xor_manual",
        lr=1e-60,
        match=r"lr=1e-60 is below the smallest normal float32",
    ),
    bad(
        "mlp-lr-1e-60-float32",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        lr=1e-60,
        match=r"lr=1e-60 is below the smallest normal float32",
    ),
    cli("cli-xor-lr-1e-60", "xor", "--lr", "1e-60", match=r"lr=1e-60 is below"),
    # dtype=None quietly meant float64; np.longdouble raised a KeyError
    bad("xor-dtype-None", "train_xor_manual", dtype=None, match="dtype must be .* got None"),
    bad("mlp-dtype-None", "train_mlp", [2, 1], X, BINARY, dtype=None, match="dtype must be"),
    bad("truth_table-dtype-None", "truth_table", "and", dtype=None, match="dtype must be"),
    bad(
        "xor-dtype-longdouble",
        "train_xor_manual",
        dtype=np.longdouble,
        match=r"dtype must be one of float32, float64, got <class 'numpy.longdouble'>",
    ),
    bad("many-dtype-longdouble", "train_xor_many", 2, dtype=np.longdouble, match="dtype must"),
    # steps=10**12 on JAX raised JAX's OverflowError
    bad(
        "xor-jax-epochs-10**12",
        "train_xor_manual",
        backend="jax",
        epochs=10**12,
        match="epochs must be at most 2,147,483,647, got 1,000,000,000,000",
    ),
    bad(
        "many-jax-epochs-10**12",
        "train_xor_many",
        2,
        backend="jax",
        epochs=10**12,
        match="epochs must be at most",
    ),
    bad(
        "mlp-jax-epochs-10**12",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        backend="jax",
        epochs=10**12,
        match="epochs must be at most",
    ),
    # the CLI with a huge step count died with MemoryError
    cli("cli-xor-epochs-10**12", "xor", "--epochs", str(10**12), match="epochs must be at most"),
    # sizes=[2, 10**9, 1] allocated until it failed
    bad(
        "mlp-sizes-2-10**9-1",
        "train_mlp",
        [2, 10**9, 1],
        X,
        BINARY,
        dtype="float64",
        match=r"sizes \[2, 1000000000, 1\] with 12 rows per batch need about .* GiB, more than",
    ),
    # an initialisation that overflows float32 was reported as a learning-rate problem
    bad(
        "xor-init-overflows-float32",
        "train_xor_manual",
        init=HUGE_START,
        epochs=10,
        error=FloatingPointError,
        match=r"at epoch 0, before any update .* the starting parameters overflow float32",
    ),
    bad(
        "jax-xor-init-overflows-float32",
        "train_xor_manual",
        init=HUGE_START,
        epochs=10,
        backend="jax",
        error=FloatingPointError,
        match=r"the starting parameters overflow float32",
    ),
    bad(
        "mlp-init-overflows-float32",
        "train_mlp",
        [2, 1],
        X * 100,
        BINARY,
        output="identity",
        init=[(np.full((2, 1), 1e38), np.zeros(1))],
        epochs=3,
        error=FloatingPointError,
        match=r"in epoch 0, before training could move anything: the initial parameters",
    ),
    # ... and a learning rate that does overflow is still named as the cause
    bad(
        "xor-lr-3e38-diverges",
        "train_xor_manual",
        lr=3e38,
        epochs=100,
        log_every=1,
        error=FloatingPointError,
        match=r"cost became (nan|inf) at epoch \d+ \(lr=3e\+38\); training diverged",
    ),
]

# --- found on the way --------------------------------------------------------------

MANY_LAYERS = [2, *[1] * 200, 1]  # 205 history values an epoch: 2**31 epochs need TiB

FOUND = [
    # crashes: MemoryError, OverflowError, JAX's errors, instead of a message
    bad(
        "many-n_nets-10**12",
        "train_xor_many",
        10**12,
        epochs=1,
        match=r"n_nets=1,000,000,000,000 networks of 2 hidden units need about .* GiB",
    ),
    bad(
        "mlp-epochs-max-history-too-big",
        "train_mlp",
        MANY_LAYERS,
        X,
        BINARY,
        epochs=2**31 - 1,
        match=r"epochs=2,147,483,647 \(each records 205 history values.* need about",
    ),
    bad(
        "jax-mlp-epochs-max-history-too-big",
        "train_mlp",
        MANY_LAYERS,
        X,
        BINARY,
        epochs=2**31 - 1,
        backend="jax",
        match=r"epochs=2,147,483,647 .* need about",
    ),
    bad(
        "MLPClassifier-hidden-10**10",
        "MLPClassifier.fit",
        X,
        LABELS,
        hidden_layer_sizes=(10**10,),
        match=r"sizes \[2, 10000000000, 3\] .* need about .* GiB",
    ),
    cli(
        "cli-fit-epochs-history-too-big",
        "fit",
        "--data",
        "iris",
        "--dtype",
        "float64",
        "--epochs",
        str(2**31 - 1),
        "--no-shuffle",
        "--hidden",
        *["1"] * 200,
        match=r"epochs=2,147,483,647 .* need about",
    ),
    bad(
        "init_params-sizes-zero-width",
        "init_params",
        [2, 0, 1],
        match="each entry of sizes must be an integer >= 1, got 0",
    ),
    bad(
        "init_params-sizes-negative",
        "init_params",
        [2, -1, 1],
        match="each entry of sizes must be an integer >= 1, got -1",
    ),
    bad("init_params-sizes-string", "init_params", "abc", match="sizes must list"),
    bad("init_params-sizes-float", "init_params", [2.5, 3], match="each entry of sizes .* 2.5"),
    bad(
        "init_params-sizes-10**12",
        "init_params",
        [2, 10**12, 1],
        match=r"parameters for sizes \[2, 1000000000000, 1\] need about .* GiB",
    ),
    bad(
        "xor_blobs-n_train-10**12",
        "xor_blobs",
        10**12,
        match=r"n_train \+ n_test = 1,000,000,000,020 points need about",
    ),
    bad(
        "perceptron-lr-1e308-overflows",
        "perceptron_rule",
        GATE_X,
        AND,
        lr=1e308,
        error=FloatingPointError,
        match=r"the weights overflowed float64: lr=1e\+308, .* use a smaller lr",
    ),
    bad(
        "perceptron-exact-lr-1e308-overflows",
        "perceptron_rule",
        GATE_X,
        AND,
        lr=1e308,
        exact=True,
        error=FloatingPointError,
        match=r"overflowed float64: lr=1e\+308",
    ),
    cli("cli-perceptron-lr-1e308", "perceptron", "--lr", "1e308", match=r"lr=1e\+308"),
    bad(
        "mlp-progress-not-callable",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        epochs=2,
        progress=5,
        match="progress must be None or a callable",
    ),
    bad(
        "jax-mlp-progress-not-callable",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        epochs=2,
        progress="print",
        backend="jax",
        match="progress must be None or a callable",
    ),
    bad(
        "mlp-softmax-labels-1e300",
        "train_mlp",
        [2, 3],
        X,
        np.where(LABELS == 2, 1e300, LABELS),
        output="softmax",
        epochs=2,
        match=r"y must hold class labels in \[0, 3\) .* got labels in \[0.0, 1e\+300\]",
    ),
    bad(
        "dtype-comma-string",
        "truth_table",
        "and",
        dtype=",",  # np.dtype(",") raises SyntaxError
        match="dtype must be one of float32, float64, got ','",
    ),
    bad(
        "dtype-deprecated-alias",
        "truth_table",
        "and",
        dtype="a",  # NumPy 2 warns that "a" is deprecated: no warning, one error
        match="dtype must be one of float32, float64, got 'a'",
    ),
    bad(
        "perceptron-epochs-2**40",  # every pass's weights are kept: this never fit
        "perceptron_rule",
        GATE_X,
        AND,
        lr=1e-300,
        epochs=2**40,
        match=r"epochs=1,099,511,627,776 passes, keeping the 3 weights of each pass, need about",
    ),
    bad(
        "jax-sigmoid-huge-int",
        "jax:sigmoid_forward",
        2**70,
        error=TypeError,
        match="z must be a floating-point array",
    ),
    bad(
        "jax-sigmoid-comma-string",
        "jax:sigmoid_forward",
        ",",
        error=TypeError,
        match="z must be a floating-point array .* got ','",
    ),
    bad(
        "jax-mlp-tol-overflows-float32",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        tol=1e300,
        early_stopping=True,
        epochs=2,
        backend="jax",
        match=r"tol must be a finite number in \[0.0, 3.403e\+38\], got 1e\+300",
    ),
    # divergence: raised, naming the real cause
    bad(
        "mlp-adam-eps-underflows-float32",
        "train_mlp",
        [3, 1],
        XZ,
        BINARY,
        optimizer="adam",
        eps=1e-50,
        epochs=2,
        match="eps=1e-50 is below the smallest normal float32 .* use a larger eps",
    ),
    bad(
        "mlp-alpha-diverges-names-alpha",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        alpha=1e30,
        epochs=3,
        error=FloatingPointError,
        match=r"\(lr=1.0, alpha=1e\+30\); training diverged - try a smaller lr or alpha",
    ),
    # silently wrong: accepted, and an answer came back
    bad(
        "mlp-last-update-overflows",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        lr=3e38,
        epochs=1,
        output="identity",
        error=FloatingPointError,
        match=r"the parameters became infinite or NaN in the update of epoch 0 \(lr=3e\+38",
    ),
    bad(
        "many-lr-3e38-diverges",
        "train_xor_many",
        4,
        epochs=20,
        lr=3e38,
        error=FloatingPointError,
        match=r"the cost became inf in \d+ of 4 networks \(lr=3e\+38\); training diverged",
    ),
    bad(
        "numpy-l2-scale-string",
        "numpy:l2_penalty_forward",
        np.ones(2),
        "inf",
        error=TypeError,
        match="scale must be a real number >= 0, got 'inf'",
    ),
    bad(
        "xor_blobs-std-True",
        "xor_blobs",
        std=True,
        match=r"std must be a finite number in \(0.0, .*\], got True",
    ),
    bad(
        "xor_blobs-std-overflows-float32",
        "xor_blobs",
        std=1e300,
        match=r"std must be a finite number in \(0.0, 3.403e\+35\], got 1e\+300",
    ),
    bad(
        "load_dataset-standardize-no",
        "load_dataset",
        "iris",
        standardize="no",
        match="standardize must be True or False, got 'no'",
    ),
    bad(
        "MLPClassifier-early_stopping-yes",
        "MLPClassifier.fit",
        X,
        LABELS,
        early_stopping="yes",
        error=INVALID_PARAMETER,
        match="The 'early_stopping' parameter of MLPClassifier must be an instance of 'bool'",
    ),
    bad(
        "numpy-loss-negative-weights",
        "numpy:mse_forward",
        np.ones((2, 1)),
        np.zeros((2, 1)),
        np.array([[-1.0], [1.0]]),
        match=r"weights must hold values >= 0.0, got values in \[-1.0",
    ),
    bad(
        "numpy-loss-nan-weights",
        "numpy:bce_with_logits_forward",
        np.ones((2, 1)),
        np.zeros((2, 1)),
        np.array([[np.nan], [1.0]]),
        match="weights must hold values >= 0.0",
    ),
    bad(
        "jax-loss-negative-weights",
        "jax:softmax_cross_entropy_forward",
        np.zeros((2, 2)),
        np.eye(2),
        np.array([-1.0, 1.0]),
        match="weights must hold values >= 0.0",
    ),
    cli(
        "cli-fit-process-id-without-coordinator",
        "fit",
        "--data",
        "iris",
        "--process-id",
        "3",
        "--epochs",
        "1",
        match="--process-id needs --coordinator",
    ),
    cli(
        "cli-fit-num-processes-without-coordinator",
        "fit",
        "--data",
        "iris",
        "--num-processes",
        "2",
        "--epochs",
        "1",
        match="--num-processes needs --coordinator",
    ),
    # nothing lost: a --save that cannot be written fails before training, not after
    cli(
        "cli-xor-save-missing-directory",
        "xor",
        "--backend",
        "numpy",
        "--save",
        MISSING_DIR,
        match=r"--save '/nonexistent-backprop-test-dir/params.npz': directory .* does not exist",
    ),
    cli(
        "cli-deep-save-not-npz",
        "deep",
        "--save",
        "params.txt",
        match=r"--save must name a .npz file, got 'params.txt'",
    ),
    cli("cli-xor-load-missing-file", "xor", "--load", MISSING_DIR, match="no parameter file at"),
    # poor messages: a Python or NumPy error that named nothing
    bad("truth_table-gate-list", "truth_table", ["and"], match="gate must be one of"),
    bad(
        "make_net-activation-None",
        "make_net",
        [2, 3, 1],
        None,
        match="activation must be a name, or a sequence of names",
    ),
    bad(
        "make_net-output-list",
        "make_net",
        [2, 1],
        output=["sigmoid"],
        match=r"output must be one of .*got \['sigmoid'\]",
    ),
    bad(
        "MLPClassifier-activation-list",
        "MLPClassifier.fit",
        X,
        LABELS,
        activation=["relu"],
        error=INVALID_PARAMETER,
        match="The 'activation' parameter of MLPClassifier must be a str among",
    ),
    bad(
        "MLPClassifier-labels-of-mixed-types",
        "MLPClassifier.fit",
        X[:4],
        np.array([1, "a", None, 2.0], dtype=object),
        error=TypeError,
        match="'<' not supported between instances of 'str' and 'int'",
    ),
    bad(
        "MLPClassifier-score-y-too-short",
        "MLPClassifier.score",
        X,
        LABELS[:3],
        match=r"Found input variables with inconsistent numbers of samples: \[3, 12\]",
    ),
    bad(
        "numpy-softmax-no-classes",
        "numpy:softmax",
        np.zeros((2, 0)),
        match=r"z must have at least one class on its last axis, got shape \(2, 0\)",
    ),
    bad(
        "jax-sigmoid-None",
        "jax:sigmoid_forward",
        None,
        error=TypeError,
        match=r"z must be a floating-point array \(float32 or float64\), got None",
    ),
    bad(
        "jax-matmul-object-array",
        "jax:matmul_forward",
        np.array([[1.0, None]], dtype=object),
        np.ones((2, 2)),
        error=TypeError,
        match=r"x must be a floating-point array",
    ),
    # handled well already; listed so that they stay so
    bad(
        "mlp-X-nan",
        "train_mlp",
        [2, 1],
        np.where(X > 1, np.nan, X),
        BINARY,
        match=r"X .*(NaN|finite)",
    ),
    bad("mlp-X-1-D", "train_mlp", [2, 1], X[:, 0], BINARY, match=r"X must have shape \(N, 2\)"),
    bad(
        "mlp-X-empty", "train_mlp", [2, 1], X[:0], BINARY[:0], match=r"X must have shape .* N >= 1"
    ),
    bad(
        "mlp-X-object",
        "train_mlp",
        [2, 1],
        X.astype(object),
        BINARY,
        match="X must hold .*real numbers",
    ),
    bad("mlp-y-string", "train_mlp", [2, 1], X, "abc", match="y must be a numeric array"),
    bad(
        "mlp-softmax-label-out-of-range",
        "train_mlp",
        [2, 3],
        X,
        LABELS + 1,
        output="softmax",
        match=r"y must hold class labels in \[0, 3\)",
    ),
    bad("mlp-batch_size-0", "train_mlp", [2, 1], X, BINARY, batch_size=0, match="batch_size must"),
    bad("mlp-shuffle-yes", "train_mlp", [2, 1], X, BINARY, shuffle="yes", match="shuffle must"),
    bad("mlp-alpha-nan", "train_mlp", [2, 1], X, BINARY, alpha=np.nan, match="alpha must"),
    bad("xor-hidden-0", "train_xor_manual", hidden=0, match="hidden must be an integer >= 1"),
    bad("xor-epochs-float", "train_xor_manual", epochs=10.5, match="epochs must be an integer"),
    bad("xor-backend-torch", "train_xor_manual", backend="torch", match="backend must be one of"),
    bad("xor-init-list", "train_xor_manual", init=[1, 2], match="init must be a mapping"),
    bad(
        "many-devices-with-numpy",
        "train_xor_many",
        2,
        devices=2,
        match=r"devices=2 needs backend='jax'",
    ),
    bad("perceptron-y-not-0-1", "perceptron_rule", GATE_X, [0, 0, 0, 2], match="y must hold 0/1"),
    bad("perceptron-lr-0", "perceptron_rule", GATE_X, AND, lr=0, match="lr must be"),
    bad("load_dataset-name", "load_dataset", "mnist", match="name must be one of digits"),
    bad("load_dataset-test_size-1", "load_dataset", "iris", test_size=1.0, match="test_size must"),
    bad("xor_blobs-n_train-0", "xor_blobs", 0, match="n_train must be an integer >= 1"),
    bad(
        "MLPClassifier-predict-wrong-width",
        "MLPClassifier.predict",
        np.zeros((3, 5)),
        match="X has 5 features, but MLPClassifier is expecting 2 features as input",
    ),
    bad(
        "MLPClassifier-predict-nan",
        "MLPClassifier.predict",
        np.full((3, 2), np.nan),
        match="Input X contains NaN",
    ),
    bad(
        "numpy-matmul-int",
        "numpy:matmul_forward",
        np.ones((2, 2), int),
        np.ones((2, 2)),
        error=TypeError,
        match="x must be a floating-point array .* got dtype int64",
    ),
    bad(
        "numpy-matmul-shapes",
        "numpy:matmul_forward",
        np.ones((4, 3)),
        np.ones((2, 5)),
        match=r"x's columns \(3\) must equal w's rows \(2\)",
    ),
    bad(
        "numpy-bce-target-nan",
        "numpy:bce_forward",
        np.array([[0.5]]),
        np.array([[np.nan]]),
        match=r"y must hold values in \[0.0, 1.0\], got values in \[nan",
    ),
    bad(
        "jax-bce-logits-shape",
        "jax:bce_with_logits_forward",
        np.zeros((4, 1)),
        np.zeros(4),
        match=r"y must have the shape of z, \(4, 1\), got \(4,\)",
    ),
    cli("cli-xor-hidden-10**9", "xor", "--hidden", str(10**9), match="hidden must be at most"),
    cli("cli-xor-seed-float", "xor", "--seed", "1.5", match=r"argument --seed: .*'1.5'"),
    cli("cli-fit-test-size-2", "fit", "--data", "iris", "--test-size", "2", match="test-size"),
    cli(
        "cli-fit-hidden-10**9",
        "fit",
        "--data",
        "iris",
        "--hidden",
        str(10**9),
        "--dtype",
        "float64",
        match=r"sizes \[4, 1000000000, 3\] .* need about",
    ),
]

# --- good behaviours that were once broken --------------------------------------------

GOOD = [
    good(
        "xor-lr-float32-scalar",
        "train_xor_manual",
        lr=np.float32(0.5),
        epochs=5,
        check=lambda r: r.lr == 0.5,
    ),
    good(
        "mlp-lr-float32-scalar",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        lr=np.float32(0.5),
        epochs=2,
        check=lambda r: r.epochs == 2 and np.all(np.isfinite(r.losses)),
    ),
    good(
        "numpy-bce-float32-p-1e-12",
        "numpy:bce_forward",
        np.array([[1e-12]], np.float32),
        np.array([[1.0]], np.float32),
        check=lambda r: math.isclose(float(r[0]), _ln(1e-12), rel_tol=1e-6),  # 27.63, not 15.94
    ),
    good(
        "jax-bce-float32-p-1e-12",
        "jax:bce_forward",
        np.array([[1e-12]], np.float32),
        np.array([[1.0]], np.float32),
        check=lambda r: math.isclose(float(r[0]), _ln(1e-12), rel_tol=1e-6),
    ),
    good(
        "numpy-bce-logits-float32-mean-of-large-logits",
        "numpy:bce_with_logits_forward",
        np.full((4, 1), 2e38, np.float32),
        np.zeros((4, 1), np.float32),
        check=lambda r: math.isclose(float(r[0]), 2e38, rel_tol=1e-6),  # not inf
    ),
    good(
        "jax-bce-logits-float32-mean-of-large-logits",
        "jax:bce_with_logits_forward",
        np.full((4, 1), 2e38, np.float32),
        np.zeros((4, 1), np.float32),
        check=lambda r: math.isclose(float(r[0]), 2e38, rel_tol=1e-6),
    ),
    good(
        "xor-seed-numpy-int64",
        "train_xor_manual",
        seed=np.int64(3),
        epochs=5,
        check=_same_as("train_xor_manual", seed=3),
    ),
    good(
        "xor-hidden-numpy-int64",
        "train_xor_manual",
        hidden=np.int64(3),
        epochs=5,
        check=lambda r: r.w1.shape == (2, 3),
    ),
    good(
        "mlp-seed-numpy-uint64",
        "train_mlp",
        [2, 1],
        X,
        BINARY,
        seed=np.uint64(7),
        epochs=2,
        check=lambda r: r.epochs == 2,
    ),
    good(
        "make_net-sizes-numpy-array",
        "make_net",
        np.array([2, 3, 1]),
        check=lambda net: net.sizes == (2, 3, 1),
    ),
    good(
        "load_dataset-test_size-float32",
        "load_dataset",
        "iris",
        test_size=np.float32(0.25),
        check=lambda d: d.X_test.shape[0] == 38,
    ),
    good(
        "xor_blobs-std-float32",
        "xor_blobs",
        8,
        4,
        std=np.float32(0.3),
        check=lambda d: d[0].shape == (8, 2) and np.all(np.isfinite(d[0])),
    ),
    good(
        "MLPClassifier-validation_fraction-float32",
        "MLPClassifier.fit",
        np.tile(X, (2, 1)),
        np.tile(LABELS, 2),
        early_stopping=True,
        validation_fraction=np.float32(0.25),
        check=lambda clf: len(clf.validation_scores_) >= 1,
    ),
    good(
        "numpy-bce-longdouble",  # the audit's KeyError: a clip bound looked up by dtype name
        "numpy:bce_forward",
        np.full((2, 1), 0.5, np.longdouble),
        np.array([[0.0], [1.0]], np.longdouble),
        check=lambda r: math.isclose(float(r[0]), math.log(2), rel_tol=1e-12),
    ),
    good(
        "numpy-sigmoid-nan-stays-nan",
        "numpy:sigmoid_forward",
        np.array([np.nan, 0.0]),
        check=lambda r: np.isnan(r[0][0]) and r[0][1] == 0.5,
    ),
    good(
        "numpy-loss-zero-weights-leave-rows-out",
        "numpy:mse_forward",
        np.array([[1.0], [5.0]]),
        np.zeros((2, 1)),
        np.array([[1.0], [0.0]]),
        check=lambda r: float(r[0]) == 1.0,
    ),
    good(
        "cli-xor-runs",
        "cli",
        "xor",
        "--backend",
        "numpy",
        "--epochs",
        "20",
        "--quiet",
        check=lambda out: "accuracy" in out,
    ),
]


def _check_bad(row: Bad) -> None:
    with pytest.raises(row.error, match=row.match) as info:
        call(row.entry, row.args, row.kwargs)
    assert type(info.value) is row.error  # exactly, not a subclass
    if isinstance(info.value, CliExit):
        assert info.value.code == 2
        assert len(info.value.stderr.strip().splitlines()) == 1, info.value.stderr
        assert "Traceback" not in info.value.stderr


@pytest.mark.parametrize("row", AUDIT)
def test_audit_case_gets_a_clear_error_naming_the_argument(row: Bad) -> None:
    _check_bad(row)


@pytest.mark.parametrize("row", FOUND)
def test_bad_input_found_since_gets_a_clear_error(row: Bad) -> None:
    _check_bad(row)


@pytest.mark.parametrize("row", GOOD)
def test_good_input_gives_the_right_answer(row: Good) -> None:
    assert row.check(call(row.entry, row.args, row.kwargs))


# --- fuzz ------------------------------------------------------------------------------

JUNK = [
    None,
    "",
    "abc",
    "1",
    -1,
    0,
    -0.5,
    1.5,
    10**12,
    -(10**12),
    2**64,
    1e300,
    -1e300,
    3e38,
    1e30,
    1e-30,
    1e-300,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    [],
    [1, 2],
    (),
    {},
    np.array([]),
    np.zeros((0, 2)),
    np.zeros((3, 3, 3)),
    np.array(["a", "b"]),
    np.array([1.0, None], dtype=object),
    np.float32("nan"),
    np.int64(-5),
    1 + 1j,
    object(),
]
ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
JUNK_VALUES = st.one_of(
    st.sampled_from(JUNK),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(max_value=0),
    st.integers(min_value=2**40),  # no valid count this large fits in memory or time
    st.text(max_size=3),
    st.lists(st.integers(-3, 3), max_size=3),
    ARRAYS,
)


@dataclasses.dataclass(frozen=True)
class Target:
    """An entry point to fuzz: valid base keyword arguments and the arguments to spoil."""

    entry: str
    base: dict[str, Any]
    spoil: tuple[str, ...]


FUZZ = [
    Target(
        "train_xor_manual",
        {"epochs": 3, "log_every": 1},
        ("backend", "epochs", "lr", "hidden", "seed", "init", "dtype", "log_every"),
    ),
    Target(
        "train_xor_many",
        {"n_nets": 3, "epochs": 3},
        ("n_nets", "backend", "epochs", "lr", "seed", "hidden", "dtype", "devices"),
    ),
    Target(
        "train_mlp",
        {"sizes": [2, 3, 1], "X": X, "y": BINARY, "epochs": 2},
        (
            "sizes",
            "X",
            "y",
            "activation",
            "output",
            "loss",
            "lr",
            "epochs",
            "batch_size",
            "shuffle",
            "optimizer",
            "momentum",
            "beta1",
            "beta2",
            "eps",
            "alpha",
            "validation",
            "early_stopping",
            "monitor",
            "patience",
            "tol",
            "seed",
            "init",
            "init_scheme",
            "dtype",
            "devices",
            "progress",
        ),
    ),
    Target(
        "train_mlp",
        {"sizes": [2, 3], "X": X, "y": LABELS, "epochs": 2, "output": "softmax"},
        ("y", "batch_size", "validation", "lr", "alpha"),
    ),
    Target(
        "MLPClassifier.fit",
        {"X": X, "y": LABELS},
        (
            "X",
            "y",
            "hidden_layer_sizes",
            "activation",
            "solver",
            "alpha",
            "batch_size",
            "learning_rate_init",
            "max_iter",
            "shuffle",
            "random_state",
            "tol",
            "momentum",
            "early_stopping",
            "validation_fraction",
            "beta_1",
            "n_iter_no_change",
            "dtype",
        ),
    ),
    Target("MLPClassifier.predict", {"X": X}, ("X",)),
    Target(
        "perceptron_rule",
        {"X": GATE_X, "y": AND, "epochs": 5},
        ("X", "y", "w0", "lr", "epochs", "exact"),
    ),
    Target("xor_blobs", {"n_train": 8, "n_test": 4}, ("n_train", "n_test", "std", "seed", "dtype")),
    Target("truth_table", {"gate": "xor"}, ("gate", "dtype")),
    Target("init_params", {"sizes": [2, 3, 1]}, ("sizes", "seed", "dtype", "scheme")),
    Target("init_xor_params", {}, ("hidden", "seed", "dtype")),
    Target("make_net", {"sizes": [2, 3, 1]}, ("sizes", "activation", "output", "loss")),
    Target("load_dataset", {"name": "iris"}, ("name", "test_size", "seed", "standardize", "dtype")),
    Target(
        "numpy:bce_forward", {"p": np.full((3, 1), 0.5), "y": BINARY[:3]}, ("p", "y", "weights")
    ),
    Target(
        "numpy:softmax_cross_entropy_forward",
        {"z": np.zeros((3, 2)), "y": np.eye(2)[[0, 1, 0]]},
        ("z", "y", "weights"),
    ),
    Target("numpy:matmul_forward", {"x": np.ones((3, 2)), "w": np.ones((2, 4))}, ("x", "w")),
    Target("numpy:l2_penalty_forward", {"w": np.ones((2, 2)), "scale": 0.1}, ("w", "scale")),
    Target("jax:sigmoid_forward", {"z": np.zeros(3)}, ("z",)),
]
METHOD_ARGS = {"MLPClassifier.fit": ("X", "y"), "MLPClassifier.predict": ("X",)}
"""Arguments of an estimator's method; its other keyword arguments go to the constructor."""


def _floats(value: Any) -> list[np.ndarray]:
    """Every float array reachable in ``value`` (results, inputs, containers of them)."""
    if isinstance(value, (str, bytes)) or value is None:
        return []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Not MLPResult.grad_norms: in float32 the norm of a finite gradient above
        # ~1.8e19 overflows (sqrt of a sum of squares), a diagnostic's limit, not the model's
        names = [f.name for f in dataclasses.fields(value) if f.name != "grad_norms"]
        return _floats([getattr(value, name) for name in names])
    if isinstance(value, dict):
        return _floats(list(value.values()))
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _floats(v)]
    if hasattr(value, "coefs_"):  # a fitted MLPClassifier
        return _floats([value.coefs_, value.intercepts_, value.loss_curve_])
    with contextlib.suppress(TypeError, ValueError):
        a = np.asarray(value)
        if a.dtype.kind in "fc":
            return [a]
    return []


def _fuzz_call(target: Target, spoiled: dict[str, Any]) -> Any:
    kwargs = {**target.base, **spoiled}
    names = METHOD_ARGS.get(target.entry, ())
    args = tuple(kwargs.pop(name) for name in names)
    with warnings.catch_warnings():
        # documented warnings (MLPClassifier clips a batch_size larger than the data)
        # are fine; a RuntimeWarning (overflow, invalid value) stays an error
        warnings.simplefilter("ignore", UserWarning)
        if target.entry.startswith(("numpy:", "jax:")):
            with np.errstate(over="ignore", invalid="ignore"):
                return call(target.entry, tuple(kwargs.values()))
        return call(target.entry, args, kwargs)


def _tame(values: list[Any], kernel: bool) -> bool:
    """No input is NaN or infinite (for a kernel: nor so large that a product overflows).

    A kernel's inf is the correctly rounded value of a product of three numbers
    (``scale * w * w``) beyond the dtype's range; a training function must not
    return one.
    """
    for a in _floats(values):
        if not np.all(np.isfinite(a)):
            return False
        if kernel and a.size and np.abs(a).max() > np.cbrt(np.finfo(a.dtype).max) / 1e3:
            return False
    return True


@pytest.mark.parametrize("target", FUZZ, ids=lambda t: t.entry)
@given(data=st.data())
def test_junk_arguments_succeed_or_raise_value_or_type_error(target: Target, data) -> None:
    names = data.draw(
        st.lists(st.sampled_from(target.spoil), min_size=1, max_size=2, unique=True), "spoiled"
    )
    spoiled = {name: data.draw(JUNK_VALUES, name) for name in names}
    try:
        result = _fuzz_call(target, spoiled)
    except (ValueError, TypeError):
        return
    except FloatingPointError as exc:  # training that diverged: the documented outcome
        assert any(word in str(exc) for word in ("lr", "epoch", "starting", "initial")), exc
        return
    kernel = target.entry.startswith(("numpy:", "jax:"))
    if _tame([*spoiled.values(), *target.base.values()], kernel):
        for a in _floats(result):
            assert np.all(np.isfinite(a)), f"{target.entry}({spoiled}) returned {a}"


CLI_BASES = {
    "xor": (
        ["xor", "--backend", "numpy", "--epochs", "3", "--quiet"],
        ["--epochs", "--lr", "--hidden", "--seed", "--dtype", "--log-every", "--backend"],
    ),
    "fit": (
        ["fit", "--data", "iris", "--epochs", "2", "--quiet"],
        ["--lr", "--alpha", "--momentum", "--batch-size", "--patience", "--test-size", "--hidden"],
    ),
    "perceptron": (["perceptron", "--quiet"], ["--lr", "--epochs", "--gate"]),
}
CLI_JUNK = st.one_of(
    st.sampled_from(
        ["-1", "0", "-0", "1.5", "1e308", "1e-60", "nan", "inf", "-inf", "abc", "", "10**12"]
    ),
    st.sampled_from([str(2**31), str(2**70), "1e39", "float16", "all", "none"]),
    st.text(max_size=4),
)


@pytest.mark.parametrize("command", list(CLI_BASES))
@given(data=st.data())
def test_junk_options_exit_0_or_2_with_one_line(command: str, data) -> None:
    argv, options = CLI_BASES[command]
    option = data.draw(st.sampled_from(options), "option")
    value = data.draw(CLI_JUNK, "value")
    try:
        call("cli", (*argv, option, value))
    except CliExit as exc:
        assert exc.code == 2, exc.stderr
        assert len(exc.stderr.strip().splitlines()) == 1, exc.stderr
        assert "Traceback" not in exc.stderr
