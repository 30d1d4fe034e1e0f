"""get_backend: names, errors, and the same kernels on both backends."""

from __future__ import annotations

import inspect

import pytest

import backprop.kernels as kernels
from backprop.kernels import KERNEL_NAMES, get_backend


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown backend 'torch'.*'numpy', 'jax'"):
        get_backend("torch")


def test_every_kernel_is_offered_with_its_docstring(K):
    for name in KERNEL_NAMES:
        fn = getattr(K, name)
        assert fn.__doc__ and len(fn.__doc__) > 40, name
        assert "xp" not in inspect.signature(fn).parameters, name
    assert K.name in ("numpy", "jax")


def test_missing_kernel_names_the_available_ones(K):
    with pytest.raises(AttributeError, match=r"has no kernel 'swish_forward'.*matmul_forward"):
        K.swish_forward  # noqa: B018


def test_jax_without_jax_says_how_to_install(monkeypatch, block_import):
    block_import("jax")
    kernels.get_backend.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'backprop-by-hand\[jax\]'"):
            get_backend("jax")
    finally:
        monkeypatch.undo()
        kernels.get_backend.cache_clear()
