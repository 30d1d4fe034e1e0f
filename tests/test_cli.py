"""The command line: the main job and its errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backprop.cli import main
from tests.conftest import HAVE_JAX


def test_main_job_trains_on_every_backend(capsys):
    assert main(["--steps", "3000", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "backend: numpy" in out and "backend: jax" in out
    blocks = out.split("== XOR")[1:]
    if HAVE_JAX:
        assert len(blocks) == 2 and all("accuracy 100%" in b and "us/step" in b for b in blocks)
    else:
        assert "skipped: JAX is not installed" in blocks[1]
    assert " 1  1 |   0    |" in blocks[0]


def test_cost_is_printed_every_100_steps(capsys):
    assert main(["xor", "--backend", "numpy", "--steps", "300"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step")]
    assert [int(x.split()[1]) for x in lines] == [0, 100, 200, 299]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "-1"], "argument --lr: expected a positive finite number, got '-1'"),
        (["--steps", "zero"], "argument --steps: expected an integer >= 1, got 'zero'"),
        (["--backend", "torch"], "argument --backend: invalid choice"),
        (["--lr", "1e39"], "lr must be representable in float32"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_python_dash_m_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", "--backend", "numpy", "--steps", "10", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout
