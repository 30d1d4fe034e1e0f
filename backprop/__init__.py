"""backprop: hand-derived backpropagation, proven by finite differences.

The public API:

- :func:`train_xor_manual`: the notes' manual XOR loop, corrected
  (derivation in :mod:`backprop.xor`);
- :func:`train_xor_many`: many XOR networks at once;
- :func:`train_mlp`: any dense network, minibatches, optimizers, early
  stopping, data-parallel on JAX (derivation in :mod:`backprop.nets`);
- :class:`MLPClassifier` and :class:`MLPRegressor`: drop-ins for scikit-learn's;
- :func:`gradcheck` and :func:`check_kernel`: finite-difference proof of a
  gradient, with a diagnosis of what is wrong;
- :func:`save` and :func:`load`: model files that describe themselves
  (:mod:`backprop.model`);
- :mod:`backprop.data`: the notes' toy data and scikit-learn's bundled sets;
- :func:`register_activation`, :func:`register_head` and
  :func:`register_optimizer`: a user's own kernel, head or optimizer in one
  call, gradient-checked first, then usable everywhere ours are.

The primitives live in :mod:`backprop.kernels` (the repository's top-level
``kernels/`` folder).
"""

from backprop.data import load_dataset, truth_table, xor_blobs, xor_data
from backprop.gradcheck import check_kernel, gradcheck
from backprop.model import Model, load, save
from backprop.nets import Layer, Net, init_params, make_net, predict
from backprop.optim import register_optimizer
from backprop.register import KernelRefused, register_activation, register_head, unregister
from backprop.train import MLPResult, TrainingInterrupted, train_mlp
from backprop.xor import (
    ManyResult,
    XorParams,
    XorResult,
    init_xor_params,
    train_xor_manual,
    train_xor_many,
)

__all__ = [
    "ConvergenceWarning",
    "KernelRefused",
    "Layer",
    "MLPClassifier",
    "MLPRegressor",
    "MLPResult",
    "ManyResult",
    "Model",
    "Net",
    "TrainingInterrupted",
    "XorParams",
    "XorResult",
    "check_kernel",
    "gradcheck",
    "init_params",
    "init_xor_params",
    "load",
    "load_dataset",
    "make_net",
    "predict",
    "register_activation",
    "register_head",
    "register_optimizer",
    "save",
    "train_mlp",
    "train_xor_manual",
    "train_xor_many",
    "truth_table",
    "unregister",
    "xor_blobs",
    "xor_data",
]
__version__ = "0.3.0"

_ESTIMATOR_NAMES = ("ConvergenceWarning", "MLPClassifier", "MLPRegressor")


def __getattr__(name: str) -> object:
    # The estimators import scikit-learn when it is installed (about 0.8 s):
    # loaded on first use, so `import backprop` and the command line start
    # without paying for it.
    if name in _ESTIMATOR_NAMES:
        from backprop import estimator

        value = getattr(estimator, name)
        globals()[name] = value  # looked up once; tools that read __dict__ see it then
        return value
    raise AttributeError(f"module 'backprop' has no attribute {name!r}")
