"""train_mlp: minibatches, optimizers, heads, validation and early stopping, on both
backends (which agree to 1e-10 in float64), and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import nets, optim
from backprop.kernels import get_backend
from backprop.nets import Layer, init_params, loss_and_grads, make_net
from backprop.train import train_mlp
from tests.conftest import HAVE_JAX

needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
RNG = np.random.default_rng(7)
X = RNG.standard_normal((53, 6))
LABELS = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 0.8)  # 3 classes
BINARY = (X[:, 0] * X[:, 1] > 0).astype(float)


CONFIGS = {
    "full batch sgd, sigmoid head": dict(output="sigmoid", lr=0.5),
    "minibatch 10 (short last batch), momentum": dict(
        batch_size=10, optimizer="momentum", lr=0.05, momentum=0.8
    ),
    "minibatch nesterov, softmax, alpha": dict(
        output="softmax", batch_size=16, optimizer="momentum", nesterov=True, lr=0.05, alpha=0.1
    ),
    "adam, tanh, softmax, unshuffled": dict(
        output="softmax", activation="tanh", batch_size=8, optimizer="adam", lr=0.01, shuffle=False
    ),
    "adam, relu, validation, early stopping": dict(
        output="softmax",
        activation="relu",
        batch_size=12,
        optimizer="adam",
        lr=0.02,
        validation=(X[:20], LABELS[:20]),
        early_stopping=True,
        monitor="val_accuracy",
        patience=2,
        epochs=60,
    ),
}


def _run(backend, config, epochs=12, **extra):
    config = {**config, **extra}
    softmax = config.get("output") == "softmax"
    y = LABELS if softmax else BINARY
    sizes = [6, 9, 3 if softmax else 1]
    return train_mlp(sizes, X, y, dtype="float64", backend=backend, **{"epochs": epochs, **config})


@needs_jax
@pytest.mark.parametrize("name", list(CONFIGS))
def test_numpy_and_jax_agree_to_1e10_in_float64(name):
    a, b = _run("numpy", CONFIGS[name]), _run("jax", CONFIGS[name])
    assert a.epochs == b.epochs and a.best_epoch == b.best_epoch
    np.testing.assert_allclose(b.losses, a.losses, rtol=1e-10)
    np.testing.assert_allclose(b.accuracies, a.accuracies, rtol=1e-10)
    np.testing.assert_allclose(b.grad_norms, a.grad_norms, rtol=1e-9)
    for p, q in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(q.w, p.w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(q.b, p.b, rtol=1e-10, atol=1e-12)
    if a.val_losses is not None:
        np.testing.assert_allclose(b.val_losses, a.val_losses, rtol=1e-10)


def test_one_epoch_of_minibatches_is_the_written_out_loop():
    """shuffle=False: batches of 20, 20, 13 rows; each step is loss_and_grads then sgd."""
    K = get_backend("numpy")
    net = make_net([6, 4, 1], "sigmoid", "sigmoid")
    params = init_params([6, 4, 1], seed=0, dtype="float64")
    Y = BINARY[:, None]
    p, total = params, 0.0
    for start, n in ((0, 20), (20, 20), (40, 13)):
        loss, _, grads = loss_and_grads(K, p, X[start : start + n], Y[start : start + n], net)
        p = optim.sgd(p, grads, 0.3)
        total += float(loss) * n
    r = train_mlp(
        [6, 4, 1], X, BINARY, lr=0.3, epochs=1, batch_size=20, shuffle=False, dtype="float64"
    )
    assert r.losses[0] == pytest.approx(total / 53, rel=1e-14)  # scikit-learn's loss_curve_
    for a, b in zip(r.params, p, strict=True):
        np.testing.assert_array_equal(a.w, b.w)


def test_shuffling_is_seeded_and_changes_the_order(backend_name):
    kw = dict(batch_size=10, epochs=3, lr=0.1, dtype="float64", backend=backend_name)
    a = train_mlp([6, 4, 1], X, BINARY, seed=3, **kw)
    b = train_mlp([6, 4, 1], X, BINARY, seed=3, **kw)
    c = train_mlp([6, 4, 1], X, BINARY, seed=3, shuffle=False, **kw)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.allclose(a.losses, c.losses)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_each_optimizer_is_its_written_out_formula(name):
    rng = np.random.default_rng(1)
    p = (Layer(rng.standard_normal((3, 2)), rng.standard_normal(2)),)
    g = (Layer(rng.standard_normal((3, 2)), rng.standard_normal(2)),)
    opt = optim.make_optimizer(
        "momentum" if name == "nesterov" else name, 0.1, momentum=0.9, nesterov=name == "nesterov"
    )
    state = optim.init_state(opt, p, np)
    for _ in range(2):  # two steps, so momentum and Adam's moments matter
        new, state = optim.update(opt, p, g, state, np)
    w, dw = p[0].w, g[0].w
    if name == "sgd":
        expected = w - 0.1 * dw - 0.1 * dw
    elif name == "momentum":
        v1 = -0.1 * dw
        v2 = 0.9 * v1 - 0.1 * dw
        expected = w + v2  # (new is the second update from the same p)
    elif name == "nesterov":
        v1 = -0.1 * dw
        v2 = 0.9 * v1 - 0.1 * dw
        expected = w + 0.9 * v2 - 0.1 * dw
    else:
        m = 0.9 * (0.1 * dw) + 0.1 * dw
        v = 0.999 * (0.001 * dw**2) + 0.001 * dw**2
        lr_t = 0.1 * np.sqrt(1 - 0.999**2) / (1 - 0.9**2)
        expected = w - lr_t * m / (np.sqrt(v) + 1e-8)
    if name == "sgd":
        expected = w - 0.1 * dw  # the second update again starts from p
    np.testing.assert_allclose(new[0].w, expected, rtol=1e-13)


def test_integer_labels_and_one_hot_rows_train_the_same(backend_name):
    kw = dict(output="softmax", epochs=5, lr=0.2, dtype="float64", backend=backend_name)
    a = train_mlp([6, 5, 3], X, LABELS, **kw)
    b = train_mlp([6, 5, 3], X, np.eye(3)[LABELS], **kw)
    np.testing.assert_array_equal(a.losses, b.losses)


def test_validation_is_recorded_and_early_stopping_keeps_the_best(backend_name):
    r = train_mlp(
        [6, 16, 3],
        X[20:],
        LABELS[20:],
        output="softmax",
        optimizer="adam",
        lr=0.2,
        epochs=400,
        batch_size=11,
        validation=(X[:20], LABELS[:20]),
        early_stopping=True,
        patience=5,
        backend=backend_name,
        dtype="float64",
    )
    assert r.stopped_early and r.epochs < 400 and r.val_losses.shape == (r.epochs,)
    best = int(np.argmin(r.val_losses))
    assert r.best_epoch == best and r.epochs > best + 5  # more than `patience` bad epochs
    net = r.net
    K = get_backend("numpy")
    z, _ = nets.forward(K, r.params, X[:20], net)
    val_loss = K.softmax_cross_entropy_forward(z, np.eye(3)[LABELS[:20]])[0]
    assert float(val_loss) == pytest.approx(float(r.val_losses[best]), rel=1e-10)


def test_training_loss_plateau_stops_but_keeps_the_last_parameters():
    r = train_mlp([6, 1], X, BINARY, lr=1e-4, epochs=200, early_stopping=True, tol=1.0, patience=3)
    assert r.epochs == 5 and r.stopped_early  # epoch 0 is the best; 4 more do not improve by 1.0


def test_progress_is_called_after_every_epoch(backend_name):
    calls = []
    train_mlp(
        [6, 3, 1],
        X,
        BINARY,
        epochs=7,
        backend=backend_name,
        progress=lambda e, loss: calls.append(e),
    )
    assert calls == list(range(1, 8))


@needs_jax
def test_jax_compiles_the_whole_run_once(monkeypatch):
    from backprop import _jaxrun

    calls = []
    real = nets.data_loss_and_grads

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(nets, "data_loss_and_grads", counting)
    monkeypatch.setattr(_jaxrun, "_COMPILED", {})
    train_mlp([6, 4, 1], X, BINARY, epochs=30, batch_size=8, backend="jax")
    assert len(calls) == 1  # traced once into the compiled loop, not called per batch


def test_the_result_prints_as_one_line():
    r = train_mlp([6, 4, 3], X, LABELS, output="softmax", epochs=3, validation=(X, LABELS))
    text = repr(r)
    assert "\n" not in text and len(text) < 250 and "val accuracy" in text


def test_hidden_naming_the_activation_is_gone_in_0_3():
    with pytest.raises(TypeError, match="unexpected keyword argument 'hidden'"):
        train_mlp([6, 4, 1], X, BINARY, hidden="relu", epochs=2)
    from backprop.xor.many import train_xor_many

    with pytest.raises(TypeError, match="unexpected keyword argument 'steps'"):
        train_xor_many(2, steps=10)


def test_divergence_names_the_epoch_and_an_overflowing_start_names_the_start():
    with pytest.raises(
        FloatingPointError, match=r"loss became (nan|inf) at epoch \d+ \(lr=1e\+30\)"
    ):
        train_mlp([6, 4, 1], X * 1e3, BINARY, lr=1e30, epochs=20, output="identity")
    huge = [(np.full((6, 1), 1e38), np.zeros(1))]
    with pytest.raises(FloatingPointError, match="in epoch 0, before training could move"):
        train_mlp([6, 1], X * 100, BINARY, init=huge, output="identity", epochs=3)


BAD = [
    ({"y": LABELS + 0.5, "output": "softmax"}, ValueError, "y must hold integer class labels"),
    ({"y": LABELS + 3, "output": "softmax"}, ValueError, r"labels in \[0, 3\) .* got labels in"),
    (
        {"y": np.eye(3)[LABELS] * 0.9, "output": "softmax"},
        ValueError,
        r"y must be one-hot rows .* row 0 is",
    ),
    ({"y": BINARY * 2}, ValueError, r"y must hold values in \[0, 1\] for a sigmoid output"),
    ({"X": np.where(X > 2, np.nan, X)}, ValueError, "X holds NaN or infinite values"),
    ({"X": np.where(X > 2, np.inf, X)}, ValueError, "X holds NaN or infinite values"),
    ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1, got 0"),
    ({"batch_size": 54}, ValueError, "batch_size must be at most the number of rows, 53"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of sgd, momentum, adam"),
    ({"activation": "gelu"}, ValueError, "activation must be one of sigmoid, relu, tanh, identity"),
    ({"output": "softplus"}, ValueError, "output must be one of sigmoid, softmax, identity"),
    ({"output": "softmax", "loss": "bce"}, ValueError, "loss 'bce' does not go with output"),
    ({"validation": (X[:, :4], BINARY)}, ValueError, r"validation X must have shape \(N, 6\)"),
    ({"validation": (X, BINARY[:5])}, ValueError, r"validation y must have shape \(53, 1\)"),
    ({"monitor": "val_loss"}, ValueError, "monitor='val_loss' needs a validation set"),
    ({"monitor": "accuracy"}, ValueError, "monitor must be one of loss, val_loss, val_accuracy"),
    ({"momentum": 1.0, "optimizer": "momentum"}, ValueError, r"momentum must be in \[0, 1\)"),
    ({"beta2": -0.1}, ValueError, "beta2 must be a finite number in"),
    ({"eps": 0}, ValueError, "eps must be a finite number in"),
    ({"alpha": -1}, ValueError, "alpha must be a finite number in"),
    ({"devices": 2}, ValueError, "devices=2 needs backend='jax'"),
    ({"sizes": [6, 10**9, 1]}, ValueError, r"need about .* GiB, more than this machine"),
    ({"epochs": 2**40}, ValueError, "epochs must be at most"),
    ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
    ({"dtype": None}, ValueError, "dtype must be one of float32, float64, got None"),
    ({"init": {"w": 1}}, ValueError, "init must be a sequence of 1 .w, b. pairs"),
    ({"shuffle": "yes"}, ValueError, "shuffle must be True or False"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD)
def test_bad_input_gets_a_clear_error_naming_the_argument(change, error, message):
    kwargs = {"epochs": 2, **change}
    sizes = kwargs.pop("sizes", [6, 3] if kwargs.get("output") == "softmax" else [6, 1])
    Xa, ya = kwargs.pop("X", X), kwargs.pop("y", BINARY)
    with pytest.raises(error, match=message):
        train_mlp(sizes, Xa, ya, **kwargs)


@needs_jax
def test_jax_run_in_chunks_equals_one_compiled_run(monkeypatch):
    """Chunks of one epoch each (the most host round trips) against one call for the run."""
    from backprop import train

    config = {**CONFIGS["adam, relu, validation, early stopping"], "patience": 4}
    monkeypatch.setattr(train, "CHUNK_SECONDS", float("inf"))
    whole = _run("jax", config, epochs=40)
    monkeypatch.setattr(train, "CHUNK_SECONDS", 0.0)
    chunked = _run("jax", config, epochs=40)
    assert chunked.epochs == whole.epochs and chunked.best_epoch == whole.best_epoch
    for field in ("losses", "accuracies", "grad_norms", "val_losses", "val_accuracies"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field))
    for a, b in zip(chunked.params, whole.params, strict=True):
        np.testing.assert_array_equal(a.w, b.w)
        np.testing.assert_array_equal(a.b, b.b)


def test_an_exception_in_progress_arrives_as_itself(backend_name):
    def progress(epoch, loss):
        if epoch == 3:
            raise LookupError("the caller's own error")

    with pytest.raises(LookupError, match="the caller's own error"):
        train_mlp([6, 3, 1], X, BINARY, epochs=50, backend=backend_name, progress=progress)


def test_ctrl_c_raises_training_interrupted_with_the_run_so_far(backend_name, monkeypatch):
    from backprop import TrainingInterrupted, train

    monkeypatch.setattr(train, "CHUNK_SECONDS", 0.0)  # JAX: one epoch per chunk

    def progress(epoch, loss):
        if epoch == 4:
            raise KeyboardInterrupt

    settings = dict(epochs=50, backend=backend_name, dtype="float64", batch_size=20)
    with pytest.raises(KeyboardInterrupt) as info:
        train_mlp([6, 3, 1], X, BINARY, progress=progress, **settings)
    assert isinstance(info.value, TrainingInterrupted)
    got = info.value.result
    # four epochs on NumPy (the backends agree to 1e-10): no second compilation on JAX
    ref = train_mlp([6, 3, 1], X, BINARY, **{**settings, "epochs": 4, "backend": "numpy"})
    assert got.epochs == 4 and not np.any(np.isnan(got.losses))
    np.testing.assert_allclose(got.losses, ref.losses, rtol=1e-10)
    for a, b in zip(got.params, ref.params, strict=True):
        np.testing.assert_allclose(a.w, b.w, rtol=1e-10)


CHILD = """
import signal, sys
import numpy as np
import backprop

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores it
X = np.random.default_rng(0).standard_normal((500, 8))
started = []

def progress(epoch, loss):
    if not started:
        started.append(epoch)
        print("started", flush=True)

try:
    backprop.train_mlp([8, 16, 1], X, (X[:, 0] > 0).astype(float), epochs=200_000,
                       batch_size=50, shuffle=False, backend=sys.argv[1], progress=progress)
except backprop.TrainingInterrupted as stopped:
    r = stopped.result
    print("interrupted", r.epochs, len(r.losses), bool(np.all(np.isfinite(r.losses))))
"""


@pytest.mark.slow
def test_a_real_ctrl_c_stops_training_with_its_result(backend_name):
    """SIGINT to a process training for 200,000 epochs: TrainingInterrupted with the epochs run."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, backend_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    try:
        assert child.stdout.readline().strip() == "started"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err[-3000:]
    word, epochs, n_losses, finite = out.split()
    assert word == "interrupted" and finite == "True"
    assert 1 <= int(epochs) == int(n_losses) < 200_000
