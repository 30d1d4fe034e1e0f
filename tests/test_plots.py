"""Plot files are valid PNGs of a sensible size (skipped without matplotlib)."""

from __future__ import annotations

import struct

import pytest

from backprop.cli import main


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height, len(data)


def test_experiment_writes_three_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "deep.png"
    assert main(["deep", "--epochs", "50", "--plot", str(out)]) == 0
    for name in ("deep.png", "deep-boundary.png", "deep-gradnorms.png"):
        width, height, size = _png_size(tmp_path / name)
        assert 300 <= width <= 2000 and 300 <= height <= 2000 and size > 5_000


def test_without_matplotlib_the_error_says_how_to_get_plots(tmp_path, block_import, capsys):
    block_import("matplotlib")
    assert main(["single-layer", "--epochs", "5", "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'backprop-by-hand[plot]'" in err and "Traceback" not in err
