"""The notes' XOR network, in one package: the derivation, its trainers, its transcriptions.

- :mod:`backprop.xor.derivation`: the 2-H-1 sigmoid network's forward and
  hand-derived backward (:func:`xor_loss_and_grads`) and the written-out
  update (:func:`xor_step`), the reference everything below is held to;
- :mod:`backprop.xor.manual`: :func:`train_xor_manual`, the notes' loop;
- :mod:`backprop.xor.many`: :func:`train_xor_many`, many networks at once;
- :mod:`backprop.xor.inplace`, :mod:`backprop.xor.single`,
  :mod:`backprop.xor.stacked`: faster transcriptions of the derivation (NumPy
  in place; whole arrays, compiled on JAX; networks on the last axis),
  listed in :data:`backprop.fast.TRANSCRIPTIONS` and tested against it.
"""

from backprop.xor.derivation import (
    DEFAULT_LR,
    MAX_HIDDEN,
    XorParams,
    init_xor_params,
    xor_forward,
    xor_loss_and_grads,
    xor_predict,
    xor_step,
)
from backprop.xor.manual import XorResult, train_xor_manual
from backprop.xor.many import ManyResult, init_xor_many, train_xor_many

__all__ = [
    "DEFAULT_LR",
    "MAX_HIDDEN",
    "ManyResult",
    "XorParams",
    "XorResult",
    "init_xor_many",
    "init_xor_params",
    "train_xor_manual",
    "train_xor_many",
    "xor_forward",
    "xor_loss_and_grads",
    "xor_predict",
    "xor_step",
]
