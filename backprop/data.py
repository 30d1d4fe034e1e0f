"""Datasets: the notes' toy problems, generated locally and seeded, and the
real data sets that ship inside scikit-learn.

- :func:`truth_table`, :func:`xor_data` and :func:`xor_blobs` return
  ``X`` (N, 2) and ``y`` (N, 1) in the requested float dtype. Truth tables
  have the rows (0, 0), (0, 1), (1, 0), (1, 1).
- :func:`load_dataset` loads digits, iris, wine or breast cancer from
  scikit-learn's bundled files (no download; ``pip install
  'backprop-by-hand[data]'``), splits them into train and test sets
  (stratified, seeded) and standardises the features with the training
  set's mean and standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backprop._validate import check_dtype, check_fits, check_number, check_seed

TRUTH_TABLE_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
_TARGETS = {
    "and": np.array([0, 0, 0, 1]),
    "or": np.array([0, 1, 1, 1]),
    "xor": np.array([0, 1, 1, 0]),
}


def truth_table(gate: str, dtype: object = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (4, 2) and targets y (4, 1) of ``gate`` in "and", "or", "xor"."""
    if not isinstance(gate, str) or gate not in _TARGETS:
        raise ValueError(f"gate must be one of {', '.join(map(repr, _TARGETS))}, got {gate!r}")
    dt = check_dtype(dtype)
    return TRUTH_TABLE_INPUTS.astype(dt), _TARGETS[gate].reshape(4, 1).astype(dt)


def xor_data(dtype: object = "float32") -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table: X (4, 2), y (4, 1) = [[0], [1], [1], [0]]."""
    return truth_table("xor", dtype)


BLOB_CENTRES = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
BLOB_LABELS = np.array([0, 0, 1, 1])  # same-sign corners 0, opposite-sign corners 1


def xor_blobs(
    n_train: int = 80,
    n_test: int = 20,
    *,
    std: float = 0.3,
    seed: int = 0,
    dtype: object = "float32",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Four Gaussian blobs centred at (+-1, +-1) with standard deviation ``std``.

    Points from the centres (1, 1) and (-1, -1) are labelled 0, from (1, -1)
    and (-1, 1) labelled 1 (XOR of the signs). Points are spread evenly over
    the four blobs (the remainder going to the first blobs), shuffled, and
    split into ``(X_train (n_train, 2), y_train (n_train, 1), X_test
    (n_test, 2), y_test (n_test, 1))``. Same ``seed``, same data.
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    dt = check_dtype(dtype)
    # 1000 standard deviations from a centre is never drawn: the points fit in dtype
    std = check_number("std", std, low=0.0, low_open=True, high=float(np.finfo(dt).max) / 1e3)
    rng = np.random.default_rng(check_seed(seed))
    total = int(n_train) + int(n_test)
    # X in float64 and dtype, the labels and blob indices, the permutation
    check_fits(f"n_train + n_test = {total:,} points", total * (6 * 8 + 2 * dt.itemsize))
    blob = np.arange(total) % 4
    X = BLOB_CENTRES[blob] + std * rng.standard_normal((total, 2))
    y = BLOB_LABELS[blob].reshape(-1, 1)
    order = rng.permutation(total)
    X, y = X[order].astype(dt), y[order].astype(dt)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


DATASETS = ("digits", "iris", "wine", "breast_cancer")


@dataclass(frozen=True, repr=False)
class Dataset:
    """A labelled data set split into train and test parts.

    ``X_train`` (N_train, D), ``X_test`` (N_test, D): features (standardised
    when loaded so); ``y_train``, ``y_test``: integer class indices in
    [0, C); ``classes``: the class names, ``classes[k]`` for index k;
    ``mean`` and ``scale`` (D,): what standardisation subtracted and divided
    by (0 and 1 when it was not applied).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {self.X_train.shape[0]} train / {self.X_test.shape[0]} "
            f"test rows, {self.n_features} features, {self.n_classes} classes, "
            f"{self.X_train.dtype})"
        )


def load_dataset(
    name: str,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
    dtype: object = "float64",
) -> Dataset:
    """Load one of scikit-learn's bundled data sets, split and standardised.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: "digits" (1797 8x8 images, 64 features, 10
        classes), "iris" (150 x 4, 3 classes), "wine" (178 x 13, 3 classes),
        "breast_cancer" (569 x 30, 2 classes; "breast-cancer" also accepted).
    test_size : float
        Fraction of the rows held out for testing, in (0, 1); both parts
        must hold at least one row of every class.
    seed : int
        Seed of the split: the split is scikit-learn's ``train_test_split``
        with ``stratify=y`` and ``random_state=seed``, so it is the split a
        scikit-learn user gets with the same seed.
    standardize : bool
        Subtract the training rows' mean and divide by their standard
        deviation (features with zero spread are left unscaled).
    dtype : "float32" or "float64"

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name (listing the valid ones), or a bad test_size
        (naming how many rows each part would get), seed or dtype.
    ImportError
        When scikit-learn, which ships the data, is not installed; the message
        gives the ``pip install`` extra.
    """
    if isinstance(name, str) and name.replace("-", "_") in DATASETS:
        name = name.replace("-", "_")
    if name not in DATASETS:
        raise ValueError(f"name must be one of {', '.join(DATASETS)}, got {name!r}")
    if not (
        isinstance(test_size, (float, np.floating))
        and np.isfinite(test_size)
        and 0.0 < test_size < 1.0
    ):
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
    if not isinstance(standardize, (bool, np.bool_)):
        raise ValueError(f"standardize must be True or False, got {standardize!r}")
    seed = check_seed(seed)
    dt = check_dtype(dtype)
    datasets, model_selection = require_sklearn("loading the bundled data sets")
    bunch = getattr(datasets, f"load_{name}")()
    X, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    n, n_classes = X.shape[0], int(np.unique(y).shape[0])
    n_test = math.ceil(float(test_size) * n)  # how scikit-learn rounds
    if n_test < n_classes or n - n_test < n_classes:
        raise ValueError(
            f"test_size={float(test_size):g} splits {name}'s {n} rows into {n - n_test} train and "
            f"{n_test} test rows; a stratified split needs at least {n_classes} (one per class) "
            f"in each: use a test_size between about {n_classes / n:.3g} and "
            f"{1 - n_classes / n:.3g}"
        )
    try:
        X_train, X_test, y_train, y_test = model_selection.train_test_split(
            X, y, test_size=float(test_size), stratify=y, random_state=seed
        )
    except ValueError as exc:  # pragma: no cover - the check above covers the known cases
        raise ValueError(f"cannot split {name} with test_size={test_size!r}: {exc}") from None
    mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    if standardize:
        mean, scale = X_train.mean(axis=0), X_train.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        X_train, X_test = (X_train - mean) / scale, (X_test - mean) / scale
    classes = tuple(str(c) for c in getattr(bunch, "target_names", np.unique(y)))
    return Dataset(
        name, X_train.astype(dt), y_train, X_test.astype(dt), y_test, classes, mean, scale
    )


def require_sklearn(what: str) -> tuple[object, object]:
    """``(sklearn.datasets, sklearn.model_selection)``; an ``ImportError`` saying how otherwise."""
    try:
        from sklearn import datasets, model_selection
    except ImportError as exc:
        raise ImportError(
            f"{what} needs scikit-learn: pip install 'backprop-by-hand[data]' "
            "(or pip install scikit-learn)"
        ) from exc
    return datasets, model_selection
