"""backprop: hand-derived backpropagation, proven by finite differences.

The public API: :func:`train_xor_manual` (the notes' manual XOR loop,
corrected) and the datasets in :mod:`backprop.data`. The primitives live in
the sibling package :mod:`kernels`.
"""

from backprop.data import truth_table, xor_data
from backprop.gradcheck import check_kernel, gradcheck
from backprop.many import ManyResult, train_xor_many
from backprop.xor import XorParams, XorResult, init_xor_params, train_xor_manual

__all__ = [
    "ManyResult",
    "XorParams",
    "XorResult",
    "check_kernel",
    "gradcheck",
    "init_xor_params",
    "train_xor_manual",
    "train_xor_many",
    "truth_table",
    "xor_data",
]
__version__ = "0.1.0"
