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
- :mod:`backprop.data`: the notes' toy data and scikit-learn's bundled sets.

The primitives live in :mod:`backprop.kernels` (the repository's top-level
``kernels/`` folder).
"""

from backprop.data import load_dataset, truth_table, xor_blobs, xor_data
from backprop.estimator import ConvergenceWarning, MLPClassifier, MLPRegressor
from backprop.gradcheck import check_kernel, gradcheck
from backprop.many import ManyResult, train_xor_many
from backprop.nets import Layer, Net, init_params, make_net, predict
from backprop.train import MLPResult, train_mlp
from backprop.xor import XorParams, init_xor_params
from backprop.xor_train import XorResult, train_xor_manual

__all__ = [
    "ConvergenceWarning",
    "Layer",
    "MLPClassifier",
    "MLPRegressor",
    "MLPResult",
    "ManyResult",
    "Net",
    "XorParams",
    "XorResult",
    "check_kernel",
    "gradcheck",
    "init_params",
    "init_xor_params",
    "load_dataset",
    "make_net",
    "predict",
    "train_mlp",
    "train_xor_manual",
    "train_xor_many",
    "truth_table",
    "xor_blobs",
    "xor_data",
]
__version__ = "0.2.0"
