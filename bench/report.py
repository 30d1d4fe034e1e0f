"""Render pytest-benchmark JSON into the README's benchmark tables.

    python bench/report.py --run 3                # run the suite 3 times, print Markdown
    python bench/report.py run1.json run2.json    # render saved runs
    python bench/report.py --run 3 --readme       # ... and replace the README's section

pytest-benchmark measures (``pytest bench --benchmark-only``); this script
only reads its JSON. With several runs every figure is the median of the
runs' medians and every ratio is given as the median and the range over the
runs: this machine's speed drifts by up to 1.5x within minutes, and a ratio
taken within one run, where both sides saw the same spell, is what holds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- benchmark report: start -->", "<!-- benchmark report: end -->"


def load(paths: list[Path]) -> list[dict]:
    return [json.loads(p.read_text()) for p in paths]


def per_unit(run: dict, **match: object) -> dict[str, float]:
    """row -> median seconds per unit, for the benchmarks whose extra_info matches."""
    out = {}
    for b in run["benchmarks"]:
        info = b["extra_info"]
        if all(info.get(k) == v for k, v in match.items()):
            out[info["row"]] = b["stats"]["median"] / info["per"]
    return out


def fmt(seconds: float | None, unit: str) -> str:
    if seconds is None:
        return "-"
    scale = {"ns": 1e9, "us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    return f"{seconds * scale:.3g} {unit}"


def spread(values: list[float]) -> str:
    """Median (range) of a ratio over runs, or the one value."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def verdict(values: list[float], target: float) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "not measured"
    median = statistics.median(values)
    if min(values) >= target:
        return f"met (target >= {target:g})"
    if median >= target:
        return f"met in the median, not in every run (target >= {target:g})"
    return f"**missed** (target >= {target:g})"


def table(
    runs: list[dict], match: dict, unit: str, order: list[str] | None = None
) -> tuple[list[str], dict[str, float]]:
    """A two-column table of rows (median over runs) and the medians themselves."""
    rows: dict[str, list[float]] = {}
    for run in runs:
        for row, t in per_unit(run, **match).items():
            rows.setdefault(row, []).append(t)
    names = order or list(rows)
    medians = {r: statistics.median(rows[r]) for r in names if r in rows}
    lines = [f"| workload | time per {unit_name(match)} |", "|---|---|"]
    lines += [f"| {r} | {fmt(medians[r], unit)} |" for r in names if r in medians]
    return lines, medians


def unit_name(match: dict) -> str:
    return {
        "xor": "epoch",
        "many": "network-epoch",
        "mlp": "epoch",
        "large": "step",
        "scaling": "step",
    }.get(str(match.get("table")), "call")


def ratio_per_run(runs: list[dict], match: dict, num: Callable, den: Callable) -> list[float]:
    """num(rows) / den(rows) within each run."""
    out = []
    for run in runs:
        rows = per_unit(run, **match)
        try:
            out.append(num(rows) / den(rows))
        except (KeyError, ValueError, ZeroDivisionError):
            continue
    return out


def best_of(prefix: str) -> Callable[[dict[str, float]], float]:
    return lambda rows: min(t for r, t in rows.items() if r.startswith(prefix))


def machine(runs: list[dict]) -> str:
    m = runs[0]["machine_info"]
    info = m.get("backprop", {})
    blas = ", ".join(
        f"{p.get('internal_api')} {p.get('num_threads')} threads ({p.get('architecture')})"
        for p in info.get("blas", [])
    )
    env = info.get("blas_env") or {}
    versions = ", ".join(
        f"{k} {info[k]}" for k in ("numpy", "jax", "torch", "sklearn") if k in info
    )
    return (
        f"Machine: {m.get('cpu', {}).get('brand_raw', m.get('processor', '?'))}, "
        f"{m.get('cpu', {}).get('count', os.cpu_count())} logical CPUs, Python "
        f"{info.get('python', m.get('python_version'))}; {versions}; JAX with "
        f"{info.get('jax_devices', '-')} CPU devices; torch {info.get('torch_threads', '-')} "
        f"threads; BLAS: {blas or '?'}{'; ' + str(env) if env else ''}. "
        f"{len(runs)} run(s) of `pytest bench --benchmark-only`; figures are medians, "
        "ratios the median (range) over runs, each taken within one run."
    )


def render(runs: list[dict], equality: dict | None) -> str:
    """The whole report: one section per table, then the targets."""
    out = ["## Benchmark report", "", machine(runs), ""]
    targets: list[str] = []
    for section in (xor_section, many_section, mlp_section, large_section):
        lines, found = section(runs)
        out += lines
        targets += found
    out += scaling_section(runs, equality)
    out += kernel_section(runs)
    out += layer_section(runs)
    out += ["### Targets", "", "| comparison | ratio | verdict |", "|---|---|---|", *targets, ""]
    return "\n".join(out)


def xor_section(runs: list[dict]) -> tuple[list[str], list[str]]:
    lines, _ = table(runs, {"table": "xor"}, "us")
    torch_ratio = ratio_per_run(
        runs,
        {"table": "xor"},
        lambda r: r["PyTorch eager (the notes' loop, 1 thread)"],
        lambda r: r["NumPy train_xor_manual (in place)"],
    )
    grad_ratio = ratio_per_run(
        runs,
        {"table": "xor"},
        best_of("jax.grad peer"),
        lambda r: r["JAX train_xor_manual (compiled)"],
    )
    targets = [
        f"| PyTorch eager / NumPy train_xor_manual | {spread(torch_ratio)} | "
        f"{verdict(torch_ratio, 10)} |",
        f"| best jax.grad peer / JAX train_xor_manual | {spread(grad_ratio)} | "
        f"{verdict(grad_ratio, 1.3)} |",
    ]
    return ["### XOR 2-2-1, 10,000 full-batch epochs (float32)", "", *lines, ""], targets


def many_section(runs: list[dict]) -> tuple[list[str], list[str]]:
    rows, targets = [], []
    for n in (1_000, 10_000):
        for devices in (1, 2):
            match = {"table": "many", "n": n, "devices": devices}
            _, med = table(runs, match, "ns")
            peers = [t for r, t in med.items() if r.startswith("jit(vmap)")]
            numpy_t = med.get("train_xor_many (NumPy)") if devices == 1 else None
            r = ratio_per_run(
                runs, match, best_of("jit(vmap)"), lambda rows: rows["train_xor_many (JAX)"]
            )
            rows.append(
                f"| {n:,} | {devices} | {fmt(med.get('train_xor_many (JAX)'), 'ns')} | "
                f"{fmt(min(peers) if peers else None, 'ns')} | {spread(r)} | "
                f"{fmt(numpy_t, 'ns')} |"
            )
            targets.append(
                f"| sharded vmap peer / train_xor_many, n={n:,}, {devices} device(s) | "
                f"{spread(r)} | {verdict(r, 1.5)} |"
            )
    lines = [
        "### Many XOR networks at once (1,000 epochs, float32; per network-epoch)",
        "",
        "| networks | devices | train_xor_many (JAX) | best sharded jit(vmap) peer | "
        "peer / ours | train_xor_many (NumPy, 1 core) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    return lines, targets


def mlp_section(runs: list[dict]) -> tuple[list[str], list[str]]:
    rows, targets = [], []
    settings = sorted(
        {
            (b["extra_info"]["setting"], b["extra_info"]["dtype"])
            for run in runs
            for b in run["benchmarks"]
            if b["extra_info"].get("table") == "mlp"
        }
    )
    for setting, dtype in settings:
        match = {"table": "mlp", "setting": setting, "dtype": dtype}
        _, med = table(runs, match, "ms")
        cells = []
        for backend in ("numpy", "jax"):
            row = f"train_mlp ({backend})"
            r = ratio_per_run(
                runs, match, lambda rows: rows["MLPClassifier"], lambda rows, k=row: rows[k]
            )
            cells.append((fmt(med.get(row), "ms"), spread(r), r))
        rows.append(
            f"| {setting} | {dtype} | {fmt(med.get('MLPClassifier'), 'ms')} | "
            f"{cells[0][0]} | {cells[0][1]} | {cells[1][0]} | {cells[1][1]} |"
        )
        if (setting.startswith("breast") and dtype == "float64") or setting.startswith("digits"):
            for backend, (_, text, r) in zip(("NumPy", "JAX"), cells, strict=True):
                targets.append(
                    f"| MLPClassifier / train_mlp {backend}, {setting}, {dtype} | {text} | "
                    f"{verdict(r, 2)} |"
                )
    lines = [
        "### train_mlp per epoch against scikit-learn's MLPClassifier (same settings)",
        "",
        "| setting | dtype | MLPClassifier | train_mlp NumPy | ratio | train_mlp JAX | ratio |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    return lines, targets


def large_section(runs: list[dict]) -> tuple[list[str], list[str]]:
    lines, _ = table(runs, {"table": "large"}, "ms")
    targets = []
    for backend in ("numpy", "jax"):
        share = ratio_per_run(
            runs,
            {"table": "large"},
            lambda r, b=backend: r[f"matrix products ({b})"],
            lambda r, b=backend: r[f"train_mlp step ({b})"],
        )
        reached = share and statistics.median(share) >= 0.85
        targets.append(
            f"| matrix products / step, {backend} (aim >= 0.85, not gated) | {spread(share)} | "
            f"{'reached' if reached else 'not reached'} |"
        )
    title = "### One SGD step, 512 -> 1024 -> 1 sigmoid network, batch 4096 (float32)"
    return [title, "", *lines, ""], targets


def scaling_section(runs: list[dict], equality: dict | None) -> list[str]:
    _, med = table(runs, {"table": "scaling"}, "ms")
    out = []
    if med:
        speedup = ratio_per_run(
            runs, {"table": "scaling"}, lambda r: r["1 device(s)"], lambda r: r["2 device(s)"]
        )
        out += [
            "### Data-parallel train_mlp: digits 64-128-10, adam, batches of 1024 (float32)",
            "",
            "| devices | steps per second | time per step |",
            "|---|---|---|",
            *[f"| {r} | {1 / t:,.0f} steps/s | {fmt(t, 'ms')} |" for r, t in med.items()],
            "",
            f"2 devices / 1 device: {spread(speedup)}x the steps per second.",
            "",
        ]
    if equality:
        out += [
            "Equal results (float64, 5 epochs of digits, largest relative difference of the "
            "loss curve and the weights from the one-device run; `bench/equality.py` with 8 "
            "simulated devices):",
            "",
            "| run | devices | largest relative difference |",
            "|---|---|---|",
        ]
        for name, value in equality.items():
            run, devices = name.rsplit(", ", 1)
            out.append(f"| {run} | {devices.split()[0]} | {value:.1e} |")
        out.append("")
    return out


def kernel_section(runs: list[dict]) -> list[str]:
    times: dict[tuple[str, str, str], list[float]] = {}
    for run in runs:
        for b in run["benchmarks"]:
            info = b["extra_info"]
            if info.get("table") == "kernels":
                key = (info["row"], info["size"], info["backend"])
                times.setdefault(key, []).append(b["stats"]["median"])
    rows = []
    for name, size in dict.fromkeys((k[0], k[1]) for k in times):
        unit = "us" if size == "small" else "ms"
        cells = [
            fmt(statistics.median(times[(name, size, b)]), unit)
            if (name, size, b) in times
            else "-"
            for b in ("numpy", "jax")
        ]
        rows.append(f"| {name} | {size} | {cells[0]} | {cells[1]} |")
    return [
        "### Kernels, forward + backward (float32; small: 4 x 2 -> 2, large: 4096 x 512 -> 1024)",
        "",
        "| kernel | size | NumPy | JAX (jitted) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def layer_section(runs: list[dict]) -> list[str]:
    """The layer kernels (bench/test_bench_layers.py): medians and speed ratios to the peers."""
    if __package__ in (None, ""):  # run as a script: make the bench package importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.layers import PEER, SIZES, TARGETS

    times: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for b in run["benchmarks"]:
            info = b["extra_info"]
            if info.get("table") == "layers":
                times.setdefault((info["row"], info["impl"]), []).append(b["stats"]["median"])
    if not times:
        return []
    rows = []
    for name in dict.fromkeys(k[0] for k in times):
        cells = [f"`{name}`", SIZES[name]]
        for ours in ("numpy", "jax"):
            have = [(name, ours) in times, (name, PEER[ours]) in times]
            if not all(have):
                cells += ["-", "-", "-"]
                continue
            t_ours = statistics.median(times[(name, ours)])
            t_peer = statistics.median(times[(name, PEER[ours])])
            r = t_peer / t_ours
            verdict = "met" if r >= TARGETS[ours] else "missed"
            cells += [fmt(t_ours, "ms"), fmt(t_peer, "ms"), f"{r:.2f}x ({verdict})"]
        rows.append("| " + " | ".join(cells) + " |")
    return [
        "### Layer kernels, forward + backward (float32, one thread for PyTorch and the BLAS)",
        "",
        "| kernel | size | NumPy | PyTorch eager | NumPy vs PyTorch (target 0.5x) "
        "| JAX | jax.vjp | JAX vs jax.vjp (target 1.0x) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def run_suite(times: int) -> list[Path]:
    paths = []
    tmp = Path(tempfile.mkdtemp(prefix="backprop-bench-"))
    for i in range(times):
        path = tmp / f"run{i + 1}.json"
        cmd = [
            sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q",
            f"--benchmark-json={path}", "-p", "no:cacheprovider",
        ]  # fmt: skip
        print(f"run {i + 1}/{times}: {' '.join(cmd[1:])}", file=sys.stderr)
        subprocess.run(cmd, cwd=ROOT, check=True)
        paths.append(path)
    return paths


def run_equality() -> dict | None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "equality.py")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"equality check failed: {exc}", file=sys.stderr)
        return None
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="*", type=Path, help="pytest-benchmark JSON files")
    parser.add_argument("--run", type=int, default=0, help="run the suite this many times first")
    parser.add_argument("--readme", action="store_true", help="replace the README's section")
    parser.add_argument("--no-equality", action="store_true", help="skip the 8-device check")
    args = parser.parse_args()
    paths = list(args.json) + (run_suite(args.run) if args.run else [])
    if not paths:
        parser.error("give JSON files or --run N")
    equality = None if args.no_equality else run_equality()
    text = render(load(paths), equality)
    print(text)
    if args.readme:
        readme = ROOT / "README.md"
        old = readme.read_text()
        if START not in old or END not in old:
            print("README has no benchmark report markers", file=sys.stderr)
            return 1
        head, rest = old.split(START, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
