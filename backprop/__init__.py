"""backprop: hand-derived backpropagation, proven by finite differences.

The public API: :func:`train_xor_manual` (the notes' manual XOR loop,
corrected) and the datasets in :mod:`backprop.data`. The primitives live in
the sibling package :mod:`kernels`.
"""

from backprop.data import truth_table, xor_data
from backprop.xor import XorParams, XorResult, init_xor_params, train_xor_manual

__all__ = [
    "XorParams",
    "XorResult",
    "init_xor_params",
    "train_xor_manual",
    "truth_table",
    "xor_data",
]
__version__ = "0.1.0"
