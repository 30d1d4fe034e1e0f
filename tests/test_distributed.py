"""Data-parallel training on a JAX device mesh, one process or several.

Several CPU devices exist only if XLA_FLAGS asks for them before JAX is
imported, so these tests run their JAX code in subprocesses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import HAVE_JAX

pytestmark = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, devices: int, timeout: float = 300, **env: str) -> str:
    environment = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": ROOT,
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


EQUALITY = """
import json
import numpy as np
from backprop.train import train_mlp

rng = np.random.default_rng(0)
X = rng.standard_normal((101, 7))
y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
runs = {
    "sgd, full batch": dict(optimizer="sgd", lr=0.3),
    "sgd, minibatches of 16": dict(optimizer="sgd", lr=0.1, batch_size=16),
    "adam, full batch": dict(optimizer="adam", lr=0.01),
    "adam, minibatches of 10, alpha": dict(optimizer="adam", lr=0.01, batch_size=10, alpha=0.1),
}
out = {}
for name, kw in runs.items():
    base = train_mlp([7, 12, 3], X, y, output="softmax", activation="tanh", epochs=15,
                     dtype="float64", backend="jax", **kw)
    for devices in (1, 2, 4, 8):
        r = train_mlp([7, 12, 3], X, y, output="softmax", activation="tanh", epochs=15,
                      dtype="float64", backend="jax", devices=devices, **kw)
        rel = [float(np.max(np.abs(r.losses - base.losses) / np.abs(base.losses)))]
        for p, q in zip(r.params, base.params):
            for a, b in ((p.w, q.w), (p.b, q.b)):
                rel.append(float(np.max(np.abs(a - b)) / np.max(np.abs(b))))
        out[f"{name}, {devices} devices"] = [max(rel), r.devices]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_1_2_4_and_8_devices_give_one_device_s_result_to_1e_12():
    results = json.loads(_python(EQUALITY, devices=8))
    assert len(results) == 16
    for name, (rel, devices) in results.items():
        assert rel <= 1e-12, name
        assert str(devices) in name


DEVICE_ERRORS = """
import jax, numpy as np
from backprop.train import train_mlp
from backprop.xor.many import train_xor_many
X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
cases = {
    "too many": dict(devices=3),
    "zero": dict(devices=0),
    "empty": dict(devices=[]),
    "not devices": dict(devices=["cpu:0"]),
    "repeated": dict(devices=[jax.devices()[0]] * 2),
    "unknown string": dict(devices="every"),
    "batch smaller": dict(devices=2, batch_size=1),
}
for name, kw in cases.items():
    try:
        train_mlp([3, 1], X, y, epochs=1, backend="jax", **kw)
        print(name, "| no error")
    except ValueError as exc:
        print(name, "|", exc)
print("many |", train_xor_many(5, epochs=10, backend="jax", devices=2).devices)
"""


def test_bad_devices_get_a_clear_error_naming_the_argument():
    lines = dict(line.split(" | ", 1) for line in _python(DEVICE_ERRORS, 2).splitlines())
    assert "devices=3 but JAX has 2 device(s) here" in lines["too many"]
    assert "devices=0 but JAX has 2" in lines["zero"]
    assert "devices is an empty list" in lines["empty"]
    assert "devices must hold jax.Device objects, got str" in lines["not devices"]
    assert "devices lists a device more than once" in lines["repeated"]
    assert "devices must be None, an int, 'all' or a sequence" in lines["unknown string"]
    assert "batch_size=1 is smaller than the 2 devices" in lines["batch smaller"]
    assert lines["many"] == "2"


def test_devices_need_the_jax_backend():
    from backprop.train import train_mlp

    with pytest.raises(ValueError, match="devices=2 needs backend='jax'"):
        train_mlp([3, 1], np.zeros((4, 3)), np.zeros(4), devices=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_two_devices_each_equal_one_process(tmp_path):
    """The documented launch: each process reads its own rows; gloo on 127.0.0.1."""
    pytest.importorskip("sklearn")
    args = [
        "-m", "backprop", "fit", "--data", "wine", "--hidden", "16", "--epochs", "4",
        "--batch-size", "20", "--backend", "jax", "--dtype", "float64", "--lr", "0.01",
    ]  # fmt: skip
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": ROOT,
    }
    port = _free_port()
    launch = [*args, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [
        subprocess.Popen(
            [sys.executable, *launch, "--process-id", str(i)]
            + (["--save", str(tmp_path / "two.npz")] if i == 0 else []),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:  # never leave a process behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "test accuracy" in outs[0][0] and "test accuracy" not in outs[1][0]
    one = subprocess.run(
        [sys.executable, *args, "--devices", "4", "--save", str(tmp_path / "one.npz")],
        env={**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert one.stdout.splitlines()[-2].split(" (")[0] == outs[0][0].splitlines()[-2].split(" (")[0]
    a, b = np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz")
    for name in (n for n in b.files if n != "model.json"):  # the arrays, not the description
        assert np.max(np.abs(a[name] - b[name])) <= 1e-12 * np.max(np.abs(b[name])), name


def test_an_unreachable_coordinator_is_a_clear_error_not_a_hang():
    port = _free_port()  # nothing listens there
    code = f"""
    from backprop import distributed
    try:
        distributed.initialize("127.0.0.1:{port}", 2, 1, timeout=2)
    except TimeoutError as exc:
        print("TimeoutError:", exc)
    """
    out = _python(code, devices=1, timeout=60)
    assert f"could not reach the coordinator 127.0.0.1:{port} within 2 s" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("localhost", 2, 0), "coordinator must be HOST:PORT"),
        (("localhost:99999", 2, 0), "coordinator must be HOST:PORT"),
        (("127.0.0.1:1234", 0, 0), "num_processes must be an integer >= 1"),
        (("127.0.0.1:1234", 2, 2), r"process_id must be in \[0, 2\), got 2"),
    ],
)
def test_malformed_launch_arguments(args, message):
    from backprop import distributed

    with pytest.raises(ValueError, match=message):
        distributed.initialize(*args)
