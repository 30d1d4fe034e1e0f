"""The command line: the main job, every sub-command with small sizes, and its errors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from backprop.cli import build_parser, main
from tests.conftest import HAVE_JAX

HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None
needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn is not installed")
needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")


def test_main_job_trains_on_every_backend_and_fits_on_a_screen(capsys):
    assert main(["--epochs", "3000"]) == 0
    out = capsys.readouterr().out
    assert "hand-written backprop, numpy float32" in out
    assert len(out.splitlines()) <= 24  # one screen
    summary = [line for line in out.splitlines() if "accuracy" in line]
    if HAVE_JAX:
        assert len(summary) == 2 and all("accuracy 100%" in s and "us/epoch" in s for s in summary)
    else:
        assert "jax: skipped, JAX is not installed" in out
    assert " 1  1 |   0    |" in out


def test_quiet_prints_one_line_per_backend(capsys):
    assert main(["xor", "--backend", "numpy", "--epochs", "3000", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numpy: accuracy")


def test_verbose_prints_the_cost_every_log_every_epochs(capsys):
    assert main(["xor", "--backend", "numpy", "--epochs", "300", "--verbose"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch")]
    assert [int(x.split()[1]) for x in lines] == [0, 100, 200, 300]


def test_float32_results_print_without_junk_digits(capsys):
    assert main(["xor", "--backend", "numpy", "--epochs", "200", "--quiet"]) == 0
    line = capsys.readouterr().out
    cost = line.split("cost ")[1].split(" -> ")[1].split(",")[0]
    assert len(cost.replace("0.", "").lstrip("0")) <= 6  # 6 significant digits at most


def test_deprecated_steps_flag_still_works_and_says_so(capsys):
    with pytest.warns(DeprecationWarning, match="--steps is deprecated"):
        assert main(["xor", "--backend", "numpy", "--steps", "20", "--quiet"]) == 0
    assert "note: --steps is deprecated" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "-1"], "argument --lr: expected a positive finite number, got '-1'"),
        (["--epochs", "zero"], "argument --epochs: expected an integer >= 1, got 'zero'"),
        (["--backend", "torch"], "argument --backend: invalid choice"),
        (["--seed", "-2"], "argument --seed: expected an integer >= 0, got '-2'"),
        (["--lr", "1e39"], "lr must be representable in float32"),
        (["--epochs", "3000000000"], "epochs must be at most 2,147,483,647"),
        (["fit", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
        (["xor", "--plot", "out.pdf"], "--plot must name a .png file, got 'out.pdf'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_python_dash_m_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", "--backend", "numpy", "--epochs", "10", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout


def test_help_lists_the_commands_and_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("xor", "fit", "gradcheck", "single-layer", "deep", "perceptron", "linear-mse"):
        assert name in out
    with pytest.raises(SystemExit):
        main(["xor", "--help"])
    out = capsys.readouterr().out
    assert "(default: 10000)" in out and "--quiet" in out and "OUT-boundary.png" in out


@pytest.mark.parametrize("command", ["xor", "single-layer", "deep", "linear-mse", "blobs", "fit"])
def test_every_training_command_has_the_common_options(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    flags = {opt for action in sub._actions for opt in action.option_strings}
    for flag in ("--plot", "--save", "--load", "--quiet", "--verbose", "--seed", "--backend"):
        assert flag in flags, (command, flag)
    assert "--dtype" in flags and "--epochs" in flags and "--lr" in flags


def test_experiment_subcommands_print_their_conclusion(capsys):
    assert main(["single-layer", "--gate", "xor", "--epochs", "200"]) == 0
    assert "conclusion: the loss settles at" in capsys.readouterr().out
    assert main(["perceptron", "--gate", "xor"]) == 0
    assert "conclusion: cycle" in capsys.readouterr().out
    assert main(["perceptron", "--exact"]) == 0
    assert "pass 2 made no mistake" in capsys.readouterr().out
    assert main(["linear-mse", "--epochs", "50"]) == 0
    assert "conclusion: rounding the least-squares line" in capsys.readouterr().out
    assert main(["deep", "--epochs", "20", "--activation", "relu", "--lr", "0.1"]) == 0
    assert "deep relu stack" in capsys.readouterr().out


def test_deep_hidden_is_a_deprecated_spelling_of_activation(capsys):
    with pytest.warns(DeprecationWarning):
        assert main(["deep", "--epochs", "5", "--hidden", "relu", "--quiet"]) == 0
    assert "note: deep --hidden is deprecated" in capsys.readouterr().err


def test_experiment_error_is_one_line(tmp_path, capsys):
    assert main(["blobs", "--epochs", "2", "--save", str(tmp_path / "no" / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backprop blobs: error:") and "Traceback" not in err


def test_gradcheck_command_prints_a_table_and_passes(capsys):
    assert main(["gradcheck", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "| numpy | sigmoid | z |" in out and "| numpy | softmax_cross_entropy | z |" in out
    assert "all gradients match" in out


def test_save_then_load_on_a_training_experiment(tmp_path, capsys):
    path = tmp_path / "single.npz"
    assert main(["single-layer", "--gate", "or", "--epochs", "50", "--save", str(path)]) == 0
    assert f"saved to {path}" in capsys.readouterr().out
    assert main(["single-layer", "--gate", "or", "--epochs", "1", "--load", str(path)]) == 0
    assert f"starting from the parameters in {path}" in capsys.readouterr().out


def test_xor_save_and_load(tmp_path, capsys):
    path = tmp_path / "xor.npz"
    assert main(["xor", "--backend", "numpy", "--epochs", "3000", "--save", str(path)]) == 0
    assert main(["xor", "--backend", "numpy", "--epochs", "1", "--load", str(path)]) == 0
    out = capsys.readouterr().out
    assert "starting from the parameters" in out and out.count("accuracy 100%") == 2


def test_plot_writes_the_files_it_names(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_png = tmp_path / "xor.png"
    assert main(["xor", "--backend", "numpy", "--epochs", "50", "--plot", str(out_png)]) == 0
    assert "plots written:" in capsys.readouterr().out
    assert out_png.exists() and (tmp_path / "xor-boundary.png").exists()


def test_plot_without_matplotlib_fails_before_training(monkeypatch, block_import, capsys):
    block_import("matplotlib")
    assert main(["deep", "--epochs", "5000", "--plot", "x.png"]) == 2
    captured = capsys.readouterr()
    assert "pip install 'backprop-by-hand[plot]'" in captured.err
    assert "conclusion" not in captured.out  # nothing was trained


@needs_sklearn
def test_fit_trains_on_a_real_data_set(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = ["fit", "--data", "iris", "--hidden", "16", "--epochs", "30", "--batch-size", "16"]
    save, plot = tmp_path / "iris.npz", tmp_path / "iris.png"
    assert main([*argv, "--save", str(save), "--plot", str(plot), "--lr", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "train accuracy" in out and "test accuracy" in out
    assert save.exists() and plot.exists() and (tmp_path / "iris-confusion.png").exists()
    assert main([*argv, "--epochs", "1", "--load", str(save), "--quiet"]) == 0


@needs_sklearn
@needs_jax
def test_fit_on_jax_with_devices(capsys):
    argv = ["fit", "--data", "wine", "--epochs", "3", "--backend", "jax", "--devices", "1"]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_fit_without_scikit_learn_says_how_to_get_it(monkeypatch, block_import, capsys):
    block_import("sklearn")
    assert main(["fit", "--epochs", "1"]) == 2
    assert "pip install 'backprop-by-hand[data]'" in capsys.readouterr().err
