"""Command line: ``python -m backprop`` (or the ``backprop`` script).

With no sub-command it runs the main job, ``xor``: train the 2-2-1 XOR
network with hand-written backprop on every backend that is installed and
show the result.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from backprop.xor import DEFAULT_LR, train_xor_manual
from kernels import BACKENDS


class UsageError(Exception):
    """A bad argument: reported in one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def run_xor(args: argparse.Namespace) -> int:
    """Train XOR on each requested backend; print costs, truth table, accuracy, speed."""
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    failed = False
    for name in backends:
        print(f"== XOR 2-{args.hidden}-1, hand-written backprop, backend: {name} ==")
        if name == "jax" and not _jax_available():
            print("skipped: JAX is not installed (pip install 'backprop-by-hand[jax]')\n")
            if args.backend == "jax":
                raise UsageError("JAX is not installed: pip install 'backprop-by-hand[jax]'")
            continue
        r = train_xor_manual(
            backend=name,
            steps=args.steps,
            lr=args.lr,
            hidden=args.hidden,
            seed=args.seed,
            dtype=args.dtype,
            log_every=args.log_every,
            verbose=not args.quiet,
        )
        print(r.truth_table())
        compiled = f", compile {r.compile_time:.3f} s" if name == "jax" else ""
        print(
            f"accuracy {r.accuracy:.0%}  final cost {r.final_cost:.6f}  "
            f"{r.time_per_step * 1e6:.3f} us/step ({r.steps} steps in {r.train_time:.3f} s"
            f"{compiled})\n"
        )
        failed |= r.accuracy < 1.0
    if failed:
        print(
            f"note: some run did not solve XOR in {args.steps} steps: too few steps, or one of "
            "the ~30 % of starts that stall in a local minimum - try more --steps or another --seed"
        )
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    """Print every kernel's finite-difference check, per backend; exit 1 on a failure."""
    from backprop.kernel_checks import check_all_kernels, format_table
    from kernels import get_backend

    results = {}
    for name in BACKENDS if args.backend == "all" else (args.backend,):
        if name == "jax" and not _jax_available():
            print("jax: skipped, JAX is not installed (pip install 'backprop-by-hand[jax]')")
            continue
        results[name] = check_all_kernels(get_backend(name), seed=args.seed)
    print(format_table(results))
    return 0 if all(r.ok for reports in results.values() for r in reports.values()) else 1


def run_experiment(args: argparse.Namespace) -> int:
    """Run one of the notes' experiments with the common options."""
    from backprop import experiments as E
    from backprop.progress import progress_bar

    name = args.command
    if name == "perceptron":
        extra = {"eta": args.lr} if args.lr is not None else {}
        if args.epochs is not None:
            extra["max_passes"] = args.epochs
        E.perceptron(args.gate, **extra)
        return 0
    train = {"backend": args.backend, "seed": args.seed}
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
    epochs = train.get("epochs", inspect.signature(fn).parameters["epochs"].default)
    with progress_bar(epochs, name) as progress:
        train["progress"] = progress
        result, data = _run_training(name, args, train)
    if args.save and name != "blobs":  # blobs saves (and reloads) as part of the experiment
        from backprop.io import save_params

        print(f"saved to {save_params(args.save, result.params)}")
    if args.plot:
        _plots(args.plot, result, *data)
    return 0


def _run_training(name: str, args: argparse.Namespace, train: dict) -> tuple[Any, tuple]:
    from backprop import experiments as E
    from backprop.data import truth_table, xor_blobs

    if name == "single-layer":
        result, data = E.single_layer(args.gate, **train), truth_table(args.gate)
    elif name == "deep":
        result, data = E.deep_stack(hidden=args.hidden, **train), truth_table("xor")
    elif name == "linear-mse":
        result, data = E.linear_mse(args.gate, **train), truth_table(args.gate)
    elif name == "blobs":
        out = E.blobs(save=args.save, **train)
        result, data = out["result"], xor_blobs(seed=args.seed)[:2]
    return result, data


def _plots(path: str, result: object, X: object, y: object) -> None:
    """Loss curve to ``path``; decision boundary and gradient norms beside it."""
    from backprop import plots

    if not path.endswith(".png"):
        raise UsageError(f"--plot must name a .png file, got {path!r}")
    stem = path[: -len(".png")]
    plots.plot_loss(result.losses, path)
    written = [path]
    if result.params[0].w.shape[0] == 2:
        plots.plot_decision_boundary(result.params, result.config, X, y, f"{stem}-boundary.png")
        written.append(f"{stem}-boundary.png")
    plots.plot_grad_norms(result.grad_norms, f"{stem}-gradnorms.png")
    written.append(f"{stem}-gradnorms.png")
    print("plots written: " + ", ".join(written))


class _OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="backprop",
        description="Hand-derived backpropagation on NumPy and JAX. "
        "With no command, runs 'xor' on every installed backend.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrors)
    xor = sub.add_parser("xor", help="train the 2-2-1 XOR network by hand-written backprop")
    xor.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    xor.add_argument("--steps", type=_positive_int, default=10_000)
    xor.add_argument("--lr", type=_positive_float, default=DEFAULT_LR)
    xor.add_argument("--hidden", type=_positive_int, default=2)
    xor.add_argument("--seed", type=int, default=0)
    xor.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    xor.add_argument("--log-every", type=_positive_int, default=100)
    xor.add_argument("--quiet", action="store_true", help="do not print the cost history")
    xor.set_defaults(run=run_xor)

    gc = sub.add_parser("gradcheck", help="check every kernel's backward by finite differences")
    gc.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    gc.add_argument("--seed", type=int, default=0)
    gc.set_defaults(run=run_gradcheck)

    experiments = {
        "single-layer": "experiments 1-2: one sigmoid unit on AND / OR (converge) and XOR (ln 2)",
        "deep": "experiment 5: 2-64-32-16-1 stack on XOR, with per-layer gradient norms",
        "perceptron": "experiment 6: Rosenblatt's rule with a step unit (--lr is eta)",
        "linear-mse": "experiment 7: one linear unit with MSE on AND / OR",
        "blobs": "experiment 9: four Gaussian blobs, 2-5-1 ReLU net, save, load, predict",
    }
    for name, text in experiments.items():
        e = sub.add_parser(name, help=text, description=text)
        e.add_argument("--backend", choices=BACKENDS, default="numpy")
        e.add_argument("--seed", type=int, default=0)
        e.add_argument("--lr", type=_positive_float, default=None, help="default: the notes' value")
        e.add_argument(
            "--epochs", type=_positive_int, default=None, help="default: the notes' value"
        )
        if name in ("single-layer", "perceptron", "linear-mse"):
            gates = ("and", "or", "xor") if name != "linear-mse" else ("and", "or")
            e.add_argument("--gate", choices=gates, default="and")
        if name == "deep":
            e.add_argument("--hidden", choices=("sigmoid", "relu"), default="sigmoid")
        if name != "perceptron":
            e.add_argument(
                "--save", metavar="FILE.npz", default=None, help="save the trained parameters"
            )
            e.add_argument("--plot", metavar="OUT.png", default=None, help="write PNG plots")
            e.add_argument(
                "--load", metavar="FILE.npz", default=None, help="start from saved parameters"
            )
        e.set_defaults(run=run_experiment)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["xor", *argv]
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (UsageError, ValueError, FloatingPointError, OSError, ImportError) as exc:
        print(f"backprop {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
