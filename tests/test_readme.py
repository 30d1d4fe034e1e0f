"""The README runs as written: every Python block, and every command (at small sizes).

Blocks and commands are read from README.md itself, so the two cannot drift.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
HAVE = {name: importlib.util.find_spec(name) is not None for name in ("jax", "sklearn", "pdoc")}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


PYTHON_BLOCKS = blocks("python")
COMMANDS = [line for block in blocks("sh") for line in block.splitlines() if line.strip()]
TABLE_COMMANDS = re.findall(r"`(python -m backprop [^`]+)`", README)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"python block {i}" for i in range(99)][: len(PYTHON_BLOCKS)]
)
def test_every_python_block_runs_as_written(code, tmp_path):
    if "load_dataset" in code and not HAVE["sklearn"]:
        pytest.skip("needs scikit-learn")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_readme_promises_what_the_blocks_print():
    code = PYTHON_BLOCKS[1]
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True
    ).stdout
    assert "off by a constant factor: analytic = 0.666667 x numeric" in out


def _backprop_args(command: str) -> tuple[dict[str, str], list[str]]:
    """Environment assignments and the arguments after ``python -m backprop``."""
    words = shlex.split(command, comments=True)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    start = words.index("backprop") + 1
    return env, words[start:]


def _small(args: list[str]) -> list[str]:
    """The same command with few epochs (argparse keeps the last occurrence)."""
    sub = args[0] if args and not args[0].startswith("-") else "xor"
    if sub in ("gradcheck", "predict", "evaluate"):  # no training
        return args
    if sub == "gpt":  # a tiny model, a few steps
        return [*args, "--epochs", "2", "--steps", "2", "--dim", "16", "--blocks", "1"]
    epochs = {"xor": "300", "perceptron": "5", "fit": "2"}.get(sub, "20")
    return [*args, "--epochs", epochs]


def _run_backprop(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", *args],
        cwd=cwd,
        env={**_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (args, proc.stderr[-3000:])
    return proc.stdout


def _needs(args: list[str], env: dict[str, str]) -> str | None:
    if ("jax" in args or "XLA_FLAGS" in env) and not HAVE["jax"]:
        return "needs JAX"
    if args and not HAVE["sklearn"] and (args[0] == "fit" or "--data" in args):
        return "needs scikit-learn"
    return None


SINGLE = [c for c in COMMANDS if "-m backprop" in c and "--coordinator" not in c]
SINGLE += TABLE_COMMANDS
# The GPT and the every-kernel gradient check take ~10 s each even at small
# sizes, the multi-device fit, the CNN and the fit/evaluate/predict chain 3-6 s:
# they run with -m slow (test_cli, test_network_cli and test_model cover these
# commands' wiring in the plain run).
SLOW_COMMANDS = ("backprop gpt", "backprop gradcheck", "--devices", "--model cnn", "evaluate")
SINGLE = [
    pytest.param(c, marks=pytest.mark.slow) if any(w in c for w in SLOW_COMMANDS) else c
    for c in SINGLE
]


@pytest.mark.parametrize("command", SINGLE)
def test_every_backprop_command_runs_at_small_sizes(command, tmp_path):
    """Each ``python -m backprop`` of a line, in order, in one directory (fit --save, then
    evaluate the file it wrote)."""
    parts = [_backprop_args(part) for part in command.split("&&") if "-m backprop" in part]
    for env, args in parts:
        reason = _needs(args, env)
        if reason:
            pytest.skip(reason)
    for env, args in parts:
        out = _run_backprop(_small(args), env, tmp_path)
        assert out.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_multi_process_launch_runs_as_documented(tmp_path):
    """The README's two commands, at 127.0.0.1 and a free port, two processes at once."""
    launch = [c for c in COMMANDS if "--coordinator" in c]
    assert len(launch) == 2
    parsed = [_backprop_args(c) for c in launch]
    if any(_needs(args, env) for env, args in parsed):
        pytest.skip("needs JAX and scikit-learn")
    port = _free_port()
    procs = []
    for env, args in parsed:
        args = [re.sub(r"^[\w.]+:\d+$", f"127.0.0.1:{port}", a) for a in _small(args)]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "backprop", *args, "--hidden", "16"],
                cwd=tmp_path,
                env={**_env(), **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "test accuracy" in outs[0][0]


@pytest.mark.slow
def test_the_test_selection_commands_select_tests():
    command = next(c for c in COMMANDS if "-m gradcheck" in c)
    args = shlex.split(command, comments=True)[3:]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert re.search(r"(\d+)/\d+ tests collected|(\d+) tests collected", proc.stdout)


@pytest.mark.slow
def test_the_benchmark_commands_run_on_one_small_benchmark(tmp_path):
    pytest.importorskip("pytest_benchmark")
    bench = next(c for c in COMMANDS if "--benchmark-only" in c)
    report = next(c for c in COMMANDS if "bench/report.py" in c)
    json_path = tmp_path / "run.json"
    args = shlex.split(bench, comments=True)[3:]
    subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider",
         "-k", "kernel_forward_backward and l2_penalty and small and numpy",
         f"--benchmark-json={json_path}"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert "report.py" in report and "--readme" in report
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report.py"), str(json_path), "--no-equality"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "| l2_penalty | small |" in out and "### Targets" in out


@pytest.mark.slow
@pytest.mark.skipif(not HAVE["pdoc"], reason="pdoc is not installed")
def test_the_api_reference_builds_without_warnings(tmp_path):
    command = next(c for c in COMMANDS if "docs/build.py" in c)
    assert "docs/build.py" in command
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "backprop" / "nets.html").exists()


def test_every_registered_kernel_is_in_the_readme_table():
    from backprop.kernels import KERNELS

    for name in KERNELS:
        assert f"| `{name}` |" in README, name


def test_the_setup_commands_install_what_the_tests_need():
    setup = [c for c in COMMANDS if c.startswith("python3 -m venv")]
    assert len(setup) == 2  # exactly two set-up commands
    main_job, tests = setup
    assert main_job.endswith("-m backprop") and tests.endswith("-m pytest -n 2")
    assert "[jax,test,plot,progress,data]" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests.split("&&")[-1].strip().split("/")[-1] in ci  # CI runs the README's command
