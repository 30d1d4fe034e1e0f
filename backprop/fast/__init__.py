"""Faster transcriptions of the two derivations, listed in one place.

The project derives each gradient once: :func:`backprop.xor.xor_loss_and_grads`
for the notes' 2-H-1 network and :func:`backprop.nets.loss_and_grads` for
every other network. A transcription computes the same numbers in a form
that runs faster on some backend; it derives nothing new. Each one exposes
``loss_and_grads`` with its source's signature, and ``tests/test_fast.py``
holds every entry of :data:`TRANSCRIPTIONS` to its source on random and on
saturated inputs, in float32 and float64, on every backend it runs on:
the loss and every gradient.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Transcription:
    """A fast path: its module, the derivation it transcribes, where it runs, who uses it."""

    module: str
    source: str
    backends: tuple[str, ...]
    used_by: str


TRANSCRIPTIONS = (
    Transcription(
        "backprop.xor.inplace",
        "backprop.xor.xor_loss_and_grads",
        ("numpy",),
        "train_xor_manual on NumPy: in place, biases folded into the weights",
    ),
    Transcription(
        "backprop.xor.single",
        "backprop.xor.xor_loss_and_grads",
        ("numpy", "jax"),
        "train_xor_manual on JAX: whole arrays, the loop compiled",
    ),
    Transcription(
        "backprop.xor.stacked",
        "backprop.xor.xor_loss_and_grads",
        ("numpy", "jax"),
        "train_xor_many on both: unrolled over the rows, networks on the last axis",
    ),
    Transcription(
        "backprop.fast.mlp_inplace",
        "backprop.nets.loss_and_grads",
        ("numpy",),
        "train_mlp on NumPy: flat parameters, buffers allocated once, optimizer in place",
    ),
)
