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


@pytest.mark.parametrize(
    "argv",
    [["xor", "--steps", "20"], ["deep", "--hidden", "relu"]],
    ids=["xor-steps", "deep-hidden"],
)
def test_flags_deprecated_in_0_2_are_gone(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


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


def test_version(capsys):
    from backprop import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"backprop {__version__}"


@needs_sklearn
def test_fit_save_then_predict_and_evaluate_on_the_data_set_and_a_csv(tmp_path, capsys):
    import numpy as np

    from backprop import load
    from backprop.data import load_dataset

    model = tmp_path / "iris.npz"
    argv = ["fit", "--data", "breast-cancer", "--epochs", "3", "--hidden", "8", "--quiet"]
    assert main([*argv, "--save", str(model)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("train accuracy")  # --quiet: the result only
    m = load(model)
    assert m.classes.tolist() == ["malignant", "benign"] and m.mean is not None
    assert m.training["data"] == "breast_cancer" and m.training["optimizer"] == "adam"
    assert main(["evaluate", str(model), "--data", "breast_cancer"]) == 0
    out = capsys.readouterr().out
    assert "on breast_cancer's test split (143 rows)" in out and "accuracy " in out
    d = load_dataset("breast_cancer", standardize=False)
    scores = m.evaluate(d.X_test, np.asarray(d.classes)[d.y_test])
    assert f"accuracy {scores['accuracy']:.1%}" in out and f"loss {scores['loss']:.4f}" in out
    csv = tmp_path / "rows.csv"
    header = ",".join([f"f{i}" for i in range(30)] + ["label"])
    rows = [
        ",".join([*map(repr, x.tolist()), d.classes[k]])
        for x, k in zip(d.X_test, d.y_test, strict=True)
    ]
    csv.write_text("\n".join([header, *rows]) + "\n")
    assert main(["evaluate", str(model), "--csv", str(csv), "--label-column", "label"]) == 0
    assert f"accuracy {scores['accuracy']:.1%}" in capsys.readouterr().out
    assert main(["predict", str(model), "--csv", str(csv), "--label-column", "label"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == m.predict(d.X_test).tolist()
    assert main(["predict", str(model), "--data", "breast-cancer", "--proba", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    np.testing.assert_allclose(
        np.array([[float(v) for v in line.split(",")] for line in lines]),
        m.predict_proba(d.X_test),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ["xor", "--quiet", "--verbose"],
            ["--quiet and --verbose contradict each other"],
        ),
        (
            ["fit", "--nesterov", "--momentum", "0.5", "--patience", "3"],
            [
                "--momentum applies to --optimizer momentum, not adam (it reads beta1, beta2, eps)",
                "--nesterov needs --optimizer momentum, not adam",
                "--patience applies to --early-stopping",
            ],
        ),
        (
            ["fit", "--save", "/nonexistent-dir/m.npz", "--plot", "/nonexistent-dir/p.png"],
            ["--save '/nonexistent-dir/m.npz': directory", "--plot '/nonexistent-dir/p.png'"],
        ),
        (["fit", "--devices", "2"], ["--devices splits batches over JAX devices"]),
        (["fit", "--solver", "sgd"], ["fit --solver is now --optimizer"]),
        (["evaluate", "nothing.npz"], ["--data NAME or --csv FILE", "no model file at"]),
    ],
)
def test_every_problem_is_reported_at_once_before_any_work(argv, fragments, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in captured.err


def test_every_missing_extra_in_one_message(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in ("sklearn", "matplotlib", "jax"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert main(["fit", "--backend", "jax", "--plot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'backprop-by-hand[jax,data,plot]'" in err
    assert "JAX" in err and "scikit-learn" in err and "matplotlib" in err


@needs_sklearn
def test_fit_load_into_another_architecture_is_refused_describing_both(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert (
        main(["fit", "--data", "iris", "--epochs", "1", "--hidden", "8", "--save", str(model)]) == 0
    )
    capsys.readouterr()
    assert (
        main(["fit", "--data", "iris", "--epochs", "1", "--hidden", "9", "--load", str(model)]) == 2
    )
    err = capsys.readouterr().err
    assert "holds a 4-8-3 (relu; softmax output, cross_entropy) network" in err
    assert "the model here is 4-9-3" in err


class _Stop(KeyboardInterrupt):
    """Raised by training on Ctrl-C, with the result so far (H19's TrainingInterrupted)."""


@needs_sklearn
def test_ctrl_c_prints_one_line_exits_130_and_saves_what_it_has(tmp_path, monkeypatch, capsys):
    import backprop.train

    real = backprop.train.train_mlp

    def interrupted(*args, **kwargs):
        kwargs["epochs"] = 2
        exc = _Stop()
        exc.result = real(*args, **kwargs)
        raise exc

    monkeypatch.setattr(backprop.train, "train_mlp", interrupted)
    path = tmp_path / "m.npz"
    assert main(["fit", "--data", "iris", "--hidden", "8", "--save", str(path)]) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"saved to {path} (interrupted after 2 epochs" in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        f"backprop fit: interrupted; the parameters so far are in {path}"
    )
    from backprop import load

    assert load(path).net.sizes == (4, 8, 3)

    def bare(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(backprop.train, "train_mlp", bare)
    path.unlink()
    assert main(["fit", "--data", "iris", "--save", str(path)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["backprop fit: interrupted; nothing saved (no parameters were handed back)"]
    assert not path.exists()


@pytest.mark.slow  # a subprocess: ~5 s on the shared machine
def test_a_closed_pipe_ends_quietly():
    """`backprop xor --verbose | head -1`: no traceback, and the run stops writing."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "xor", "--backend", "numpy", "--verbose",
         "--epochs", "20000", "--log-every", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_breast_cancer_is_accepted_with_either_spelling():
    parser = build_parser()
    for name in ("breast-cancer", "breast_cancer"):
        assert parser.parse_args(["fit", "--data", name]).data == name


@needs_sklearn
def test_a_test_size_that_leaves_a_class_out_is_explained_in_our_words(capsys):
    assert main(["fit", "--data", "iris", "--test-size", "0.01", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "test_size=0.01 splits iris's 150 rows into 148 train and 2 test rows" in err
    assert "sklearn" not in err and len(err.strip().splitlines()) == 1


def test_numpy_scalars_are_accepted_where_numbers_and_bools_are():
    import numpy as np

    from backprop import experiments as E
    from backprop.data import truth_table
    from backprop.perceptron import perceptron_rule

    X, y = truth_table("and", "float64")
    r = perceptron_rule(X, y, lr=np.float32(0.05), epochs=np.int64(10), exact=np.True_)
    assert r.converged and r.exact
    E.perceptron("and", exact=np.True_, verbose=np.False_, out=lambda *a: None)


def test_ctrl_c_in_an_experiment_saves_what_it_has(tmp_path, monkeypatch, capsys):
    import backprop.experiments

    real = backprop.experiments.train_mlp

    def interrupted(*args, **kwargs):
        kwargs["epochs"] = 3
        exc = _Stop()
        exc.result = real(*args, **kwargs)
        raise exc

    monkeypatch.setattr(backprop.experiments, "train_mlp", interrupted)
    path = tmp_path / "s.npz"
    assert main(["single-layer", "--save", str(path)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"interrupted; the parameters so far are in {path}" in err
    from backprop import load

    assert load(path).training["gate"] == "and"


@needs_sklearn
@pytest.mark.slow  # a subprocess training digits until interrupted: ~5 s
def test_a_real_ctrl_c_during_fit_is_one_line_and_exit_130(tmp_path):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "fit", "--data", "iris", "--epochs", "20000",
         "--verbose", "--save", str(tmp_path / "m.npz")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    while not proc.stdout.readline().startswith("epoch"):
        pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("backprop fit: interrupted")
    # Parameters are saved when the training hands them back (KeyboardInterrupt.result).
    assert len(lines) == 1 or lines[0].startswith(f"saved to {tmp_path / 'm.npz'}")


@pytest.mark.parametrize(
    ("text", "label_column", "fragment"),
    [
        ("1,2,a\n3,x,b\n", None, "line 2: 'x' is not a number"),
        ("1,2,a\n3,4\n", None, "line 2: 2 columns, expected 3"),
        ("1,2,a\n3,4,\n", None, "line 2: the label is missing"),
        ("1,2,a\n3,4,nan\n", None, "line 2: the label is missing ('nan')"),
        ("1,2,a\nnan,4,b\n", None, "data row 2 holds NaN or infinity"),
        ("1,2\n", None, "has 2 columns, the model takes 2 features plus a label column"),
        ("x,y,z\n1,2,a\n", "w", "--label-column 'w' is not a column"),
        ("x,y,z\n", None, "holds a header and no rows"),
        ("", None, "holds no rows"),
    ],
)
def test_a_bad_csv_is_refused_naming_the_line(tmp_path, text, label_column, fragment):
    from backprop.cli import read_csv

    path = tmp_path / "rows.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_csv(str(path), 2, label_column, need_labels=True)
    assert fragment in str(info.value)


def test_a_csv_with_a_header_and_a_named_label_column(tmp_path):
    from backprop.cli import read_csv

    path = tmp_path / "rows.csv"
    path.write_text("label,a,b\ncat,1,2\ndog,3.5,-4e1\n")
    X, labels = read_csv(str(path), 2, "label", need_labels=True)
    assert X.tolist() == [[1, 2], [3.5, -40]] and labels.tolist() == ["cat", "dog"]
    X, labels = read_csv(str(path), 2, "0", need_labels=False)
    assert labels.tolist() == ["cat", "dog"]


@needs_sklearn
def test_a_batch_larger_than_the_data_is_said_not_silent(capsys):
    assert main(["fit", "--data", "iris", "--epochs", "1", "--batch-size", "1000"]) == 0
    out = capsys.readouterr().out
    assert "note: --batch-size 1000 is more than the 112 training rows" in out


def test_a_ctrl_c_is_recorded_where_raising_would_lose_it_or_crash():
    """Under caught(): a SIGINT inside deferred() or inside a __del__ / gc callback is only
    recorded, and raised by the next check(); elsewhere it is raised at once."""
    import os
    import signal

    from backprop import _interrupt

    before = signal.getsignal(signal.SIGINT)  # xdist's workers ignore SIGINT
    _interrupt.check()  # nothing pending outside caught()
    with _interrupt.caught():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**6):  # the handler runs between bytecodes
                pass
    with _interrupt.caught():
        with pytest.raises(KeyboardInterrupt), _interrupt.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**5):
                pass
            assert _interrupt._pending  # recorded, not raised inside
    with _interrupt.caught():

        class Dropping:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10**5):
                    pass

        Dropping()  # an exception raised in __del__ would be printed and lost
        with pytest.raises(KeyboardInterrupt):
            _interrupt.check()
    _interrupt.check()  # cleared when caught() ends
    assert signal.getsignal(signal.SIGINT) is before  # restored


@needs_sklearn
@needs_jax
@pytest.mark.slow  # four subprocesses compiling JAX: ~15 s
@pytest.mark.parametrize("delay", [1.6, 2.0, 2.4, 2.8])
def test_ctrl_c_while_jax_compiles_is_one_line_and_exit_130(delay):
    """Landing during JAX's import, tracing or compilation: before, 3 of 10 such tries
    crashed at exit (segmentation fault) and some were lost in a gc callback."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "fit", "--data", "digits", "--backend", "jax",
         "--epochs", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    start = time.perf_counter()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines() == ["backprop fit: interrupted"], err[-2000:]
    assert time.perf_counter() - start < 20  # not the 3,000 epochs run to the end
