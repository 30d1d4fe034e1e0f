"""Run every comparison in one process and print a Markdown report.

    python bench/report.py            # full report (a few minutes on 2 cores)
    python bench/report.py --quick    # fewer repeats and steps, for a smoke run

Times are medians over repeats, measured side by side in this one process,
the rows of a table taking their repeats in turns (so a slow spell of a
shared machine slows them all); ratios between rows are what to compare
across machines. JAX is given one
CPU device per core (XLA_FLAGS, set below before JAX is imported) so that
train_xor_many can use both cores; every other JAX workload runs on one
device.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import workloads as W

SETTLE = 0.1


def interleaved_medians(
    runs: dict[str, Callable[[], object]], repeats: int, min_time: float = 0.05
) -> dict[str, float]:
    """Median seconds per call of each run, its repeats taken in turns with the others'.

    Each repeat calls a run enough times to last ``min_time``. Round after
    round every run gets one repeat, so a slow spell of a shared machine
    falls on all of them alike and the ratios between them hold. Before each
    repeat the process sleeps ``SETTLE`` seconds: the thread pools of OpenBLAS
    and PyTorch spin for a while after their last call, and a run that starts
    while the previous library's threads still hold the cores measured up to
    1.6x slower. An untimed repeat follows the pause (after an idle pause the
    clock and caches are cold: the XOR loop measured 1.5x slower without it).
    """
    numbers = {}
    for name, run in runs.items():
        t0 = time.perf_counter()
        run()
        numbers[name] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            time.sleep(SETTLE)
            for _ in range(numbers[name]):  # untimed: caches and clocks back up
                run()
            t0 = time.perf_counter()
            for _ in range(numbers[name]):
                run()
            samples[name].append((time.perf_counter() - t0) / numbers[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt(seconds: float, unit: str) -> str:
    scale = {"ns": 1e9, "us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    return f"{seconds * scale:.3g} {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    xor_steps = 1_000 if args.quick else 10_000
    many_steps = 200 if args.quick else 1_000
    have_jax, have_torch = W.have("jax"), W.have("torch")

    import numpy as np

    lines = ["# backprop benchmark report", ""]
    threads = os.cpu_count()
    versions = [f"numpy {np.__version__}"]
    if have_jax:
        import jax

        versions.append(f"jax {jax.__version__} ({len(jax.devices())} CPU devices)")
    if have_torch:
        import torch

        versions.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    lines += [
        f"Machine: {cpu_name()}, {threads} logical CPUs, Python {platform.python_version()}; "
        + ", ".join(versions)
        + ".",
        f"Medians of {repeats} repeats ({2 * repeats + 1} of at least 0.2 s for the large "
        "step), taken in turns within each table, float32. Command: `python bench/report.py"
        + (" --quick`" if args.quick else "`")
        + ".",
        "",
    ]

    def row(table: list[str], name: str, t: float | None, unit: str, note: str = "") -> None:
        table.append(f"| {name} | {'-' if t is None else fmt(t, unit)} | {note} |")

    # 1. XOR loop
    per_step: dict[str, float] = {}
    xor_cases = [
        ("NumPy manual (train_xor_manual: fused, in place)", lambda: W.make_xor_numpy(xor_steps)),
        ("NumPy, kernel chain (xor_step per step)", lambda: W.make_xor_numpy_chain(xor_steps)),
    ]
    if have_jax:
        xor_cases += [
            (
                "JAX manual, whole loop compiled (data as constants)",
                lambda: W.make_xor_jax_compiled(xor_steps, "constants"),
            ),
            (
                "JAX manual, whole loop compiled (data as arguments)",
                lambda: W.make_xor_jax_compiled(xor_steps, "args"),
            ),
            ("JAX manual, one compiled call per step", lambda: W.make_xor_jax_per_step(xor_steps)),
            (
                "jax.grad, whole loop compiled (data as constants)",
                lambda: W.make_xor_jax_grad(xor_steps, "constants"),
            ),
            (
                "jax.grad, whole loop compiled (data as arguments)",
                lambda: W.make_xor_jax_grad(xor_steps, "args"),
            ),
        ]
    if have_torch:
        xor_cases.append(
            (
                "PyTorch eager autograd (nn.Sequential, BCELoss, SGD)",
                lambda: W.make_xor_torch(xor_steps),
            )
        )
    table = ["| workload | time per step | |", "|---|---|---|"]
    times = interleaved_medians({name: make() for name, make in xor_cases}, repeats)
    for name, t in times.items():
        per_step[name] = t / xor_steps
        row(table, name, per_step[name], "us")
    lines += [f"## XOR 2-2-1, {xor_steps:,} steps", "", *table, ""]
    ratios = []
    numpy_t = per_step[xor_cases[0][0]]
    torch_name = "PyTorch eager autograd (nn.Sequential, BCELoss, SGD)"
    if torch_name in per_step:
        ratios.append(
            ("PyTorch eager / NumPy manual (target >= 8)", per_step[torch_name] / numpy_t)
        )
    if have_jax:
        for form in ("constants", "arguments"):
            ratios.append(
                (
                    f"jax.grad / JAX manual, data as {form} (target >= 1)",
                    per_step[f"jax.grad, whole loop compiled (data as {form})"]
                    / per_step[f"JAX manual, whole loop compiled (data as {form})"],
                )
            )
        ratios.append(
            (
                "JAX one call per step / whole loop compiled",
                per_step["JAX manual, one compiled call per step"]
                / per_step["JAX manual, whole loop compiled (data as arguments)"],
            )
        )

    # 2. Large step
    large_cases = [
        ("NumPy manual step", lambda: W.make_large_step("numpy")),
        ("NumPy kernel chain step (mlp_step)", W.make_large_step_chain),
        ("NumPy matrix products alone", lambda: W.make_large_matmuls("numpy")),
    ]
    loop = f"in a compiled loop of {W.LOOP_STEPS}, per step"
    if have_jax:
        large_cases += [
            ("JAX manual step", lambda: W.make_large_step("jax")),
            ("JAX matrix products alone", lambda: W.make_large_matmuls("jax")),
            (f"JAX manual step, {loop}", lambda: W.make_large_jax_loop("step")),
            (f"JAX matrix products alone, {loop}", lambda: W.make_large_jax_loop("matmuls")),
            ("jax.grad step", W.make_large_jax_grad),
        ]
    if have_torch:
        large_cases.append(("PyTorch eager autograd step", W.make_large_torch))
    table = ["| workload | time per step | |", "|---|---|---|"]
    runs = {name: make() for name, make in large_cases}
    large = interleaved_medians(runs, 2 * repeats + 1, min_time=0.2)
    large = {name: t / (W.LOOP_STEPS if loop in name else 1) for name, t in large.items()}
    for name, t in large.items():
        row(table, name, t, "ms")
    n, d, h = W.LARGE
    lines += [f"## One step, MLP {d} -> {h} -> 1, batch {n}, sigmoid, BCE", "", *table, ""]
    for b in ("NumPy", "JAX"):
        if f"{b} manual step" in large:
            ratios.append(
                (
                    f"{b}: matrix products / manual step (target >= 0.90)",
                    large[f"{b} matrix products alone"] / large[f"{b} manual step"],
                )
            )
            if f"{b} manual step, {loop}" in large:
                ratios.append(
                    (
                        f"{b}: the same, {loop}",
                        large[f"{b} matrix products alone, {loop}"]
                        / large[f"{b} manual step, {loop}"],
                    )
                )
            if "PyTorch eager autograd step" in large:
                ratios.append(
                    (
                        f"PyTorch eager / {b} manual step (target > 1)",
                        large["PyTorch eager autograd step"] / large[f"{b} manual step"],
                    )
                )

    # 3. Many networks
    table = ["| workload | time per network-step | |", "|---|---|---|"]
    for n_nets in (1_000, 10_000):
        many: dict[str, float] = {}
        cases = []
        if have_jax:
            cases += [
                (
                    f"train_xor_many, JAX, n={n_nets:,}",
                    lambda n=n_nets: W.make_many(n, many_steps, "jax"),
                    many_steps,
                ),
                (
                    f"plain jax.vmap of the single loop, n={n_nets:,}",
                    lambda n=n_nets: W.make_many_plain_vmap(n, many_steps),
                    many_steps,
                ),
            ]
        numpy_steps = max(10, many_steps // 10)
        cases.append(
            (
                f"train_xor_many, NumPy batched, n={n_nets:,}",
                lambda n=n_nets, s=numpy_steps: W.make_many(n, s, "numpy"),
                numpy_steps,
            )
        )
        times = interleaved_medians({name: make() for name, make, _ in cases}, repeats)
        for name, _, steps in cases:
            many[name] = times[name] / (n_nets * steps)
            row(table, name, many[name], "ns")
        if have_jax:
            ratios.append(
                (
                    f"plain vmap / train_xor_many, n={n_nets:,} (target >= 2)",
                    many[f"plain jax.vmap of the single loop, n={n_nets:,}"]
                    / many[f"train_xor_many, JAX, n={n_nets:,}"],
                )
            )
    lines += [f"## Many XOR networks at once ({many_steps:,} steps; NumPy fewer)", "", *table, ""]

    # 4. Kernels
    table = ["| kernel (forward + backward) | size | NumPy | JAX (jitted) |", "|---|---|---|---|"]
    for op in W.KERNEL_OPS:
        for size in ("xor", "large"):
            backends = ("numpy", "jax") if have_jax else ("numpy",)
            times = interleaved_medians({b: W.make_kernel(op, size, b) for b in backends}, repeats)
            tn, tj = times["numpy"], times.get("jax")
            unit = "us" if size == "xor" else "ms"
            table.append(
                f"| {op} | {size} | {fmt(tn, unit)} | {'-' if tj is None else fmt(tj, unit)} |"
            )
    lines += ["## Kernels", "", "XOR size: 4 x 2 -> 2; large: 4096 x 512 -> 1024.", "", *table, ""]

    lines += ["## Ratios", "", "| comparison | ratio |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in ratios]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
