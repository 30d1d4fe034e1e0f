"""Parameters as pytrees, JAX arrays, 0-d and integer arrays; complex refused;
mismatched keys reported with both key sets; diagnoses and report rows."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from backprop.gradcheck import check_kernel, gradcheck
from tests.conftest import HAVE_JAX

pytestmark = pytest.mark.gradcheck


def nested():
    params = {"enc": {"w": np.array([[0.5, -1.0], [2.0, 0.1]]), 3: np.array(0.7)},
              "layers": [np.array([0.3, -0.4]), (np.array([1.5]), np.array(-2.0))]}  # fmt: skip

    def loss_fn(p):
        (a, b) = p["layers"][1]
        return (
            np.sum(p["enc"]["w"] ** 2) * p["enc"][3]
            + np.sum(np.sin(p["layers"][0]))
            + float(a[0] * b)
        )

    def grad_fn(p):
        (a, b) = p["layers"][1]
        return {
            "enc": {"w": 2 * p["enc"]["w"] * p["enc"][3], 3: np.sum(p["enc"]["w"] ** 2)},
            "layers": [np.cos(p["layers"][0]), (b * np.ones(1), a[0])],
        }

    return loss_fn, grad_fn, params


def test_nested_dicts_lists_tuples_are_checked_leaf_by_leaf_with_path_names():
    report = gradcheck(*nested())
    assert report.ok, str(report)
    assert list(report.params) == ["enc.w", "enc[3]", "layers[0]", "layers[1][0]", "layers[1][1]"]
    assert report["enc[3]"].shape == ()


def test_mismatched_keys_name_both_key_sets_whatever_their_types():
    loss_fn, grad_fn, params = nested()

    def missing(p):
        g = grad_fn(p)
        del g["enc"][3]
        g["enc"]["extra"] = np.zeros(1)
        return g

    with pytest.raises(ValueError, match=r"missing \['enc\[3\]'\]; unexpected \['enc.extra'\]"):
        gradcheck(loss_fn, missing, params)


def test_integer_arrays_are_cast_with_a_note_and_complex_is_refused():
    params = {"w": np.array([1, -2, 3]), "b": np.array(2.0)}

    def loss_fn(p):
        return np.sum(p["w"] ** 2) * p["b"]

    report = gradcheck(loss_fn, lambda p: {"w": 2 * p["w"] * p["b"], "b": np.sum(p["w"] ** 2)},
                       params)  # fmt: skip
    assert report.ok and "params 'w' is int64: checked as float64" in str(report)
    with pytest.raises(ValueError, match=r"params 'w' is complex \(complex128\)"):
        gradcheck(loss_fn, lambda p: p, {"w": np.array([1 + 2j]), "b": np.array(1.0)})
    with pytest.raises(ValueError, match="grad_fn returned a complex gradient for 'b'"):
        gradcheck(loss_fn, lambda p: {"w": 2 * p["w"] * p["b"], "b": np.complex128(1 + 1j)}, params)
    with pytest.raises(ValueError, match="input 'z' is complex"):
        check_kernel(lambda z: (z, None), lambda d, c: d, {"z": np.ones(2, dtype=complex)})
    with pytest.raises(ValueError, match="params 's' must be a real float or integer array"):
        gradcheck(loss_fn, lambda p: p, {"s": np.array(["a"])})


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
def test_jax_arrays_as_params():
    import jax.numpy as jnp

    params = {"w": jnp.asarray([0.3, -1.2]), "b": jnp.asarray(0.5)}

    def grad_fn(p):
        e = jnp.exp(p["w"] * p["b"])
        return {"w": p["b"] * e, "b": jnp.sum(p["w"] * e)}

    report = gradcheck(lambda p: jnp.sum(jnp.exp(p["w"] * p["b"])), grad_fn, params)
    assert report.ok and report.loss_dtype == "float64", str(report)


# --- diagnoses ---------------------------------------------------------------------


def linear():
    A = np.random.default_rng(0).standard_normal((3, 3))
    params = {"w": np.random.default_rng(1).standard_normal((3, 3))}

    def loss_fn(p):
        return 0.5 * np.sum((p["w"] @ A) ** 2)

    def grad_fn(p):
        return {"w": (p["w"] @ A) @ A.T}

    return loss_fn, grad_fn, params


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda g: np.where(np.arange(9).reshape(3, 3) % 4 == 0, 0.0, g),
         "analytic is 0 where numeric is not, at 3 of 9 entries"),
        (lambda g: np.where(np.arange(9).reshape(3, 3) < 2, -g, g),
         "sign flipped at 2 of 9 entries"),
        (lambda g: g.T, "transpose of numeric"),
        (lambda g: 16 * g, "exactly 16x too large (a sum where a mean belongs?)"),
        (lambda g: g / 16, "exactly 1/16 of numeric"),
        (lambda g: g * np.where(np.arange(9).reshape(3, 3) == 4, 1.01, 1.0),
         "analytic = 1.01 x numeric at 1 of 9 entries; the other entries agree"),
    ],
)  # fmt: skip
def test_the_patterns_people_make_are_named(change, words):
    loss_fn, grad_fn, params = linear()
    report = gradcheck(loss_fn, lambda p: {"w": change(grad_fn(p)["w"])}, params)
    assert report.failing == ["w"] and words in report["w"].diagnosis, report["w"].diagnosis


def test_never_a_factor_of_1x():
    loss_fn, grad_fn, params = linear()
    for j in range(9):
        bump = np.zeros(9)
        bump[j] = 1e-3

        def bumped(p, bump=bump):
            return {"w": grad_fn(p)["w"] + bump.reshape(3, 3)}

        d = gradcheck(loss_fn, bumped, params)["w"].diagnosis
        assert " 1 x" not in d and "= 1 x" not in d, d


def test_rows_show_the_error_measure_the_bound_and_what_set_it():
    loss_fn, grad_fn, params = linear()
    text = str(gradcheck(loss_fn, grad_fn, params))
    header, row = text.splitlines()[1:3]
    assert "|a-n|" in header and "vs bound" in header and "bound set by" in header
    assert "<=" in row and "tolerance" in row
    offset = str(gradcheck(lambda p: loss_fn(p) + 1e12, grad_fn, params))
    assert "rounding" in offset.splitlines()[2] and "~" in offset.splitlines()[2]
    counts = collections.Counter(line.split()[0] for line in text.splitlines()[2:])
    assert counts == {"w": 1}
