"""Command line: ``python -m backprop`` (or the ``backprop`` script).

With no sub-command it runs the main job, ``xor``: train the 2-2-1 XOR
network with hand-written backprop on every backend that is installed and
print a short summary per backend (``--verbose`` adds the cost history).
``fit`` trains a network on a real data set; the other sub-commands are the
notes' experiments and the gradient check of every kernel.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

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


def _devices(text: str) -> int | str:
    return "all" if text == "all" else _positive_int(text)


def _jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _require(args: argparse.Namespace, backends: Sequence[str] = ()) -> None:
    """Report missing optional dependencies before any work starts."""
    if "jax" in backends and not _jax_available():
        raise UsageError("--backend jax needs JAX: pip install 'backprop-by-hand[jax]'")
    if getattr(args, "save", None):  # checked now, not after the training it would lose
        import os
        from pathlib import Path

        target, directory = Path(args.save), Path(args.save).parent
        if target.suffix != ".npz":
            raise UsageError(f"--save must name a .npz file, got {args.save!r}")
        if target.is_dir():
            raise UsageError(f"--save {args.save!r} is a directory, not a .npz file")
        if not directory.is_dir():
            raise UsageError(f"--save {args.save!r}: directory {str(directory)!r} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UsageError(f"--save {args.save!r}: no permission to write in {str(directory)!r}")
    if getattr(args, "plot", None):
        if not args.plot.endswith(".png"):
            raise UsageError(f"--plot must name a .png file, got {args.plot!r}")
        from backprop.plots import require_matplotlib

        try:
            require_matplotlib()
        except ImportError as exc:
            raise UsageError(f"--plot: {exc}") from None


def _deprecated_flag(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=2)
    print(f"note: {old} is deprecated and will be removed; use {new}", file=sys.stderr)


# --- xor: the main job ------------------------------------------------------------


def run_xor(args: argparse.Namespace) -> int:
    """Train XOR on each requested backend; print a summary per backend."""
    from backprop import train_xor_manual

    if args.steps is not None:
        _deprecated_flag("--steps", "--epochs")
        args.epochs = args.steps
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    _require(args, () if args.backend == "all" else backends)
    init = None
    if args.load:
        init = _load_xor(args.load, args.hidden)
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
        _save(args.save, _xor_layers(last.params))
    if last is not None and args.plot:
        from backprop import plots
        from backprop.data import xor_data
        from backprop.nets import make_net

        stem = args.plot[: -len(".png")]
        plots.plot_loss(last.costs, args.plot, title="XOR cost", x=last.cost_epochs)
        X, y = xor_data()
        net = make_net([2, args.hidden, 1], "sigmoid", "sigmoid")
        plots.plot_decision_boundary(_xor_layers(last.params), net, X, y, f"{stem}-boundary.png")
        print(f"plots written: {args.plot}, {stem}-boundary.png")
    return 0


def _g(value: Any) -> str:
    """A float with the digits its dtype holds, not more (float32: 6 significant)."""
    digits = 6 if getattr(value, "dtype", None) is not None and value.dtype.itemsize == 4 else 8
    return f"{float(value):.{digits}g}"


def _xor_layers(params: Any) -> tuple[Any, ...]:
    from backprop.nets import Layer

    return (Layer(params.w1, params.b1), Layer(params.w2, params.b2))


def _load_xor(path: str, hidden: int) -> dict[str, Any]:
    from backprop.io import load_params

    (w1, b1), (w2, b2) = load_params(path, [2, hidden, 1])
    print(f"starting from the parameters in {path}")
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _save(path: str, params: Any) -> None:
    from backprop.io import save_params

    print(f"saved to {save_params(path, params)}")


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
        extra = {} if args.lr is None else {"lr": args.lr}
        if args.epochs is not None:
            extra["epochs"] = args.epochs
        E.perceptron(args.gate, exact=args.exact, out=out, **extra)
        _print_conclusion(lines)
        return 0
    if name == "deep" and args.hidden is not None:
        _deprecated_flag("deep --hidden", "deep --activation")
        args.activation = args.hidden
    train: dict[str, Any] = {"backend": args.backend, "seed": args.seed, "dtype": args.dtype}
    if args.lr is not None:
        train["lr"] = args.lr
    if args.epochs is not None:
        train["epochs"] = args.epochs
    if args.load is not None:
        from backprop.io import load_params

        train["init"] = load_params(args.load, E.SIZES[name])
        print(f"starting from the parameters in {args.load}")
    fn = {
        "single-layer": E.single_layer,
        "deep": E.deep_stack,
        "linear-mse": E.linear_mse,
        "blobs": E.blobs,
    }[name]
    import inspect

    epochs = train.get("epochs", inspect.signature(fn).parameters["epochs"].default)
    with progress_bar(epochs, name) as progress:
        train["progress"] = progress
        result, data = _run_training(name, args, train, out, args.verbose)
    _print_conclusion(lines)
    if args.save and name != "blobs":  # blobs saves (and reloads) as part of the experiment
        _save(args.save, result.params)
    if args.plot:
        _plots(args.plot, result, *data)
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


def _plots(path: str, result: Any, X: Any, y: Any) -> None:
    """Loss curve to ``path``; decision boundary and gradient norms beside it."""
    from backprop import plots

    stem = path[: -len(".png")]
    plots.plot_loss(result.losses, path)
    written = [path]
    if result.params[0].w.shape[0] == 2:
        plots.plot_decision_boundary(result.params, result.net, X, y, f"{stem}-boundary.png")
        written.append(f"{stem}-boundary.png")
    plots.plot_grad_norms(result.grad_norms, f"{stem}-gradnorms.png")
    written.append(f"{stem}-gradnorms.png")
    print("plots written: " + ", ".join(written))


# --- fit: a real data set -------------------------------------------------------------


def run_fit(args: argparse.Namespace) -> int:
    """Train on a bundled data set; print progress and the train/test accuracy."""
    import numpy as np

    from backprop.data import load_dataset, require_sklearn
    from backprop.progress import progress_bar
    from backprop.train import train_mlp

    if args.model == "cnn":
        from backprop.cli_net import run_fit_cnn

        _require(args, (args.backend,))
        return run_fit_cnn(args, UsageError)
    args.lr = 1e-3 if args.lr is None else args.lr
    args.epochs = 50 if args.epochs is None else args.epochs
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    distributed_run = args.coordinator is not None
    for flag, value in (("--num-processes", args.num_processes), ("--process-id", args.process_id)):
        if value is not None and not distributed_run:
            raise UsageError(f"{flag} needs --coordinator (a multi-process run)")
    if distributed_run:
        if args.num_processes is None or args.process_id is None:
            raise UsageError("--coordinator needs --num-processes and --process-id")
        if args.backend != "jax":
            raise UsageError("a multi-process run needs --backend jax")
    _require(args, (args.backend,))
    try:
        require_sklearn("fit --data")
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    if distributed_run:
        from backprop import distributed

        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, timeout=args.timeout
        )
        if args.devices is None:
            args.devices = "all"
    rank = args.process_id or 0
    say = print if rank == 0 else (lambda *a, **k: None)
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
    init = None
    if args.load:
        from backprop.io import load_params

        init = load_params(args.load, sizes)
        say(f"starting from the parameters in {args.load}")
    optimizer = "adam" if args.solver == "adam" else ("momentum" if args.momentum else "sgd")
    say(
        f"== fit {args.data}: {'-'.join(map(str, sizes))} {args.activation}, {args.solver} lr "
        f"{args.lr:g}, batch {args.batch_size}, {args.epochs} epochs, {args.backend} "
        f"{args.dtype}{'' if args.devices is None else f', devices {args.devices}'} =="
    )
    every = max(1, args.epochs // 10)

    def report(epoch: int, loss: float) -> None:
        if args.verbose or (not args.quiet and (epoch % every == 0 or epoch == args.epochs)):
            say(f"epoch {epoch:>5}  loss {loss:.4f}")

    t0 = time.perf_counter()
    # Every process of a multi-process run must compile the same program, callback
    # included, so all of them report (only rank 0 prints) and none draws a bar.
    with progress_bar(args.epochs, args.data, enabled=not distributed_run) as bar:
        progress = bar or report
        r = train_mlp(
            sizes,
            X_train,
            y_train,
            activation=args.activation,
            output="softmax",
            optimizer=optimizer,
            lr=args.lr,
            momentum=args.momentum if optimizer == "momentum" else 0.9,
            nesterov=args.nesterov,
            alpha=args.alpha,
            epochs=args.epochs,
            batch_size=min(args.batch_size, X_train.shape[0]),
            shuffle=not args.no_shuffle,
            validation=validation,
            early_stopping=args.early_stopping,
            patience=args.patience,
            seed=args.seed,
            init=init,
            init_scheme="glorot",
            backend=args.backend,
            dtype=args.dtype,
            devices=args.devices,
            progress=progress,
        )
    seconds = time.perf_counter() - t0
    from backprop.nets import predict

    test_pred = np.argmax(predict(r.params, d.X_test, r.net), axis=1)
    train_pred = np.argmax(predict(r.params, d.X_train, r.net), axis=1)
    say(
        f"train accuracy {np.mean(train_pred == d.y_train):.1%}, test accuracy "
        f"{np.mean(test_pred == d.y_test):.1%} ({r.epochs} epochs"
        f"{f', stopped early at best epoch {r.best_epoch}' if r.stopped_early else ''}; "
        f"{r.time_per_epoch * 1e3:.3g} ms/epoch, {seconds:.2f} s in all"
        f"{f', compile {r.compile_time:.2f} s' if args.backend == 'jax' else ''})"
    )
    if rank == 0 and args.save:
        _save(args.save, r.params)
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


# --- the parser ----------------------------------------------------------------------

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrors)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)

    xor = add("xor", "the main job: the notes' 2-2-1 XOR network, hand-written backprop")
    _common(xor, backends=("all", *BACKENDS))
    xor.add_argument("--epochs", type=_positive_int, default=10_000, help="full-batch updates")
    xor.add_argument("--steps", type=_positive_int, help=argparse.SUPPRESS)  # deprecated
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
            e.add_argument("--quiet", action="store_true", help="print only the result")
            e.add_argument("--verbose", action="store_true", help="(every pass is printed)")
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
            e.add_argument("--hidden", choices=("sigmoid", "relu"), help=argparse.SUPPRESS)
        e.set_defaults(run=run_experiment)

    fit = add("fit", "train a network on a data set that ships with scikit-learn")
    fit.add_argument(
        "--data",
        choices=("digits", "iris", "wine", "breast_cancer"),
        default="digits",
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
    fit.add_argument("--solver", choices=("adam", "sgd"), default="adam", help="the optimizer")
    fit.add_argument(
        "--model",
        choices=("mlp", "cnn"),
        default="mlp",
        help="mlp: dense layers (--hidden); cnn: two 3x3 convolutions on the 8x8 digits",
    )
    fit.add_argument(
        "--lr", type=_positive_float, help="learning rate (default 1e-3; cnn: 3e-3, cosine decay)"
    )
    fit.add_argument("--momentum", type=_nonnegative_float, default=0.9, help="sgd's momentum")
    fit.add_argument("--nesterov", action="store_true", help="Nesterov's momentum (sgd)")
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
        "--patience", type=_positive_int, default=10, help="epochs without improvement allowed"
    )
    fit.add_argument("--test-size", type=float, default=0.25, help="test fraction (stratified)")
    fit.add_argument("--devices", type=_devices, help="JAX devices to split batches over, or all")
    fit.add_argument(
        "--coordinator", metavar="HOST:PORT", help="multi-process: process 0's address"
    )
    fit.add_argument("--num-processes", type=_positive_int, help="multi-process: how many")
    fit.add_argument("--process-id", type=int, help="multi-process: this process's rank")
    fit.add_argument(
        "--timeout", type=_positive_int, default=60, help="multi-process: seconds to wait"
    )
    fit.add_argument(
        "--plot",
        metavar="OUT.png",
        help="write the loss curves to OUT.png and the test confusion matrix to OUT-confusion.png",
    )
    fit.set_defaults(run=run_fit)

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
    gpt.set_defaults(run=run_gpt)
    return parser


def run_gpt(args: argparse.Namespace) -> int:
    """Train the small GPT (:func:`backprop.cli_net.run_gpt`)."""
    from backprop.cli_net import run_gpt as run

    _require(args, (args.backend,))
    return run(args, UsageError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a failed check, 2 an error)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["xor", *argv]
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (UsageError, ValueError, FloatingPointError, OSError, ImportError, TimeoutError) as exc:
        print(f"backprop {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
