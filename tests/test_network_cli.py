"""fit --model cnn and gpt on the command line, at small sizes; patience and time limits."""

from __future__ import annotations

import numpy as np
import pytest

from backprop.cli import main
from backprop.cli_net import bigram_bits
from backprop.layers import Dense
from backprop.network import serial
from backprop.train_net import train_net

sklearn = pytest.importorskip("sklearn")


def test_fit_cnn_prints_the_test_accuracy(capsys):
    assert main(["fit", "--model", "cnn", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cnn conv16-bn-relu conv32-bn-relu" in out
    assert "test accuracy" in out


def test_fit_cnn_refuses_what_it_cannot_do(capsys):
    assert main(["fit", "--model", "cnn", "--data", "iris"]) == 2
    assert "--model cnn needs images: --data digits" in capsys.readouterr().err
    assert main(["fit", "--model", "cnn", "--early-stopping"]) == 2
    assert "--early-stopping is not supported with --model cnn" in capsys.readouterr().err


def test_bigram_baseline_by_hand():
    # "abab" then held out "ab": every a is followed by b in training.
    train, held = np.array([0, 1, 0, 1]), np.array([0, 1])
    bits = bigram_bits(train, held, 2, alpha=1.0)
    assert bits == pytest.approx(-np.log2(3 / 4))  # (2 + 1) / (2 + 2)


def test_patience_keeps_the_best_epoch_and_time_limit_stops():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    Xv, yv = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)  # noise: no progress
    net = serial(Dense(16), Dense(2))
    r = train_net(net, X, y, lr=0.05, epochs=50, batch_size=8, validation=(Xv, yv), patience=3)
    assert r.epochs < 50
    assert r.epochs - r.best_epoch == 3
    assert r.val_losses[r.best_epoch - 1] == min(r.val_losses)
    r = train_net(net, X, y, epochs=10_000, batch_size=8, time_limit=1e-9)
    assert r.epochs == 1
    with pytest.raises(ValueError, match="steps_per_epoch must be in"):
        train_net(net, X, y, batch_size=8, steps_per_epoch=6)
    with pytest.raises(ValueError, match="patience needs validation"):
        train_net(net, X, y, patience=2)


def test_save_then_load_continues_from_the_saved_network(tmp_path, capsys):
    path = tmp_path / "cnn.npz"
    assert main(["fit", "--model", "cnn", "--epochs", "1", "--quiet", "--save", str(path)]) == 0
    assert main(["fit", "--model", "cnn", "--epochs", "1", "--quiet", "--load", str(path)]) == 0
    assert f"starting from the parameters in {path}" in capsys.readouterr().out
    from backprop import models
    from backprop.network import load

    with pytest.raises(ValueError, match="must have shape"):
        load(path, models.cnn(10, filters=(8, 8)), (1, 8, 8))
