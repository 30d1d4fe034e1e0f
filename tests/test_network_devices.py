"""train_net(devices=...): data parallel for networks of layers equals one device.

Several CPU devices exist only if XLA_FLAGS asks for them before JAX is
imported, so the JAX code runs in subprocesses (``_python`` of
tests/test_distributed.py).

What "equal" means here: the same losses (training and validation) and the
same parameters and batch-norm state, each array to 1e-10 of its own largest
entry in float64. The exception is an array whose gradient is zero in exact
arithmetic, so that its value is rounding noise on every device count: the
convolutions' biases in front of batch norm (which subtracts each channel's
mean, bias included) stay ~1e-12 on one device and on several, and are
compared absolutely, to 1e-10.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import HAVE_JAX
from tests.test_distributed import _python

pytestmark = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")

# Prints {case: [largest relative difference of the losses, of the validation losses,
# of the arrays (noise arrays: absolute), devices reported]}.
EQUALITY = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from backprop import models
from backprop.network import leaves
from backprop.train_net import train_net

def differences(r, base):
    out = [float(np.max(np.abs(np.subtract(r.losses, base.losses)) / np.abs(base.losses)))]
    out.append(float(np.max(np.abs(np.subtract(r.val_losses, base.val_losses))
                            / np.abs(base.val_losses))))
    worst = 0.0
    for a, b in zip(leaves((r.params, r.state)), leaves((base.params, base.state))):
        scale = float(np.max(np.abs(b)))
        gap = float(np.max(np.abs(a - b)))
        worst = max(worst, gap / scale if scale >= 1e-9 else gap)
    return out + [worst, r.devices]

rng = np.random.default_rng(0)
cases = {
    # conv 3, batch norm, relu, conv 4, batch norm, relu, pool, dropout 0.25, dense 5, relu,
    # dropout 0.25, dense 10: AdamW, clipping, cosine schedule
    "cnn": (
        models.cnn(10, (3, 4), hidden=5),
        rng.standard_normal((40, 1, 8, 8)),
        rng.integers(0, 10, 40),
        dict(weight_decay=1e-2, clip_norm=1.0, lr=3e-3, schedule="cosine"),
    ),
    # token and position embeddings, 2 pre-norm blocks of causal 2-head attention and a
    # GELU MLP, final layer norm, dense head: AdamW, clipping
    "gpt": (
        models.gpt(11, 8, dim=16, heads=2, blocks=2),
        rng.integers(0, 11, (32, 8)),
        rng.integers(0, 11, (32, 8)),
        dict(weight_decay=0.1, clip_norm=1.0, lr=3e-3),
    ),
}
out = {}
for name, (net, X, y, kw) in cases.items():
    kw = dict(kw, batch_size=8, epochs=2, dtype="float64", backend="jax",
              validation=(X[:8], y[:8]))
    base = train_net(net, X, y, **kw)
    for devices in (1, 2, 4):
        out[f"{name}, {devices} devices"] = differences(
            train_net(net, X, y, devices=devices, **kw), base
        )
    out[f"{name}, 2 devices, compile=epoch"] = differences(
        train_net(net, X, y, devices=2, compile="epoch", **kw), base
    )
print(json.dumps(out))
"""


@pytest.mark.slow
def test_cnn_and_gpt_on_1_2_and_4_devices_equal_one_device():
    results = json.loads(_python(EQUALITY, devices=8))
    assert len(results) == 8
    for name, (loss, val_loss, arrays, devices) in results.items():
        assert loss <= 1e-12, name
        assert val_loss <= 1e-10, name
        assert arrays <= 1e-10, name
        assert f"{devices} devices" in name


DEVICE_ERRORS = """
import jax, numpy as np
from backprop.layers import BatchNorm, Dense
from backprop.network import serial
from backprop.train_net import train_net
net = serial(Dense(4), BatchNorm(), Dense(2))
X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
cases = {
    "too many": dict(devices=3),
    "zero": dict(devices=0),
    "empty": dict(devices=[]),
    "not devices": dict(devices=["cpu:0"]),
    "unknown string": dict(devices="every"),
    "batch smaller": dict(devices=2, batch_size=1),
    "batch not a multiple": dict(devices=2, batch_size=5),
}
for name, kw in cases.items():
    try:
        train_net(net, X, y, epochs=1, backend="jax", **{"batch_size": 4, **kw})
        print(name, "| no error")
    except ValueError as exc:
        print(name, "|", exc)
"""


def test_bad_devices_get_a_clear_error_naming_the_argument():
    lines = dict(line.split(" | ", 1) for line in _python(DEVICE_ERRORS, 2).splitlines())
    assert "devices=3 but JAX has 2 device(s) here" in lines["too many"]
    assert "devices=0 but JAX has 2" in lines["zero"]
    assert "devices is an empty list" in lines["empty"]
    assert "devices must hold jax.Device objects, got str" in lines["not devices"]
    assert "devices must be None, an int, 'all' or a sequence" in lines["unknown string"]
    assert "batch_size=1 is smaller than the 2 devices" in lines["batch smaller"]
    assert "batch_size=5 is not a multiple of the 2 devices" in lines["batch not a multiple"]


def test_devices_need_the_jax_backend():
    from backprop.layers import Dense
    from backprop.network import serial
    from backprop.train_net import train_net

    with pytest.raises(ValueError, match="devices=2 needs backend='jax'"):
        train_net(serial(Dense(2)), np.zeros((4, 3)), np.zeros(4, int), devices=2)


def test_the_command_line_refuses_devices_without_jax(capsys):
    from backprop.cli import main

    assert main(["gpt", "--backend", "numpy", "--devices", "2"]) == 2
    assert "--devices splits batches over JAX devices: it needs --backend jax" in (
        capsys.readouterr().err
    )


CLI = """
import sys
import jax
jax.config.update("jax_enable_x64", True)  # --dtype float64 on JAX needs it (as in tests)
import numpy as np
from backprop.cli import main
tmp = sys.argv[1]
assert main(["fit", "--model", "cnn", "--backend", "jax", "--dtype", "float64", "--epochs", "1",
             "--quiet", "--save", f"{tmp}/one.npz"]) == 0
assert main(["fit", "--model", "cnn", "--backend", "jax", "--dtype", "float64", "--epochs", "1",
             "--quiet", "--devices", "2", "--save", f"{tmp}/two.npz"]) == 0
assert main(["gpt", "--devices", "2", "--epochs", "1", "--steps", "2", "--dim", "16",
             "--blocks", "1", "--sample", "5"]) == 0
"""


@pytest.mark.slow
def test_fit_cnn_and_gpt_take_devices(tmp_path):
    pytest.importorskip("sklearn")
    code = f"import sys; sys.argv = ['-', {str(tmp_path)!r}]\n" + CLI
    out = _python(code, devices=2)
    assert "jax float64, devices 2 ==" in out
    assert "jax float32, devices 2, at most" in out
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(one.files) == sorted(two.files)
    for name in one.files:
        scale = np.max(np.abs(one[name]))
        gap = np.max(np.abs(one[name] - two[name]))
        assert gap <= 1e-10 * (scale if scale >= 1e-9 else 1.0), name
