"""Ready-made networks built from :mod:`backprop.layers`: a CNN for small images,
a small GPT for characters, and the "backprop ninja" character MLP.
"""

from __future__ import annotations

from backprop.layers import (
    Activation,
    BatchNorm,
    CausalSelfAttention,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    MaxPool2d,
    PositionEmbedding,
)
from backprop.network import Residual, Serial, serial


def cnn(
    classes: int = 10, filters: tuple[int, int] = (16, 32), hidden: int = 0, dropout: float = 0.25
) -> Serial:
    """Two 3x3 convolutions with batch norm and ReLU, 2x2 max pooling, dropout, a dense head.

    Images (N, C, H, W) -> logits (N, classes)::

        Conv2d(f1, 3, padding=1) BatchNorm ReLU
        Conv2d(f2, 3, padding=1) BatchNorm ReLU
        MaxPool2d(2) Dropout(dropout) Flatten [Dense(hidden) ReLU Dropout] Dense(classes)

    For the 8x8 digits: (N, 1, 8, 8) -> (N, 32, 4, 4) -> 512 features -> 10.
    """
    head = [Dense(hidden), Activation("relu"), Dropout(dropout)] if hidden else []
    return serial(
        Conv2d(filters[0], 3, padding=1),
        BatchNorm(),
        Activation("relu"),
        Conv2d(filters[1], 3, padding=1),
        BatchNorm(),
        Activation("relu"),
        MaxPool2d(2),
        Dropout(dropout),
        Flatten(),
        *head,
        Dense(classes, gain=1.0),
    )


def gpt(vocab: int, context: int, dim: int = 128, heads: int = 4, blocks: int = 2) -> Serial:
    """A character-level GPT: token ids (N, T) -> logits (N, T, vocab), T <= context.

    Token embedding + position embedding, ``blocks`` pre-norm blocks
    ``x + attn(LN(x))``, ``x + MLP(LN(x))`` (causal multi-head attention;
    MLP ``Dense(4 dim) GELU Dense(dim)``), a final layer norm and a dense
    head. The residual branches' last projections are initialised with
    variance ``1 / (2 blocks dim)`` (GPT-2's depth scaling).
    """
    gain = 1.0 / (2 * blocks)
    body = []
    for _ in range(blocks):
        body.append(Residual(LayerNorm(), CausalSelfAttention(heads, proj_gain=gain)))
        body.append(
            Residual(
                LayerNorm(), Dense(4 * dim, gain=2.0), Activation("gelu"), Dense(dim, gain=gain)
            )
        )
    return serial(
        Embedding(vocab, dim, scale=0.02),
        PositionEmbedding(context),
        *body,
        LayerNorm(),
        Dense(vocab, gain=1.0),
    )


def ninja(vocab: int, context: int = 3, dim: int = 10, hidden: int = 64) -> Serial:
    """Karpathy's "backprop ninja" MLP: the previous ``context`` characters -> the next one.

    Ids (N, context) -> Embedding(vocab, dim) (N, context, dim) -> Flatten
    (N, context dim) -> Dense(hidden) -> BatchNorm -> tanh -> Dense(vocab) logits.
    """
    return serial(
        Embedding(vocab, dim),
        Flatten(),
        Dense(hidden, gain=5.0 / 3.0),
        BatchNorm(),
        Activation("tanh"),
        Dense(vocab, gain=0.1),
    )
