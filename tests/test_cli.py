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
    assert len(err.strip().splitlines()) == 1, err


def test_python_dash_m_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", "--backend", "numpy", "--steps", "10", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout


def test_help_lists_the_experiments(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("xor", "gradcheck", "single-layer", "deep", "perceptron", "linear-mse", "blobs"):
        assert name in out


def test_experiment_subcommand_prints_its_conclusion(capsys):
    assert main(["single-layer", "--gate", "xor", "--epochs", "200"]) == 0
    assert "conclusion: the loss settles at" in capsys.readouterr().out
    assert main(["perceptron", "--gate", "xor"]) == 0
    assert "conclusion: cycle" in capsys.readouterr().out


def test_experiment_error_is_one_line(tmp_path, capsys):
    assert main(["blobs", "--epochs", "2", "--save", str(tmp_path / "no" / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backprop blobs: error:") and "Traceback" not in err


def test_gradcheck_command_prints_a_table_and_passes(capsys):
    assert main(["gradcheck", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "| numpy | sigmoid | z |" in out and "all gradients match" in out


def test_save_then_load_on_any_training_experiment(tmp_path, capsys):
    path = tmp_path / "single.npz"
    assert main(["single-layer", "--gate", "or", "--epochs", "50", "--save", str(path)]) == 0
    assert f"saved to {path}" in capsys.readouterr().out
    assert main(["single-layer", "--gate", "or", "--epochs", "1", "--load", str(path)]) == 0
    assert f"starting from the parameters in {path}" in capsys.readouterr().out
