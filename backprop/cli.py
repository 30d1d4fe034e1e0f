"""Command line: ``python -m backprop`` (or the ``backprop`` script).

With no sub-command it runs the main job, ``xor``: train the 2-2-1 XOR
network with hand-written backprop on every backend that is installed and
print a short summary per backend (``--verbose`` adds the cost history).
``fit`` trains a network on a real data set and ``--save`` writes a model
file that ``predict`` and ``evaluate`` use; the other sub-commands are the
notes' experiments and the gradient check of every kernel.

Exit status: 0 done, 1 a failed check (gradcheck), 2 a usage error (every
problem found before any work, in one message), 130 interrupted (Ctrl-C:
the parameters reached so far are saved when ``--save`` was given and the
training code hands them back), 141 when stdout is a pipe that closed
(``| head``): the command stops writing and working, quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from backprop import _interrupt, optim
from backprop import experiments as E
from backprop.kernels import BACKENDS
from backprop.nets import ACTIVATIONS
from backprop.xor import DEFAULT_LR


class UsageError(Exception):
    """A bad argument or a missing optional dependency: one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _devices(text: str) -> int | str:
    return "all" if text == "all" else _positive_int(text)


def _jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _sklearn_available() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def _require(
    args: argparse.Namespace,
    backends: Sequence[str] = (),
    *,
    sklearn: bool = False,
    problems: list[str] | None = None,
) -> None:
    """Check everything a command needs before any work; one UsageError listing every problem.

    Missing optional dependencies (all of them, with the one pip command that
    installs them), output paths that cannot be written (``--save``, the
    ``--plot`` files), a ``--load`` file that is not there, flags that
    contradict each other.
    """
    problems = list(problems or [])
    extras: list[tuple[str, str]] = []  # (what needs it, extra)
    if "jax" in backends and not _jax_available():
        extras.append(("--backend jax needs JAX", "jax"))
    if sklearn and not _sklearn_available():
        extras.append((f"{args.command} --data needs scikit-learn", "data"))
    if getattr(args, "plot", None):
        from backprop.plots import require_matplotlib

        try:
            require_matplotlib()
        except ImportError:
            extras.append(("--plot needs matplotlib", "plot"))
    if extras:
        names = ",".join(extra for _, extra in extras)
        problems.append(
            "; ".join(what for what, _ in extras) + f": pip install 'backprop-by-hand[{names}]'"
        )
    if getattr(args, "quiet", False) and getattr(args, "verbose", False):
        problems.append("--quiet and --verbose contradict each other: give one")
    if getattr(args, "save", None):  # checked now, not after the training it would lose
        problems.extend(_writable("--save", args.save, ".npz"))
    if getattr(args, "plot", None):
        problems.extend(_writable("--plot", args.plot, ".png"))
    load = getattr(args, "load", None)
    if load and not os.path.isfile(load):
        what = "is a directory" if os.path.isdir(load) else "does not exist"
        problems.append(f"--load {load!r}: no parameter file at {load!r} (it {what})")
    if problems:
        raise UsageError("; ".join(problems))


def _writable(flag: str, name: str, suffix: str) -> list[str]:
    """Why ``name`` cannot be written as ``flag``'s output file (empty when it can)."""
    from pathlib import Path

    target = Path(name)
    directory = target.parent
    if target.suffix != suffix:
        return [f"{flag} must name a {suffix} file, got {name!r}"]
    if target.is_dir():
        return [f"{flag} {name!r} is a directory, not a {suffix} file"]
    if not directory.is_dir():
        return [f"{flag} {name!r}: directory {str(directory)!r} does not exist"]
    if not os.access(directory, os.W_OK | os.X_OK):
        return [f"{flag} {name!r}: no permission to write in {str(directory)!r}"]
    return []


# --- xor: the main job ------------------------------------------------------------


def run_xor(args: argparse.Namespace) -> int:
    """Train XOR on each requested backend; print a summary per backend."""
    from backprop import train_xor_manual

    backends = BACKENDS if args.backend == "all" else (args.backend,)
    _require(args, () if args.backend == "all" else backends)
    init = None
    if args.load:
        init = _load_xor(args.load, args.hidden, args.quiet)
    failed = False
    last = None
    for name in backends:
        if not args.quiet:
            print(f"== XOR 2-{args.hidden}-1, hand-written backprop, {name} {args.dtype} ==")
        if name == "jax" and not _jax_available():
            print("jax: skipped, JAX is not installed (pip install 'backprop-by-hand[jax]')")
            continue
        r = train_xor_manual(
            backend=name,
            epochs=args.epochs,
            lr=args.lr,
            hidden=args.hidden,
            seed=args.seed,
            init=init,
            dtype=args.dtype,
            log_every=args.log_every,
            verbose=args.verbose,
        )
        if not args.quiet:
            print(r.truth_table())
        compiled = f", compile {r.compile_time:.2f} s" if name == "jax" else ""
        print(
            f"{name}: accuracy {r.accuracy:.0%}, cost {_g(r.costs[0])} -> {_g(r.costs[-1])}, "
            f"{r.time_per_epoch * 1e6:.3g} us/epoch ({r.epochs} epochs in {r.train_time:.3g} s"
            f"{compiled})"
        )
        failed |= r.accuracy < 1.0
        last = r
    if failed:
        print(
            f"note: some run did not solve XOR in {args.epochs} epochs: too few epochs, or one "
            "of the ~30 % of starts that stall in a local minimum - try more --epochs or "
            "another --seed"
        )
    if last is not None and args.save:
        _save(
            args.save,
            _xor_layers(last.params),
            args.quiet,
            net=_xor_net(args.hidden),
            classes=[0, 1],
            training=_settings(args, ("epochs", "lr", "hidden", "seed", "dtype", "log_every")),
        )
    if last is not None and args.plot:
        from backprop import plots
        from backprop.data import xor_data

        stem = args.plot[: -len(".png")]
        plots.plot_loss(last.costs, args.plot, title="XOR cost", x=last.cost_epochs)
        X, y = xor_data()
        plots.plot_decision_boundary(
            _xor_layers(last.params), _xor_net(args.hidden), X, y, f"{stem}-boundary.png"
        )
        _say(args, f"plots written: {args.plot}, {stem}-boundary.png")
    return 0


def _g(value: Any) -> str:
    """A float with the digits its dtype holds, not more (float32: 6 significant)."""
    digits = 6 if getattr(value, "dtype", None) is not None and value.dtype.itemsize == 4 else 8
    return f"{float(value):.{digits}g}"


def _xor_layers(params: Any) -> tuple[Any, ...]:
    from backprop.nets import Layer

    return (Layer(params.w1, params.b1), Layer(params.w2, params.b2))


def _xor_net(hidden: int) -> Any:
    from backprop.nets import make_net

    return make_net([2, hidden, 1], "sigmoid", "sigmoid")


def _load_xor(path: str, hidden: int, quiet: bool) -> dict[str, Any]:
    (w1, b1), (w2, b2) = _load_init(path, _xor_net(hidden), quiet)
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _load_init(path: str, net: Any, quiet: bool) -> tuple[Any, ...]:
    """Starting parameters from ``path`` for ``net``; a file describing another net is refused."""
    from backprop.io import load_params

    params = load_params(path, net)
    if not quiet:
        print(f"starting from the parameters in {path}")
    return params


def _say(args: argparse.Namespace, text: str) -> None:
    """Print unless --quiet (which prints the result only)."""
    if not getattr(args, "quiet", False):
        print(text)


def _save_interrupted(args: argparse.Namespace, exc: BaseException, **describe: Any) -> None:
    """On Ctrl-C: save the parameters the training handed back (``exc.result``) with --save.

    Marks ``exc.saved`` with the path, for :func:`main`'s one line.
    """
    partial = getattr(exc, "result", None)
    if not getattr(args, "save", None) or partial is None:
        return
    from backprop.model import save

    epochs = getattr(partial, "epochs", "?")
    written = save(partial, args.save, **describe)
    print(
        f"saved to {written} (interrupted after {epochs} epochs: the parameters so far)",
        file=sys.stderr,
    )
    exc.saved = str(written)  # type: ignore[attr-defined]


def _settings(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _save(path: str, params: Any, quiet: bool, **describe: Any) -> None:
    """Save a model file (with its description) and say where, unless quiet."""
    from backprop.model import save

    written = save(params, path, **describe)
    if not quiet:
        print(f"saved to {written}")


# --- gradcheck -----------------------------------------------------------------------


def run_gradcheck(args: argparse.Namespace) -> int:
    """Print every kernel's finite-difference check, per backend; exit 1 unless all pass."""
    from backprop.kernel_checks import check_all_kernels, format_table
    from backprop.kernels import get_backend

    _require(args, () if args.backend == "all" else (args.backend,))
    results = {}
    for name in BACKENDS if args.backend == "all" else (args.backend,):
        if name == "jax" and not _jax_available():
            print("jax: skipped, JAX is not installed (pip install 'backprop-by-hand[jax]')")
            continue
        results[name] = check_all_kernels(get_backend(name), seed=args.seed)
    print(format_table(results))
    return 0 if all(r.ok for reports in results.values() for r in reports.values()) else 1


# --- the notes' experiments ----------------------------------------------------------


def run_experiment(args: argparse.Namespace) -> int:
    """Run one of the notes' experiments with the common options."""
    from backprop.progress import progress_bar

    name = args.command
    _require(args, (args.backend,) if hasattr(args, "backend") else ())
    lines: list[str] = []
    out = (lambda *a: lines.append(" ".join(map(str, a)))) if args.quiet else print
    if name == "perceptron":
        E.perceptron(
            args.gate,
            lr=args.lr,
            epochs=args.epochs,
            exact=args.exact,
            out=out,
            verbose=args.verbose,
        )
        _print_conclusion(lines)
        return 0
    train: dict[str, Any] = {"backend": args.backend, "seed": args.seed, "dtype": args.dtype}
    train["lr"], train["epochs"] = args.lr, args.epochs
    net = E.experiment_net(name, getattr(args, "activation", "sigmoid"))
    if args.load is not None:
        train["init"] = _load_init(args.load, net, args.quiet)
    classes = None if net.head.outputs == "values" else [0, 1]
    settings = _settings(args, ("lr", "epochs", "seed", "dtype", "backend", "gate"))
    try:
        with progress_bar(args.epochs, name) as progress:
            train["progress"] = progress
            result, data = _run_training(name, args, train, out, args.verbose)
    except KeyboardInterrupt as exc:
        _save_interrupted(args, exc, classes=classes, training=settings)
        raise
    _print_conclusion(lines)
    if args.save and name != "blobs":  # blobs saves (and reloads) as part of the experiment
        _save(args.save, result, args.quiet, classes=classes, training=settings)
    if args.plot:
        _plots(args, result, *data)
    return 0


def _print_conclusion(lines: list[str]) -> None:
    """--quiet: of everything an experiment said, its conclusion."""
    for line in lines:
        if line.startswith("conclusion:"):
            print(line)


def _run_training(
    name: str, args: argparse.Namespace, train: dict[str, Any], out: Any, verbose: bool
) -> tuple[Any, tuple[Any, ...]]:
    from backprop.data import truth_table, xor_blobs

    train["out"], train["verbose"] = out, verbose
    if name == "single-layer":
        return E.single_layer(args.gate, **train), truth_table(args.gate)
    if name == "deep":
        return E.deep_stack(activation=args.activation, **train), truth_table("xor")
    if name == "linear-mse":
        return E.linear_mse(args.gate, **train), truth_table(args.gate)
    result = E.blobs(save=args.save, **train)
    return result["result"], xor_blobs(seed=args.seed)[:2]


def _plots(args: argparse.Namespace, result: Any, X: Any, y: Any) -> None:
    """Loss curve to ``args.plot``; decision boundary and gradient norms beside it."""
    from backprop import plots

    path = args.plot
    stem = path[: -len(".png")]
    plots.plot_loss(result.losses, path)
    written = [path]
    if result.params[0].w.shape[0] == 2:
        plots.plot_decision_boundary(result.params, result.net, X, y, f"{stem}-boundary.png")
        written.append(f"{stem}-boundary.png")
    plots.plot_grad_norms(result.grad_norms, f"{stem}-gradnorms.png")
    written.append(f"{stem}-gradnorms.png")
    _say(args, "plots written: " + ", ".join(written))


# --- fit: a real data set -------------------------------------------------------------


def _fit_conflicts(args: argparse.Namespace) -> list[str]:
    """Flags of ``fit`` that contradict each other, each with the reason."""
    problems = []
    reads = optim.get(args.optimizer).reads  # what the chosen optimizer uses besides lr
    users = [name for name, spec in optim.OPTIMIZERS.items() if "momentum" in spec.reads]
    if args.momentum is not None and "momentum" not in reads:
        problems.append(
            f"--momentum applies to --optimizer {' or '.join(users)}, not {args.optimizer} "
            f"(it reads {', '.join(reads) or 'only the learning rate'})"
        )
    if args.nesterov and "nesterov" not in reads:
        users = [name for name, spec in optim.OPTIMIZERS.items() if "nesterov" in spec.reads]
        problems.append(f"--nesterov needs --optimizer {' or '.join(users)}, not {args.optimizer}")
    if args.patience is not None and not args.early_stopping:
        problems.append("--patience applies to --early-stopping: give both, or neither")
    if args.devices is not None and args.backend != "jax":
        problems.append("--devices splits batches over JAX devices: it needs --backend jax")
    distributed_run = args.coordinator is not None
    for flag, value in (("--num-processes", args.num_processes), ("--process-id", args.process_id)):
        if value is not None and not distributed_run:
            problems.append(f"{flag} needs --coordinator (a multi-process run)")
    if distributed_run:
        if args.num_processes is None or args.process_id is None:
            problems.append("--coordinator needs --num-processes and --process-id")
        if args.backend != "jax":
            problems.append("a multi-process run needs --backend jax")
    return problems


def run_fit(args: argparse.Namespace) -> int:
    """Train on a bundled data set; print progress and the train/test accuracy."""
    import numpy as np

    from backprop.data import load_dataset
    from backprop.progress import progress_bar
    from backprop.train import train_mlp

    args.data = args.data.replace("-", "_")
    _require(args, (args.backend,), sklearn=True, problems=_fit_conflicts(args))
    if args.model == "cnn":
        from backprop.cli_net import run_fit_cnn

        return run_fit_cnn(args, UsageError)
    args.lr = 1e-2 if args.lr is None else args.lr
    args.epochs = 50 if args.epochs is None else args.epochs
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    distributed_run = args.coordinator is not None
    if distributed_run:
        from backprop import distributed

        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, timeout=args.timeout
        )
        if args.devices is None:
            args.devices = "all"
    rank = args.process_id or 0
    quiet = args.quiet or rank != 0
    say = print if not quiet else (lambda *a, **k: None)
    d = load_dataset(args.data, test_size=args.test_size, seed=args.seed, dtype=args.dtype)
    X_train, y_train = d.X_train, d.y_train
    validation, label = (d.X_test, d.y_test), "test"
    if args.early_stopping:
        from backprop.estimator import _stratified_split

        X_train, y_train, X_val, y_val = _stratified_split(X_train, y_train, 0.1, args.seed)
        validation, label = (X_val, y_val), "validation"
    if distributed_run:  # each process trains on its own contiguous share of the rows
        share = np.array_split(np.arange(X_train.shape[0]), args.num_processes)[rank]
        X_train, y_train = X_train[share], y_train[share]
    sizes = [d.n_features, *args.hidden, d.n_classes]
    from backprop.nets import make_net

    net = make_net(sizes, args.activation, "softmax")
    init = _load_init(args.load, net, quiet) if args.load else None
    momentum = 0.9 if args.momentum is None else args.momentum
    patience = 10 if args.patience is None else args.patience
    say(
        f"== fit {args.data}: {'-'.join(map(str, sizes))} {args.activation}, {args.optimizer} lr "
        f"{args.lr:g}, batch {args.batch_size}, {args.epochs} epochs, {args.backend} "
        f"{args.dtype}{'' if args.devices is None else f', devices {args.devices}'} =="
    )
    batch_size = min(args.batch_size, X_train.shape[0])
    if batch_size < args.batch_size:
        say(
            f"note: --batch-size {args.batch_size} is more than the {X_train.shape[0]} training "
            "rows: every step uses all of them"
        )
    every = max(1, args.epochs // 10)

    def report(epoch: int, loss: float) -> None:
        if args.verbose or (not args.quiet and (epoch % every == 0 or epoch == args.epochs)):
            say(f"epoch {epoch:>5}  loss {loss:.4f}")

    settings = {
        "data": args.data,
        "test_size": args.test_size,
        "hidden": list(args.hidden),
        "activation": args.activation,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "momentum": momentum if "momentum" in optim.get(args.optimizer).reads else None,
        "nesterov": args.nesterov,
        "alpha": args.alpha,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "shuffle": not args.no_shuffle,
        "early_stopping": args.early_stopping,
        "patience": patience if args.early_stopping else None,
        "seed": args.seed,
        "init_scheme": "glorot",
    }

    def save_model(r: Any) -> None:
        from backprop.model import save

        written = save(
            r, args.save, classes=d.classes, mean=d.mean, scale=d.scale, training=settings
        )
        if not quiet:
            print(f"saved to {written}")

    t0 = time.perf_counter()
    # Every process of a multi-process run must compile the same program, callback
    # included, so all of them report (only rank 0 prints) and none draws a bar.
    try:
        with progress_bar(args.epochs, args.data, enabled=not distributed_run) as bar:
            progress = bar or report
            r = train_mlp(
                sizes,
                X_train,
                y_train,
                activation=args.activation,
                output="softmax",
                optimizer=args.optimizer,
                lr=args.lr,
                momentum=momentum,
                nesterov=args.nesterov,
                alpha=args.alpha,
                epochs=args.epochs,
                batch_size=batch_size,
                shuffle=not args.no_shuffle,
                validation=validation,
                early_stopping=args.early_stopping,
                patience=patience,
                seed=args.seed,
                init=init,
                init_scheme="glorot",
                backend=args.backend,
                dtype=args.dtype,
                devices=args.devices,
                progress=progress,
            )
    except KeyboardInterrupt as exc:
        if rank == 0:
            _save_interrupted(
                args, exc, classes=d.classes, mean=d.mean, scale=d.scale, training=settings
            )
        raise
    seconds = time.perf_counter() - t0
    from backprop.nets import predict

    test_pred = np.argmax(predict(r.params, d.X_test, r.net), axis=1)
    train_pred = np.argmax(predict(r.params, d.X_train, r.net), axis=1)
    if rank == 0:
        print(
            f"train accuracy {np.mean(train_pred == d.y_train):.1%}, test accuracy "
            f"{np.mean(test_pred == d.y_test):.1%} ({r.epochs} epochs"
            f"{f', stopped early at best epoch {r.best_epoch}' if r.stopped_early else ''}; "
            f"{r.time_per_epoch * 1e3:.3g} ms/epoch, {seconds:.2f} s in all"
            f"{f', compile {r.compile_time:.2f} s' if args.backend == 'jax' else ''})"
        )
    if rank == 0 and args.save:
        save_model(r)
    if rank == 0 and args.plot:
        from backprop import plots

        stem = args.plot[: -len(".png")]
        plots.plot_loss(
            r.losses,
            args.plot,
            title=f"{args.data}: loss",
            val_losses=r.val_losses,
            val_label=label,
            ln2=False,
        )
        plots.plot_confusion(d.y_test, test_pred, d.classes, f"{stem}-confusion.png")
        say(f"plots written: {args.plot} (training and {label} loss), {stem}-confusion.png")
    return 0


# --- predict and evaluate: a saved model ----------------------------------------------


def _model_inputs(args: argparse.Namespace, model: Any) -> tuple[Any, Any, str]:
    """The rows to predict or evaluate: X (N, D) raw features, labels (N,) or None, a name."""
    import numpy as np

    if args.data is not None:
        from backprop.data import load_dataset

        name = args.data.replace("-", "_")
        t = model.training
        test_size = args.test_size if args.test_size is not None else t.get("test_size", 0.25)
        seed = args.seed if args.seed is not None else t.get("seed", 0)
        d = load_dataset(name, test_size=float(test_size), seed=int(seed), standardize=False)
        if d.n_features != model.n_features:
            raise ValueError(
                f"the model takes {model.n_features} features, data set {name} has {d.n_features}"
            )
        labels = np.asarray(d.classes)[d.y_test]
        if model.classes is None or model.classes.dtype.kind != "U":
            labels = d.y_test
        return d.X_test, labels, f"{name}'s test split ({d.X_test.shape[0]} rows)"
    X, labels = read_csv(args.csv, model.n_features, args.label_column, need_labels=args.evaluate)
    if labels is not None and model.classes is not None:
        labels = _match_labels(labels, model.classes)
    return X, labels, f"{args.csv} ({X.shape[0]} rows)"


def _match_labels(labels: Any, classes: Any) -> Any:
    """CSV label text matched to the model's classes (by their text, or as numbers)."""
    import numpy as np

    by_text = {str(c): c for c in classes.tolist()}
    out = []
    for text in labels:
        if text in by_text:
            out.append(by_text[text])
            continue
        try:
            number = float(text)
        except ValueError:
            number = None
        match = [c for c in classes.tolist() if number is not None and c == number]
        if not match:
            raise ValueError(
                f"label {text!r} in the CSV is not one of the model's classes {classes.tolist()}"
            )
        out.append(match[0])
    return np.asarray(out, dtype=classes.dtype)


def read_csv(
    path: str, n_features: int, label_column: str | None, *, need_labels: bool
) -> tuple[Any, Any]:
    """A comma-separated file as features X (N, n_features) and text labels (N,) or None.

    An optional first row of column names (recognised by holding no number);
    ``label_column`` names the label column or gives its 0-based index;
    without it, evaluation takes the last column. Empty cells, NaN and
    infinity are refused with the row and column.
    """
    import csv

    import numpy as np

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row]
    except FileNotFoundError as exc:
        raise FileNotFoundError(exc.errno, f"no CSV file at {path!r}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path!r} is not a UTF-8 text file: {exc}") from None
    if not rows:
        raise ValueError(f"{path!r} holds no rows")
    header = None
    if not any(_is_number(v) for v in rows[0]):  # a data row has numbers: its features
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    width = len(rows[0]) if rows else len(header or [])
    if not rows:
        raise ValueError(f"{path!r} holds a header and no rows")
    label_at = None
    if label_column is not None:
        if header is not None and label_column in header:
            label_at = header.index(label_column)
        elif label_column.lstrip("-").isdigit() and -width <= int(label_column) < width:
            label_at = int(label_column) % width
        else:
            names = f"; its columns are {header}" if header else ""
            raise ValueError(f"--label-column {label_column!r} is not a column of {path!r}{names}")
    elif need_labels or width == n_features + 1:
        label_at = width - 1
    want = n_features + (label_at is not None)
    if width != want:
        raise ValueError(
            f"{path!r} has {width} columns, the model takes {n_features} features"
            + (" plus a label column" if label_at is not None else "")
        )
    X = np.empty((len(rows), n_features))
    labels = []
    for r, row in enumerate(rows):
        i = r + (2 if header else 1)  # the line number
        if len(row) != width:
            raise ValueError(f"{path!r} line {i}: {len(row)} columns, expected {width}")
        values = [v.strip() for j, v in enumerate(row) if j != label_at]
        try:
            X[r] = [float(v) for v in values]
        except ValueError:
            bad = next(v for v in values if not _is_number(v))
            raise ValueError(f"{path!r} line {i}: {bad!r} is not a number") from None
        if label_at is not None:
            text = row[label_at].strip()
            if text.lower() in ("", "nan", "na", "none", "null"):
                raise ValueError(f"{path!r} line {i}: the label is missing ({text!r})")
            labels.append(text)
    if not np.all(np.isfinite(X)):
        row = int(np.flatnonzero(~np.all(np.isfinite(X), axis=1))[0])
        raise ValueError(f"{path!r}: data row {row + 1} holds NaN or infinity")
    return X, (np.asarray(labels) if label_at is not None else None)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_predict(args: argparse.Namespace) -> int:
    """Print one prediction per row (or class probabilities with --proba)."""
    from backprop.model import load_model

    args.evaluate = False
    _require(args, sklearn=args.data is not None, problems=_input_conflicts(args))
    model = load_model(args.model)
    X, _, _ = _model_inputs(args, model)
    if args.proba:
        p = model.predict_proba(X)
        if model.classes is not None and not args.quiet:
            print(",".join(str(c) for c in model.classes.tolist()))
        for row in p:
            print(",".join(f"{v:.6g}" for v in row))
    else:
        for value in model.predict(X):
            print(value if getattr(value, "ndim", 0) == 0 else ",".join(map(str, value)))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Print accuracy and loss on labelled rows."""
    from backprop.model import load_model

    args.evaluate = True
    _require(args, sklearn=args.data is not None, problems=_input_conflicts(args))
    model = load_model(args.model)
    X, labels, where = _model_inputs(args, model)
    n = X.shape[0]
    _say(args, f"== {args.model}: {model.net} on {where} ==")
    if model.net.head.outputs == "values":
        scores = model.evaluate(X, _numbers(labels))
        print(f"mean squared error {scores['loss']:.6g} over {n} rows")
        return 0
    scores = model.evaluate(X, labels)
    wrong = round((1 - scores["accuracy"]) * n)
    print(
        f"accuracy {scores['accuracy']:.1%} ({wrong} {'mistake' if wrong == 1 else 'mistakes'} "
        f"in {n} rows), loss {scores['loss']:.4f}"
    )
    return 0


def _numbers(labels: Any) -> Any:
    """A regression model's target column, as numbers."""
    import numpy as np

    try:
        return np.asarray(labels, dtype=np.float64)
    except ValueError:
        bad = next(v for v in labels.tolist() if not _is_number(str(v)))
        raise ValueError(f"the target column must hold numbers, got {bad!r}") from None


def _input_conflicts(args: argparse.Namespace) -> list[str]:
    problems = []
    if (args.data is None) == (args.csv is None):
        problems.append("give the rows to use: --data NAME or --csv FILE (one of them)")
    if args.data is None and (args.test_size is not None or args.seed is not None):
        problems.append(
            "--test-size and --seed choose a bundled data set's split: they need --data"
        )
    if args.csv is None and args.label_column is not None:
        problems.append("--label-column applies to --csv")
    if not os.path.isfile(args.model):
        problems.append(f"no model file at {args.model!r}")
    return problems


# --- the parser ----------------------------------------------------------------------

FIT_DATA = ("digits", "iris", "wine", "breast-cancer", "breast_cancer")

LR_NOTES = {
    "single-layer": " (the notes' value)",
    "deep": " (the notes' value)",
    "perceptron": " (eta; the notes' value)",
    "linear-mse": " (the notes' Keras run used SGD's 0.01, one row at a time; full-batch "
    "descent on four rows needs a larger step)",
    "blobs": " (the notes' value)",
}


def _experiment_defaults(name: str) -> tuple[float, int]:
    """The lr and epochs an experiment runs with when not told otherwise."""
    import inspect

    fn = {
        "single-layer": E.single_layer,
        "deep": E.deep_stack,
        "perceptron": E.perceptron,
        "linear-mse": E.linear_mse,
        "blobs": E.blobs,
    }[name]
    params = inspect.signature(fn).parameters
    return params["lr"].default, params["epochs"].default


class _OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows every default."""


def _common(p: argparse.ArgumentParser, *, backends: Sequence[str], train: bool = True) -> None:
    p.add_argument("--backend", choices=backends, default=backends[0], help="where to train")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the initial parameters")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="precision")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    p.add_argument("--verbose", action="store_true", help="print the full history")
    if train:
        p.add_argument("--save", metavar="FILE.npz", help="save the trained parameters")
        p.add_argument("--load", metavar="FILE.npz", help="start from saved parameters")


def build_parser() -> argparse.ArgumentParser:
    """The ``backprop`` argument parser, every sub-command included."""
    parser = _OneLineErrors(
        prog="backprop",
        description="Hand-derived backpropagation on NumPy and JAX. "
        "With no command, runs 'xor' on every installed backend.",
        formatter_class=_Formatter,
    )
    from backprop import __version__

    parser.add_argument("--version", action="version", version=f"backprop {__version__}")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE first (before the command), e.g. one that calls "
        "backprop.register_activation: its names then work in --activation",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrors)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)

    xor = add("xor", "the main job: the notes' 2-2-1 XOR network, hand-written backprop")
    _common(xor, backends=("all", *BACKENDS))
    xor.add_argument("--epochs", type=_positive_int, default=10_000, help="full-batch updates")
    xor.add_argument("--lr", type=_positive_float, default=DEFAULT_LR, help="learning rate")
    xor.add_argument("--hidden", type=_positive_int, default=2, help="hidden units")
    xor.add_argument(
        "--log-every", type=_positive_int, default=100, help="epochs between recorded costs"
    )
    xor.add_argument(
        "--plot",
        metavar="OUT.png",
        help="write the cost curve to OUT.png and the decision boundary to OUT-boundary.png",
    )
    xor.set_defaults(run=run_xor)

    gc = add("gradcheck", "check every kernel's backward against finite differences")
    gc.add_argument("--backend", choices=("all", *BACKENDS), default="all", help="which kernels")
    gc.add_argument("--seed", type=_seed, default=0, help="seed of the random inputs")
    gc.set_defaults(run=run_gradcheck)

    experiments = {
        "single-layer": "experiments 1-2: one sigmoid unit on AND / OR (converge) and XOR (ln 2)",
        "deep": "experiment 5: 2-64-32-16-1 stack on XOR, with per-layer gradient norms",
        "perceptron": "experiment 6: Rosenblatt's rule with a step unit",
        "linear-mse": "experiment 7: one linear unit with MSE on AND / OR",
        "blobs": "experiment 9: four Gaussian blobs, 2-5-1 ReLU net, save, load, predict",
    }
    for name, text in experiments.items():
        e = add(name, text)
        if name == "perceptron":
            # The rule is not a network trained by backprop: no backend, seed (it starts
            # from the notes' weights), dtype (float64 or --exact), files or plots.
            e.add_argument("--quiet", action="store_true", help="print only the conclusion")
            e.add_argument(
                "--verbose", action="store_true", help="print every pass (default: the first 10)"
            )
            e.add_argument(
                "--exact",
                action="store_true",
                help="exact decimal arithmetic, as the notes computed by hand",
            )
        else:
            _common(e, backends=BACKENDS)
            e.add_argument(
                "--plot",
                metavar="OUT.png",
                help="write the loss curve to OUT.png, and OUT-boundary.png (2-D inputs) and "
                "OUT-gradnorms.png beside it",
            )
        lr, epochs = _experiment_defaults(name)
        e.add_argument(
            "--lr", type=_positive_float, default=lr, help=f"learning rate{LR_NOTES[name]}"
        )
        e.add_argument("--epochs", type=_positive_int, default=epochs, help="passes over the data")
        if name in ("single-layer", "perceptron", "linear-mse"):
            gates = ("and", "or", "xor") if name != "linear-mse" else ("and", "or")
            e.add_argument("--gate", choices=gates, default="and", help="the truth table")
        if name == "deep":
            e.add_argument(
                "--activation",
                choices=("sigmoid", "relu", "tanh"),
                default="sigmoid",
                help="hidden activation",
            )
        e.set_defaults(run=run_experiment)

    fit = add(
        "fit",
        "train a network on a data set that ships with scikit-learn (train_mlp's options)",
    )
    fit.add_argument(
        "--data",
        choices=FIT_DATA,
        default="digits",
        metavar="{digits,iris,wine,breast-cancer}",
        help="scikit-learn's bundled data set (no download)",
    )
    _common(fit, backends=BACKENDS)
    fit.add_argument(
        "--hidden", type=_positive_int, nargs="+", default=[128], help="hidden layer sizes"
    )
    fit.add_argument(
        "--activation",
        choices=tuple(ACTIVATIONS),  # read from the registry: registered ones too
        default="relu",
        help="hidden activation",
    )
    fit.add_argument(
        "--optimizer",
        choices=tuple(optim.OPTIMIZERS),  # read from the registry: registered ones too
        default="adam",
        help="the optimizer",
    )
    fit.add_argument("--solver", help=argparse.SUPPRESS)  # renamed: refused with the new name
    fit.add_argument(
        "--model",
        choices=("mlp", "cnn"),
        default="mlp",
        help="mlp: dense layers (--hidden); cnn: two 3x3 convolutions on the 8x8 digits",
    )
    fit.add_argument(
        "--lr", type=_positive_float, help="learning rate (default 1e-2; cnn: 3e-3, cosine decay)"
    )
    fit.add_argument(
        "--momentum", type=_nonnegative_float, help="--optimizer momentum's momentum (0.9)"
    )
    fit.add_argument(
        "--nesterov", action="store_true", help="Nesterov's momentum (--optimizer momentum)"
    )
    fit.add_argument("--alpha", type=_nonnegative_float, default=1e-4, help="L2 penalty")
    fit.add_argument(
        "--weight-decay",
        type=_nonnegative_float,
        help="cnn: decoupled weight decay (AdamW; default 1e-2)",
    )
    fit.add_argument(
        "--epochs", type=_positive_int, help="passes over the data (default 50; cnn: 20)"
    )
    fit.add_argument("--batch-size", type=_positive_int, help="rows per step (default 64; cnn: 32)")
    fit.add_argument("--no-shuffle", action="store_true", help="keep the rows' order")
    fit.add_argument(
        "--early-stopping",
        action="store_true",
        help="hold out 10%% of the training rows; stop when their loss stops improving",
    )
    fit.add_argument(
        "--patience",
        type=_positive_int,
        help="--early-stopping: epochs without improvement allowed (10)",
    )
    fit.add_argument("--test-size", type=_fraction, default=0.25, help="test fraction (stratified)")
    fit.add_argument("--devices", type=_devices, help="JAX devices to split batches over, or all")
    fit.add_argument(
        "--coordinator", metavar="HOST:PORT", help="multi-process: process 0's address"
    )
    fit.add_argument("--num-processes", type=_positive_int, help="multi-process: how many")
    fit.add_argument("--process-id", type=_seed, help="multi-process: this process's rank")
    fit.add_argument(
        "--timeout", type=_positive_int, default=60, help="multi-process: seconds to wait"
    )
    fit.add_argument(
        "--plot",
        metavar="OUT.png",
        help="write the loss curves to OUT.png and the test confusion matrix to OUT-confusion.png",
    )
    fit.set_defaults(run=run_fit)

    for name, text, run in (
        ("predict", "print a saved model's prediction for every row", run_predict),
        ("evaluate", "print a saved model's accuracy and loss on labelled rows", run_evaluate),
    ):
        c = add(name, text)
        c.add_argument("model", metavar="MODEL.npz", help="a model file (fit --save)")
        c.add_argument(
            "--data",
            choices=FIT_DATA,
            metavar="{digits,iris,wine,breast-cancer}",
            help="a bundled data set's test split (the split the model was trained beside)",
        )
        c.add_argument("--csv", metavar="FILE", help="rows of comma-separated numbers")
        c.add_argument(
            "--label-column",
            metavar="NAME|INDEX",
            help="the CSV's label column (evaluate: default the last)",
        )
        c.add_argument("--test-size", type=_fraction, help="--data: test fraction (as trained)")
        c.add_argument("--seed", type=_seed, help="--data: seed of the split (as trained)")
        c.add_argument("--quiet", action="store_true", help="print the result only")
        if name == "predict":
            c.add_argument(
                "--proba", action="store_true", help="class probabilities, one row per line"
            )
        c.set_defaults(run=run)

    gpt = add("gpt", "a small character-level GPT on the standard library's own source")
    gpt.add_argument("--backend", choices=BACKENDS, default="jax", help="where to train")
    gpt.add_argument("--seed", type=_seed, default=0, help="seed of the parameters and batches")
    gpt.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    gpt.add_argument(
        "--minutes",
        type=_positive_float,
        default=4.5,
        help="training time budget (then ~20 s of test)",
    )
    gpt.add_argument("--epochs", type=_positive_int, default=40, help="evaluations (cosine span)")
    gpt.add_argument("--steps", type=_positive_int, default=50, help="steps between evaluations")
    gpt.add_argument("--context", type=_positive_int, default=64, help="characters per window")
    gpt.add_argument("--dim", type=_positive_int, default=128, help="model width")
    gpt.add_argument("--heads", type=_positive_int, default=4, help="attention heads")
    gpt.add_argument("--blocks", type=_positive_int, default=2, help="transformer blocks")
    gpt.add_argument("--batch-size", type=_positive_int, default=32, help="windows per step")
    gpt.add_argument("--lr", type=_positive_float, default=3e-3, help="peak learning rate")
    gpt.add_argument("--eval-windows", type=_positive_int, default=256, help="held-out windows")
    gpt.add_argument("--sample", type=_positive_int, default=300, help="characters to sample")
    gpt.add_argument(
        "--devices", type=_devices, help="JAX devices to split each batch's windows over, or all"
    )
    gpt.set_defaults(run=run_gpt)
    return parser


def run_gpt(args: argparse.Namespace) -> int:
    """Train the small GPT (:func:`backprop.cli_net.run_gpt`)."""
    from backprop.cli_net import run_gpt as run

    problems = []
    if args.devices is not None and args.backend != "jax":
        problems.append("--devices splits batches over JAX devices: it needs --backend jax")
    _require(args, (args.backend,), problems=problems)
    return run(args, UsageError)


def _import_user_modules(argv: list[str]) -> list[str]:
    """Import every ``--import MODULE`` given before the command; return the rest of argv.

    A user's registrations (:func:`backprop.register_activation` and the
    like) live in their own module; importing it before the parser is built
    makes its names valid choices. The current directory is searched first,
    as ``python -m`` does. ``UsageError`` naming the module if it cannot be
    imported.
    """
    import importlib

    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if not rest and word == "--import":
            if i + 1 == len(argv):
                raise UsageError("--import needs a MODULE")
            module, i = argv[i + 1], i + 2
        elif not rest and word.startswith("--import="):
            module, i = word.split("=", 1)[1], i + 1
        else:
            rest.append(word)
            i += 1
            continue
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UsageError(f"--import {module}: {exc}") from None
        except Exception as exc:  # the module's own error, e.g. a refused kernel
            raise UsageError(f"--import {module} failed: {type(exc).__name__}: {exc}") from None
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 ok, 1 a failed check, 2 an error (one line on stderr), 130 interrupted
    (Ctrl-C; one line), 141 stdout closed under us (a pipe whose reader left).
    """
    program = argv is None  # run as the program (python -m backprop), not from Python
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = _import_user_modules(argv)
    except UsageError as exc:
        _stderr(f"backprop: error: {exc}")
        return 2
    parser = build_parser()  # after the imports: choices list what they registered
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["xor", *argv]
    _line_buffered()
    args = None
    try:
        args = parser.parse_args(argv)
        if getattr(args, "solver", None) is not None:
            raise UsageError(
                "fit --solver is now --optimizer (train_mlp's name): " + ", ".join(optim.OPTIMIZERS)
            )
        run: Callable[[argparse.Namespace], int] = args.run
        with _interrupt.caught():  # a Ctrl-C is recorded, not only raised: never lost
            return run(args)
    except KeyboardInterrupt as exc:
        if program:  # leaving: a second Ctrl-C must not cut the exit short
            _interrupt.ignore_further()
        command = _prefix(args)
        saved = getattr(exc, "saved", None)
        kept = f"; the parameters so far are in {saved}" if saved else ""
        if not saved and getattr(args, "save", None):
            kept = "; nothing saved (no parameters were handed back)"
        _stderr(f"{command}: interrupted{kept}")
        return 130
    except BrokenPipeError:
        _stdout_closed()
        return 141
    except (UsageError, ValueError, FloatingPointError, OSError, ImportError, TimeoutError) as exc:
        _stderr(f"{_prefix(args)}: error: {exc}")
        return 2


def _prefix(args: argparse.Namespace | None) -> str:
    command = getattr(args, "command", None)
    return f"backprop {command}" if command else "backprop"


def _line_buffered() -> None:
    """Flush every line, so a closed pipe is noticed at the next line, not at exit."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(line_buffering=True)
        except (ValueError, OSError):  # pragma: no cover - a detached or closed stream
            pass


def _stdout_closed() -> None:
    """Stop writing: point stdout at /dev/null so the exit's flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not a real file
        pass


def _stderr(text: str) -> None:
    try:
        print(text, file=sys.stderr)
    except (BrokenPipeError, ValueError):  # pragma: no cover - stderr closed too
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
