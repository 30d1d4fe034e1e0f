"""The notes' experiments reproduce the notes' outcomes; the perceptron rule,
blobs data and the experiments' use of save/load, each with its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop import experiments as E
from backprop.data import truth_table, xor_blobs
from backprop.io import load_params, save_params
from backprop.nets import init_params, make_net, predict
from backprop.perceptron import perceptron_rule

QUIET = {"out": lambda *a: None}


@pytest.mark.parametrize("gate", ["and", "or"])
def test_single_unit_learns_and_or(backend_name, gate):
    r = E.single_layer(gate, backend=backend_name, **QUIET)
    assert r.accuracies[-1] == 1.0 and 0.005 < r.losses[-1] < 0.03


def test_single_unit_settles_at_ln2_on_xor(backend_name):
    r = E.single_layer("xor", backend=backend_name, **QUIET)
    assert abs(r.losses[-1] - math.log(2)) < 1e-3
    assert 0.25 <= r.accuracies[-1] <= 0.75


def test_deep_sigmoid_stack_plateaus_and_gradients_vanish(backend_name):
    r = E.deep_stack(backend=backend_name, **QUIET)
    assert np.all(np.abs(r.losses[200:1000] - math.log(2)) < 0.01)  # the plateau
    first, *_, last = r.grad_norms[0]
    assert first < last / 100  # the input layer's gradient is >100x smaller
    relu = E.deep_stack(activation="relu", lr=0.1, epochs=1000, backend=backend_name, **QUIET)
    assert relu.losses[-1] < 0.05 and relu.accuracies[-1] == 1.0
    assert relu.grad_norms[0, 0] > relu.grad_norms[0, -1] / 10  # no vanishing with ReLU


def test_deep_stack_conclusion_is_read_from_the_gradients():
    # the words follow the measured ratio, whatever the activation (tanh once got ReLU's)
    assert "400x smaller" in E.gradient_shape(1e-4, 4e-2) and "vanished" in E.gradient_shape(1, 10)
    assert "50x larger" in E.gradient_shape(5.0, 0.1) and "grew" in E.gradient_shape(5.0, 0.1)
    assert "did not vanish" in E.gradient_shape(0.3, 0.9)
    lines = []
    E.deep_stack(activation="tanh", epochs=2, out=lines.append)
    assert "ReLU" not in lines[-1] and "sigmoid" not in lines[-1]


def test_linear_mse_rounds_to_the_truth_table(backend_name):
    for gate in ("and", "or"):
        r = E.linear_mse(gate, backend=backend_name, **QUIET)
        X, y = truth_table(gate)
        np.testing.assert_array_equal(np.round(predict(r.params, X, r.net)), y)


def test_perceptron_rule_on_and_or_xor():
    r = E.perceptron("and", **QUIET)  # the notes' w0 = (0.3, 0.4, 0.1), lr (eta) = 0.05
    X, y = truth_table("and", "float64")
    assert r.converged and r.passes == 3 and r.mistakes[-1] == 0
    np.testing.assert_array_equal(r.predict(X), y[:, 0])
    assert perceptron_rule(*truth_table("or", "float64")).converged
    x = perceptron_rule(*truth_table("xor", "float64"), epochs=1000)
    assert not x.converged and x.reason.startswith("cycle") and x.passes < 1000
    capped = perceptron_rule(*truth_table("xor", "float64"), epochs=5)
    assert not capped.converged and "within 5 passes" in capped.reason


def test_perceptron_in_exact_arithmetic_takes_the_notes_two_passes():
    exact = E.perceptron("and", exact=True, **QUIET)
    assert exact.converged and exact.passes == 2 and exact.exact
    rounded = E.perceptron("and", **QUIET)
    assert rounded.passes == 3 and "converges after 2 passes, not 3" in rounded.rounding_note
    lines = []
    E.perceptron("and", out=lines.append)
    assert lines[-1] == rounded.rounding_note  # said where the result is printed


def test_perceptron_old_keyword_names_are_gone():
    """Deprecated in 0.2, removed in 0.3: eta=, max_passes=, deep_stack(hidden=)."""
    X, y = truth_table("and", "float64")
    for call in (
        lambda: perceptron_rule(X, y, eta=0.05),
        lambda: perceptron_rule(X, y, max_passes=10),
        lambda: E.perceptron("and", eta=0.05),
        lambda: E.deep_stack(hidden="relu"),
    ):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            call()


def test_perceptron_says_one_mistake_and_verbose_prints_every_pass():
    lines: list[str] = []
    E.perceptron("xor", epochs=30, out=lines.append, verbose=True)
    passes = [line for line in lines if line.startswith("pass")]
    assert len(passes) > 10 and not any(line.startswith("...") for line in lines)
    lines.clear()
    E.perceptron("and", out=lines.append)
    assert lines[1].startswith("pass   1: 1 mistake, weights")


def test_perceptron_bad_input():
    X, y = truth_table("and", "float64")
    with pytest.raises(ValueError, match=r"w0 must have shape \(3,\)"):
        perceptron_rule(X, y, w0=(0.1, 0.2))
    with pytest.raises(ValueError, match=r"lr must be a finite number in \(0.0, inf\)"):
        perceptron_rule(X, y, lr=0)
    with pytest.raises(ValueError, match="y must hold 0/1 targets"):
        perceptron_rule(X, y * 2)


def test_blobs_experiment_trains_saves_loads_and_predicts(tmp_path):
    path = tmp_path / "blobs.npz"
    d = E.blobs(save=str(path), **QUIET)
    assert d["test_loss_after"] < d["test_loss_before"] / 3
    assert d["identical_after_load"] and d["p_minus1_1"] > 0.9  # (-1, 1) is a label-1 corner
    assert path.exists()


def test_blobs_data_is_seeded_and_labelled_by_sign():
    a, b = xor_blobs(seed=4), xor_blobs(seed=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    Xtr, ytr, Xte, yte = a
    assert Xtr.shape == (80, 2) and ytr.shape == (80, 1) and Xte.shape == (20, 2)
    X, y = np.concatenate([Xtr, Xte]), np.concatenate([ytr, yte])[:, 0]
    far = np.all(np.abs(X) > 0.2, axis=1)  # points clearly inside a quadrant
    np.testing.assert_array_equal(y[far], (np.sign(X[far, 0]) != np.sign(X[far, 1])).astype(float))
    with pytest.raises(ValueError, match="n_train must be an integer >= 1"):
        xor_blobs(n_train=0)


def test_model_round_trip_through_a_file_predicts_exactly_the_same(tmp_path):
    params, net = init_params([2, 5, 1], seed=1), make_net([2, 5, 1], "relu", "sigmoid")
    path = save_params(tmp_path / "m.npz", params)
    loaded = load_params(path, [2, 5, 1], dtype="float32")
    X = np.random.default_rng(0).standard_normal((50, 2)).astype("float32")
    np.testing.assert_array_equal(predict(loaded, X, net), predict(params, X, net))


def test_progress_bar_only_on_a_terminal():
    import io

    from backprop.progress import progress_bar

    with progress_bar(10, "x", stream=io.StringIO()) as hook:
        assert hook is None  # a pipe or file gets plain lines, no bar
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    with progress_bar(10, "train", stream=term, mininterval=0) as hook:
        for e in range(1, 11):
            hook(e, 0.5)
    drawn = term.getvalue()
    assert "train:" in drawn and "10/10" in drawn and "loss=0.5000" in drawn


def test_load_starts_training_from_saved_parameters(tmp_path, capsys):
    from backprop.cli import main

    path = tmp_path / "w.npz"
    assert main(["blobs", "--epochs", "300", "--save", str(path)]) == 0
    first = capsys.readouterr().out
    after = float(first.split("test loss before training ")[1].split("after ")[1].split()[0])
    assert main(["blobs", "--epochs", "1", "--load", str(path)]) == 0
    second = capsys.readouterr().out
    assert f"starting from the parameters in {path}" in second
    before = float(second.split("test loss before training ")[1].split(",")[0])
    assert before == pytest.approx(after, abs=1e-4)  # it picked up where the first run ended
    assert main(["deep", "--epochs", "1", "--load", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "holds a 2-5-1 (relu; sigmoid output, bce) network; the model here is 2-64-32-16-1" in err
    )
    # same sizes, another activation: refused too, describing both
    assert main(["xor", "--hidden", "5", "--backend", "numpy", "--load", str(path)]) == 2
    err = capsys.readouterr().err
    assert "holds a 2-5-1 (relu; sigmoid output, bce) network" in err
    assert "the model here is 2-5-1 (sigmoid; sigmoid output, bce)" in err
