"""Checkpoints: every refusal names the file (or argument) and what was expected;
saves are atomic, leave no temporary files, respect the umask and survive
concurrent writers and ``kill -9``; loads never unpickle and never read array
data before every header has been checked."""

from __future__ import annotations

import errno
import io
import itertools
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import backprop.io as bio
from backprop.io import load_params, save_params

ROOT = Path(__file__).resolve().parents[1]
SIZES = [2, 5, 1]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock")


def _params(seed=0, sizes=SIZES, dtype="float32"):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((m, n)).astype(dtype), rng.standard_normal(n).astype(dtype))
        for m, n in itertools.pairwise(sizes)
    ]


def _npy(a, **kw):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), **kw)
    return buf.getvalue()


def _header(shape, descr="<f8"):
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _members(params=None):
    return {
        f"{n}{i}.npy": _npy(a)
        for i, layer in enumerate(params or _params())
        for n, a in zip("wb", layer, strict=True)
    }


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _temps(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


def _assert_same(loaded, params):
    assert len(loaded) == len(params)
    for got, (w, b) in zip(loaded, params, strict=True):
        for x, y in ((got.w, w), (got.b, b)):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == np.asarray(y).tobytes()  # bit for bit, NaN payloads too


# -- files load_params refuses: one row per case --------------------------------


def _npy_named_npz(p):
    p.write_bytes(_npy(np.zeros((2, 5))))


def _members_without_npy_suffix(p):
    _zip(p, {name.removesuffix(".npy"): data for name, data in _members().items()})


def _random_bytes(p):
    p.write_bytes(np.random.default_rng(0).bytes(4096))


def _empty(p):
    p.write_bytes(b"")


def _truncated(p):
    _zip(p, _members())
    p.write_bytes(p.read_bytes()[:300])


def _huge_declared_shape(p):
    members = _members()
    members["w0.npy"] = _header((2, 10**12)) + bytes(64)
    _zip(p, members)


def _byte_count_disagrees_with_header(p):
    members = _members()
    members["w0.npy"] = members["w0.npy"][:-8]  # header says (2, 5) float32
    _zip(p, members)


def _bad_crc(p):
    _zip(p, _members())
    data = bytearray(p.read_bytes())
    at = data.index(_npy(_params()[0][0])) + 130  # inside w0's array data
    data[at] ^= 0xFF
    p.write_bytes(bytes(data))


def _garbage_npy_header(p):
    members = _members()
    members["w0.npy"] = b"\x93NUMPY\x01\x00\x06\x00{oops}"
    _zip(p, members)


def _extra_member(p):
    _zip(p, {**_members(), "notes.npy": _npy(np.zeros(3))})


def _int_member(p):
    members = _members()
    members["w0.npy"] = _npy(np.zeros((2, 5), dtype=np.int32))
    _zip(p, members)


def _object_member(p):
    members = _members()
    members["w0.npy"] = _npy(np.full((2, 5), None, dtype=object), allow_pickle=True)
    _zip(p, members)


def _directory(p):
    p.mkdir()


def _missing(p):
    pass


BAD_FILES = [
    # (builder, exception, message fragment)
    (_npy_named_npz, ValueError, "it is a single .npy array"),
    (_members_without_npy_suffix, ValueError, "members that are not .npy arrays: ['b0', 'b1',"),
    (_random_bytes, ValueError, "does not start with a zip signature"),
    (_empty, ValueError, "it is empty"),
    (_truncated, ValueError, "truncated or corrupt"),
    (_huge_declared_shape, ValueError, "w0 has shape (2, 1000000000000), the model needs (2, 5)"),
    (_byte_count_disagrees_with_header, ValueError, "w0.npy holds 160 bytes, its header"),
    (_bad_crc, ValueError, "Bad CRC-32"),
    (_garbage_npy_header, ValueError, "member w0.npy is not a readable .npy array"),
    (_extra_member, ValueError, "holds arrays ['b0', 'b1', 'notes', 'w0', 'w1'], the model"),
    (_int_member, ValueError, "w0 has dtype int32, expected float32 or float64"),
    (_object_member, ValueError, "w0 has dtype object, expected float32 or float64"),
    (_directory, IsADirectoryError, "is a directory"),
    (_missing, FileNotFoundError, "no parameter file at"),
]


@pytest.mark.parametrize(
    ("build", "exc", "fragment"), BAD_FILES, ids=[b.__name__.strip("_") for b, *_ in BAD_FILES]
)
def test_load_refuses_with_a_message_naming_the_file(tmp_path, build, exc, fragment):
    path = tmp_path / "m.npz"
    build(path)
    with pytest.raises(exc) as info:
        load_params(path, SIZES)
    assert type(info.value) is exc
    message = str(info.value)
    assert repr(str(path)) in message and fragment in message
    if exc is ValueError and fragment != "truncated or corrupt":
        assert "allow_pickle" not in message


@posix_only
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_load_unreadable_file_is_a_permission_error_naming_it(tmp_path):
    path = save_params(tmp_path / "m.npz", _params())
    path.chmod(0)
    with pytest.raises(PermissionError, match="no permission to read") as info:
        load_params(path, SIZES)
    assert repr(str(path)) in str(info.value)


def test_huge_declared_shape_is_refused_before_any_data_is_read(tmp_path):
    """A 0.2 MB deflated member declaring 200 MB of zeros: the old loader allocated
    and inflated all of it before the shape check; now only headers are read."""
    path = tmp_path / "bomb.npz"
    n = 12_500_000  # (2, n) float64: 200 MB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w0.npy", "w", force_zip64=True) as member:
            member.write(_header((2, n)))
            zeros = bytes(1 << 22)
            for _ in range(2 * n * 8 // len(zeros)):
                member.write(zeros)
        for name, data in _members().items():
            if name != "w0.npy":
                zf.writestr(name, data)
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"w0 has shape \(2, 12500000\), the model needs"):
            load_params(path, SIZES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # NumPy reports its allocations to tracemalloc


def test_no_data_is_read_until_every_header_passes(tmp_path, monkeypatch):
    """A bad last member stops the load before the first member's data is read."""
    members = _members()
    members["b1.npy"] = _npy(np.zeros(7, dtype=np.float32))
    path = _zip(tmp_path / "m.npz", members)
    reads = []
    monkeypatch.setattr(bio, "_read_data", lambda *a: reads.append(a))
    with pytest.raises(ValueError, match=r"b1 has shape \(7,\), the model needs \(1,\)"):
        load_params(path, SIZES)
    assert reads == []


@pytest.mark.parametrize(
    ("sizes", "dtype", "fragment"),
    [
        ([2], None, "sizes must be at least two positive integers, got [2]"),
        ([2, 0, 1], None, "sizes must be at least two positive integers"),
        ("25", None, "sizes must be at least two positive integers"),
        (SIZES, "int32", "dtype must be float32, float64 or None, got 'int32'"),
        (SIZES, "no such dtype", "dtype must be float32, float64 or None"),
    ],
)
def test_load_bad_arguments_are_named(tmp_path, sizes, dtype, fragment):
    path = save_params(tmp_path / "m.npz", _params())
    with pytest.raises(ValueError) as info:
        load_params(path, sizes, dtype=dtype)
    assert fragment in str(info.value)


# -- params save_params refuses, before writing anything ------------------------


def _ragged():
    return [([[1.0, 2.0], [3.0]], [0.0])]


BAD_PARAMS = [
    # (id, params, exception, message fragment)
    ("dict", {"ab": 1, "cd": 2}, TypeError, "got a dict (a mapping: its keys"),
    ("dict-of-layers", dict(enumerate(_params())), TypeError, "got a dict"),
    ("string", "ab", TypeError, "must be a list or tuple of (w, b) layers, got str"),
    ("not-a-sequence", 3.0, TypeError, "got float"),
    ("layer-not-a-pair", [(np.zeros((2, 5)),)], TypeError, "params[0] must be a (w, b) pair"),
    ("layer-a-string", ["ab"], TypeError, "params[0] must be a (w, b) pair, got str"),
    (
        "object-arrays",
        [(np.full((2, 5), None, dtype=object), np.zeros(5))],
        TypeError,
        "params[0].w has dtype object, expected float32 or float64 (object arrays would be",
    ),
    ("python-objects", [([[object()]], [0.0])], TypeError, "params[0].w has dtype object"),
    ("ints", [(np.zeros((2, 5), int), np.zeros(5))], TypeError, "params[0].w has dtype int64"),
    ("strings", [(np.zeros((2, 5)), ["a"] * 5)], TypeError, "params[0].b has dtype <U1"),
    ("empty", [], ValueError, "params is empty: nothing to save"),
    ("ragged", _ragged(), ValueError, "params[0].w is not an array"),
    ("w-1d", [(np.zeros(5), np.zeros(5))], ValueError, "params[0].w has shape (5,), expected"),
    ("b-wrong", [(np.zeros((2, 5)), np.zeros(4))], ValueError, "params[0].b has shape (4,)"),
    (
        "does-not-chain",
        [(np.zeros((2, 5)), np.zeros(5)), (np.zeros((4, 1)), np.zeros(1))],
        ValueError,
        "params[1].w has shape (4, 1): its 4 rows do not match params[0].w's 5 columns",
    ),
]


@pytest.mark.parametrize(
    ("params", "exc", "fragment"), [r[1:] for r in BAD_PARAMS], ids=[r[0] for r in BAD_PARAMS]
)
def test_save_refuses_bad_params_before_writing(tmp_path, params, exc, fragment):
    with pytest.raises(exc) as info:
        save_params(tmp_path / "m.npz", params)
    assert type(info.value) is exc
    assert fragment in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_path_not_ending_in_npz(tmp_path):
    with pytest.raises(ValueError, match=r"path must end in \.npz, got '.*m\.txt'"):
        save_params(tmp_path / "m.txt", _params())


# -- where save_params cannot write: the message names the target ----------------


def test_save_into_a_missing_directory_names_the_target(tmp_path):
    target = tmp_path / "nope" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        save_params(target, _params())
    message = str(info.value)
    assert f"cannot save parameters to {str(target)!r}" in message
    assert f"directory {str(target.parent)!r} does not exist" in message
    assert ".tmp" not in message and info.value.errno == errno.ENOENT


def test_save_into_a_read_only_directory_names_the_target(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/x/.m.npz.1.abcdefgh.tmp")

    monkeypatch.setattr(bio.tempfile, "mkstemp", refuse)
    target = tmp_path / "m.npz"
    with pytest.raises(PermissionError) as info:
        save_params(target, _params())
    message = str(info.value)
    assert f"cannot save parameters to {str(target)!r}: no permission to create files" in message
    assert ".tmp" not in message


@posix_only
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_save_into_a_really_read_only_directory(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="no permission to create files") as info:
            save_params(tmp_path / "m.npz", _params())
        assert repr(str(tmp_path / "m.npz")) in str(info.value)
    finally:
        tmp_path.chmod(0o755)


def test_save_onto_a_directory_names_it(tmp_path):
    (tmp_path / "m.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a directory") as info:
        save_params(tmp_path / "m.npz", _params())
    assert repr(str(tmp_path / "m.npz")) in str(info.value)


def test_disk_full_mid_save_names_the_target_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_params(tmp_path / "m.npz", _params(1))
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bio.os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        save_params(path, _params(2))
    assert f"cannot save parameters to {str(path)!r}" in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and _temps(tmp_path) == []


# -- file mode --------------------------------------------------------------------


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@posix_only
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.parametrize("proc", [True, False], ids=["proc-status", "umask-call"])
def test_saved_file_mode_respects_the_umask(tmp_path, umask, monkeypatch, mask, mode, proc):
    if not proc:  # where /proc/self/status cannot be read

        def no_proc(*args, **kwargs):
            raise OSError(errno.ENOENT, "no /proc")

        monkeypatch.setattr(bio, "open", no_proc, raising=False)
    umask(mask)
    path = save_params(tmp_path / "m.npz", _params())
    assert stat.S_IMODE(path.stat().st_mode) == mode
    save_params(path, _params(1))  # overwriting: the new file gets the same mode
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert os.umask(mask) == mask  # reading it left it as it was


# -- what was already good and must stay so ---------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_identical_and_the_file_is_deterministic(tmp_path, dtype):
    params = _params(3, [3, 4, 2], dtype)
    w0 = params[0][0].copy()
    w0[0, :3] = [np.nan, np.inf, -0.0]  # a diverged model may be saved to inspect it
    params[0] = (np.asfortranarray(w0), params[0][1])
    a = save_params(tmp_path / "a.npz", params)
    b = save_params(tmp_path / "b.npz", tuple(params))
    assert a.read_bytes() == b.read_bytes()  # same params, same bytes
    loaded = load_params(a, [3, 4, 2], dtype=dtype)
    _assert_same(loaded, params)
    assert loaded[0].w.flags.writeable
    with np.load(a, allow_pickle=False) as data:  # still plain np.savez layout
        np.testing.assert_array_equal(data["w1"], params[1][0])


def test_compressed_and_big_endian_members_load(tmp_path):
    params = _params(4)
    members = {
        name: _npy(np.load(io.BytesIO(d)).astype(">f4")) for name, d in _members(params).items()
    }
    path = _zip(tmp_path / "m.npz", members, zipfile.ZIP_DEFLATED)
    loaded = load_params(path, SIZES, dtype="float32")
    assert loaded[0].w.dtype.isnative
    for got, (w, b) in zip(loaded, params, strict=True):
        np.testing.assert_array_equal(got.w, w)
        np.testing.assert_array_equal(got.b, b)


class _Payload:
    """Unpickling this creates a file: proof of whether a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_pickles_are_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    members = _members()
    w0 = np.empty((2, 5), dtype=object)
    w0[...] = _Payload(marker)
    members["w0.npy"] = _npy(w0, allow_pickle=True)
    path = _zip(tmp_path / "m.npz", members)
    for dtype in (None, "float32"):
        with pytest.raises(ValueError, match="w0 has dtype object"):
            load_params(path, SIZES, dtype=dtype)
    assert not marker.exists()
    np.load(path, allow_pickle=True)["w0"]  # the payload is real
    assert marker.exists()


def test_write_is_atomic(tmp_path, monkeypatch):
    path = save_params(tmp_path / "m.npz", _params(1))
    before = path.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(bio.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_params(path, _params(2))
    assert path.read_bytes() == before and _temps(tmp_path) == []


def test_concurrent_writers_in_threads_all_succeed(tmp_path):
    path = tmp_path / "m.npz"
    candidates = [_params(seed) for seed in range(6)]
    errors = []

    def write(params):
        try:
            for _ in range(10):
                save_params(path, params)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    loaded = load_params(path, SIZES)
    assert any(np.array_equal(loaded[0].w, p[0][0]) for p in candidates)
    _assert_same(loaded, next(p for p in candidates if np.array_equal(loaded[0].w, p[0][0])))
    assert _temps(tmp_path) == []


_WRITER = """
import sys
import numpy as np
from backprop.io import save_params
seed, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(seed)
params = [(rng.standard_normal((2, 5)), rng.standard_normal(5)),
          (rng.standard_normal((5, 1)), rng.standard_normal(1))]
for _ in range(int(sys.argv[3])):
    save_params(path, params)
"""


def _python(code, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, **kwargs)


def test_concurrent_writer_processes_all_succeed(tmp_path):
    path = tmp_path / "m.npz"
    procs = [_python(_WRITER, seed, path, 20) for seed in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    loaded = load_params(path, SIZES, dtype="float64")
    finals = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        finals.append(rng.standard_normal((2, 5)))
    assert any(np.array_equal(loaded[0].w, w) for w in finals)
    assert _temps(tmp_path) == []


# -- temporary files left by killed writers ---------------------------------------


def test_next_save_removes_stale_temps_of_the_same_target_only(tmp_path):
    stale = [".m.npz.999999.abcdefgh.tmp", ".m.npz.k2j4_9x0.tmp"]  # the second: older versions
    others = [".other.npz.999999.abcdefgh.tmp", ".m.npz.x.npz.1.abcdefgh.tmp", "notes.tmp"]
    for name in stale + others:
        (tmp_path / name).write_bytes(b"partial")
    save_params(tmp_path / "m.npz", _params())
    assert _temps(tmp_path) == sorted(others)


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


@posix_only
def test_a_live_writers_temp_is_left_alone(tmp_path):
    live = tmp_path / ".m.npz.1.abcdefgh.tmp"
    proc = _python(_HOLD_LOCK, live, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "locked\n"
        save_params(tmp_path / "m.npz", _params())
        assert _temps(tmp_path) == [live.name]
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    save_params(tmp_path / "m.npz", _params())  # its writer is gone now
    assert _temps(tmp_path) == []


_STALL_MID_WRITE = """
import sys, time
import numpy as np
import backprop.io

def stall(fp, array, **kwargs):
    fp.write(b"\\x93NUMPY" + bytes(100_000))  # part of the first member
    fp.flush()
    print("writing", flush=True)
    time.sleep(600)

np.lib.format.write_array = stall
backprop.io.save_params(sys.argv[1], [(np.ones((2, 5)), np.ones(5)), (np.ones((5, 1)), np.ones(1))])
"""


@posix_only
def test_kill_9_mid_write_leaves_the_target_intact_and_the_next_save_cleans_up(tmp_path):
    path = save_params(tmp_path / "m.npz", _params(1, dtype="float64"))
    before = path.read_bytes()
    proc = _python(_STALL_MID_WRITE, path, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        assert len(_temps(tmp_path)) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert len(_temps(tmp_path)) == 1  # what kill -9 leaves behind
    save_params(path, _params(2, dtype="float64"))
    assert _temps(tmp_path) == []
    _assert_same(load_params(path, SIZES), _params(2, dtype="float64"))


_BIG_WRITER = """
import sys
import numpy as np
from backprop.io import save_params
n = int(sys.argv[2])
layers = [(np.full((1, n), 2.0), np.full(n, 2.0)), (np.full((n, 1), 2.0), np.full(1, 2.0))]
save_params(sys.argv[1], layers)
"""


@posix_only
def test_kill_9_of_a_big_save_leaves_an_intact_file_and_no_temps_after_the_next(tmp_path):
    n = 2_000_000  # 3 arrays of 16 MB: the write takes a while
    sizes = [1, n, 1]
    old = [(np.full((1, n), 1.0), np.full(n, 1.0)), (np.full((n, 1), 1.0), np.full(1, 1.0))]
    path = save_params(tmp_path / "m.npz", old)
    proc = _python(_BIG_WRITER, path, n)
    deadline = time.monotonic() + 60
    while not _temps(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    value = float(load_params(path, sizes)[0].w[0, 0])  # intact: old or new, never half
    assert value in (1.0, 2.0)
    save_params(path, old)
    assert _temps(tmp_path) == []
    _assert_same(load_params(path, sizes), old)
