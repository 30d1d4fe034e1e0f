"""The distribution installs one top-level name, ``backprop`` (the kernels inside it).

The wheel is built from a copy of the sources (offline, with the
environment's setuptools) and its file list read: every file sits under
``backprop/`` or the wheel's own ``.dist-info``, the kernels are
``backprop/kernels/*``, and the metadata's ``top_level.txt`` (when written)
names ``backprop`` alone.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
def test_the_wheel_installs_no_top_level_name_but_backprop(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    # symlinks=True keeps backprop/kernels -> ../kernels a link, as in the repository
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "backprop", src / "backprop", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "kernels", src / "kernels", ignore=ignore)
    # build isolation: pip fetches the setuptools pyproject.toml asks for (>= 68), as
    # `pip install` does; a venv's bundled setuptools may be older
    build = ["pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist"]
    proc = subprocess.run(
        [sys.executable, "-m", *map(str, build), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    assert {n.split("/")[0] for n in names} == {"backprop", dist_info}
    kernels = {n for n in names if n.startswith("backprop/kernels/")}
    for module in ("__init__", "spec", "registry", "linear", "activations", "losses"):
        assert f"backprop/kernels/{module}.py" in kernels
    top_level = f"{dist_info}/top_level.txt"
    if top_level in names:
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["backprop"]
