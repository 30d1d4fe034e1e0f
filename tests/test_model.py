"""Model files that describe themselves: backprop.save / backprop.load (backprop/model.py)."""

from __future__ import annotations

import json
import os
import stat
import zipfile

import numpy as np
import pytest

import backprop
from backprop import MLPClassifier, Model, load, make_net, save, train_mlp
from backprop.io import load_params, save_params
from backprop.model import load_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((60, 3)).astype(np.float32)
LABELS = np.array(["cat", "dog", "eel"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
Y = np.searchsorted(np.unique(LABELS), LABELS)


def _result(output="softmax", epochs=5):
    y = Y if output == "softmax" else (Y > 0).astype(np.float32)
    sizes = [3, 4, 3 if output == "softmax" else 1]
    return train_mlp(sizes, X, y, activation="relu", output=output, epochs=epochs, lr=0.1)


def test_a_result_round_trips_with_its_description_and_predicts(tmp_path):
    r = _result()
    mean, scale = np.full(3, 0.5), np.full(3, 2.0)
    path = save(r, tmp_path / "m.npz", classes=np.unique(LABELS), mean=mean, scale=scale)
    model = load(path)
    assert isinstance(model, Model)
    assert model.net == r.net and model.dtype == np.float32
    for a, b in zip(model.params, r.params, strict=True):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b)
    assert model.classes.tolist() == ["cat", "dog", "eel"]
    expected = backprop.predict(r.params, ((X - mean) / scale).astype(np.float32), r.net)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-6)
    assert set(model.predict(X)) <= {"cat", "dog", "eel"}
    scores = model.evaluate(X, LABELS)
    assert 0 <= scores["accuracy"] <= 1 and scores["loss"] > 0
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
    assert meta["network"]["sizes"] == [3, 4, 3]
    assert meta["network"]["layers"][0] == {
        "type": "dense",
        "in": 3,
        "out": 4,
        "activation": "relu",
    }
    assert meta["network"]["loss"] == "cross_entropy"
    assert meta["library_version"] == backprop.__version__
    assert meta["training"]["backend"] == "numpy" and meta["training"]["epochs_run"] == 5
    # np.load still reads it, and load_params reads the weights
    with np.load(path) as f:
        assert np.array_equal(f["w0"], r.params[0].w)
    assert np.array_equal(load_params(path, [3, 4, 3])[1].w, r.params[1].w)


def test_a_sigmoid_model_gives_two_probability_columns_and_its_labels(tmp_path):
    r = _result("sigmoid")
    model = load(save(r, tmp_path / "b.npz", classes=[False, True]))
    p = model.predict_proba(X)
    assert p.shape == (60, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert model.predict(X).dtype == bool


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # few epochs: ConvergenceWarning
def test_an_estimator_saves_without_pickle_and_loads_as_an_estimator(tmp_path):
    pytest.importorskip("sklearn")
    est = MLPClassifier((5,), max_iter=20, random_state=0).fit(X, LABELS)
    path = save(est, tmp_path / "est.npz")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["b0.npy", "b1.npy", "model.json", "w0.npy", "w1.npy"]
    back = load(path)
    assert type(back) is MLPClassifier
    assert back.get_params() == est.get_params()
    assert np.array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.classes_.tolist() == ["cat", "dog", "eel"]
    assert load_model(path).predict(X).tolist() == est.predict(X).tolist()


def _fitted_estimators(backend):
    """Fitted estimators of every kind a model file holds: multiclass, binary, multilabel
    classifiers and one- and two-output regressors, float32 and float64."""
    from backprop import MLPRegressor

    x64 = X.astype(np.float64)
    kw = {"max_iter": 8, "random_state": 0, "backend": backend}
    multilabel = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1).astype(int)
    return [
        MLPClassifier((5,), **kw).fit(X, LABELS),
        MLPClassifier((4, 3), activation="tanh", **kw).fit(x64, LABELS == "dog"),
        MLPClassifier((5,), activation="logistic", **kw).fit(x64, multilabel),
        MLPRegressor(hidden_layer_sizes=(5,), activation="identity", **kw).fit(
            X, X[:, 0] - X[:, 2]
        ),
        MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", **kw).fit(x64, x64[:, :2] * 2),
    ]


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # few epochs: ConvergenceWarning
@pytest.mark.filterwarnings("ignore:lbfgs failed to converge")
def test_both_estimators_load_and_predict_as_the_saved_ones(tmp_path, backend_name):
    pytest.importorskip("sklearn")
    for i, est in enumerate(_fitted_estimators(backend_name)):
        path = save(est, tmp_path / f"e{i}.npz")
        back = load(path)
        assert type(back) is type(est) and back.get_params() == est.get_params()
        for name in ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_"):
            assert getattr(back, name) == getattr(est, name), name
        for got, want in zip(
            back.coefs_ + back.intercepts_, est.coefs_ + est.intercepts_, strict=True
        ):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        for data in (X, X.astype(np.float64)):
            assert np.array_equal(back.predict(data), est.predict(data)), est
            if hasattr(est, "predict_proba"):
                assert np.array_equal(back.predict_proba(data), est.predict_proba(data))
        if hasattr(est, "classes_"):
            assert np.array_equal(back.classes_, est.classes_)
            assert back.score(X, est.predict(X)) == 1.0
        model = load_model(path)
        if est.n_outputs_ == 1:  # the Model reads the same weights and head
            out = est.predict(X) if not hasattr(est, "classes_") else est.predict_proba(X)[:, -1]
            want = model.output(X)[:, 0]
            np.testing.assert_allclose(want, out, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:lbfgs failed to converge")
def test_an_estimator_that_no_file_can_describe_is_refused(tmp_path):
    pytest.importorskip("sklearn")
    from backprop import MLPRegressor

    with pytest.raises(ValueError, match="not fitted"):
        save(MLPRegressor(), tmp_path / "u.npz")
    poisson = MLPRegressor("poisson", (3,), solver="lbfgs", max_iter=5, random_state=0)
    poisson.fit(X, np.abs(X[:, 0]))
    with pytest.raises(ValueError, match=r"'exp'.*not an output head"):
        save(poisson, tmp_path / "p.npz")
    assert not (tmp_path / "p.npz").exists()


def test_bare_parameters_need_a_net_that_fits(tmp_path):
    params = backprop.init_params([2, 5, 1])
    with pytest.raises(TypeError, match="net is required"):
        save(params, tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"layer sizes \[2, 5, 1\], the net 2-4-1"):
        save(params, tmp_path / "p.npz", net=make_net([2, 4, 1]))
    with pytest.raises(ValueError, match="classes has 3 labels"):
        save(params, tmp_path / "p.npz", net=make_net([2, 5, 1]), classes=[1, 2, 3])
    with pytest.raises(ValueError, match="must not hold NaN"):
        save(params, tmp_path / "p.npz", net=make_net([2, 5, 1]), classes=[0.0, np.nan])
    with pytest.raises(ValueError, match="must not hold NaN"):
        labels = np.array(["a", np.nan], dtype=object)
        save(params, tmp_path / "p.npz", net=make_net([2, 5, 1]), classes=labels)
    with pytest.raises(ValueError, match="give both or neither"):
        save(params, tmp_path / "p.npz", net=make_net([2, 5, 1]), mean=[0, 0])
    assert list(tmp_path.iterdir()) == []
    path = save(
        params,
        tmp_path / "p.npz",
        net=make_net([2, 5, 1], "tanh"),
        training={"lr": np.float32(0.5)},
    )
    assert load(path).net.activations == ("tanh",) and load(path).training["lr"] == 0.5


def test_loading_into_another_architecture_is_refused_describing_both(tmp_path):
    path = save(
        backprop.init_params([2, 5, 1]), tmp_path / "m.npz", net=make_net([2, 5, 1], "relu")
    )
    with pytest.raises(ValueError) as info:
        load_params(path, make_net([2, 5, 1], "sigmoid"))
    message = str(info.value)
    assert "holds a 2-5-1 (relu; sigmoid output, bce) network" in message
    assert "the model here is 2-5-1 (sigmoid; sigmoid output, bce)" in message
    with pytest.raises(ValueError, match=r"the model here is sizes \[2, 3, 1\]"):
        load_params(path, [2, 3, 1])


def test_predict_refuses_a_net_that_disagrees_with_the_parameters():
    params = backprop.init_params([2, 5, 1])
    with pytest.raises(ValueError, match="do not fit the net 2-4-1"):
        backprop.predict(params, np.zeros((1, 2), np.float32), make_net([2, 4, 1]))


def _rewrite_metadata(path, change):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["model.json"])
    change(meta)
    members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(format_version=2), "format version 2, this backprop"),
        (lambda m: m["network"].update(sizes=[2, 10**9, 1]), "the model needs (1000000000,)"),
        (lambda m: m["network"].update(output="softplus"), "network is invalid: output must be"),
        (
            lambda m: m["network"]["layers"][0].update(type="conv2d"),
            "layer types ['conv2d', 'dense']",
        ),
        (lambda m: m.update(dtype="int8"), "dtype 'int8', expected float32 or float64"),
        (lambda m: m.update(classes={"values": [1, 2], "dtype": "|O"}), "classes are invalid"),
        (lambda m: m.update(format="other"), "not a backprop-model description"),
    ],
)
def test_a_bad_description_is_refused_naming_the_file(tmp_path, change, fragment):
    path = save(backprop.init_params([2, 5, 1]), tmp_path / "m.npz", net=make_net([2, 5, 1]))
    _rewrite_metadata(path, change)
    with pytest.raises(ValueError) as info:
        load(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_huge_or_garbage_metadata_is_refused_before_reading(tmp_path):
    path = save(backprop.init_params([2, 5, 1]), tmp_path / "m.npz", net=make_net([2, 5, 1]))
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["model.json"] = b"{" * (2 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match="more than a model description needs"):
        load(path)
    members["model.json"] = b"not json"
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match="not valid JSON"):
        load(path)


def test_a_weights_only_file_says_how_to_load_it(tmp_path):
    path = save_params(tmp_path / "w.npz", backprop.init_params([2, 5, 1]))
    with pytest.raises(ValueError, match=r"weights only.*load_params\(path, sizes\)"):
        load(path)


@pytest.mark.skipif(os.name != "posix", reason="symlinks and modes")
def test_saving_over_a_symlink_writes_its_target_and_keeps_the_mode(tmp_path):
    real = save_params(tmp_path / "real.npz", backprop.init_params([2, 5, 1], seed=1))
    real.chmod(0o600)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    new = backprop.init_params([2, 5, 1], seed=2)
    save_params(link, new)
    assert link.is_symlink()
    assert np.array_equal(load_params(real, [2, 5, 1])[0].w, new[0].w)
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="hard links")
def test_saving_over_a_hard_link_replaces_this_name_only(tmp_path):
    """Documented: an atomic save makes a new file; the other names keep the old one."""
    old = backprop.init_params([2, 5, 1], seed=1)
    first = save_params(tmp_path / "a.npz", old)
    other = tmp_path / "b.npz"
    os.link(first, other)
    save_params(first, backprop.init_params([2, 5, 1], seed=2))
    assert np.array_equal(load_params(other, [2, 5, 1])[0].w, old[0].w)
    assert not np.array_equal(load_params(first, [2, 5, 1])[0].w, old[0].w)


def test_a_regression_model_evaluates_its_mean_squared_error(tmp_path):
    Xr = X[:, :2]
    target = (Xr @ np.array([[1.0], [-2.0]], np.float32)).astype(np.float32)
    r = train_mlp([2, 1], Xr, target, output="identity", epochs=3, lr=0.1)
    model = load(save(r, tmp_path / "lin.npz"))
    z = model.output(Xr)
    assert model.evaluate(Xr, target[:, 0]) == {
        "loss": pytest.approx(float(np.mean((z - target) ** 2)), rel=1e-5)
    }
    with pytest.raises(ValueError, match="predicts values, not probabilities"):
        model.predict_proba(Xr)


def test_evaluate_refuses_labels_the_model_does_not_know(tmp_path):
    model = load(save(_result(), tmp_path / "m.npz", classes=["cat", "dog", "eel"]))
    with pytest.raises(ValueError, match=r"labels the model does not know: \['fox'\]"):
        model.evaluate(X[:2], ["cat", "fox"])
