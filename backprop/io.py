"""Save and load MLP parameters as a single ``.npz`` file.

The file is a zip of ``.npy`` arrays ``w0.npy, b0.npy, w1.npy, b1.npy, ...``
(layer i's weights (D_in, D_out) and biases (D_out,)), the same layout
``np.savez`` writes, so ``np.load`` reads it too.

Saving is atomic: the arrays go to a temporary file next to the target, which
is flushed to disk and then renamed over it, so a crash or ``kill -9``
mid-write leaves either the old file or the new one, never half of either.
Concurrent writers to one target each use their own temporary file; the last
rename wins and the file is always whole. A temporary file left by a killed
writer is removed by the next save to the same target.

A model file (:func:`backprop.save`) adds one JSON member, ``model.json``,
describing the network (see :mod:`backprop.model`); ``np.load`` lists it
as a plain member and reads the arrays as before.

Saving over a symbolic link writes the file the link points to (the link
stays). Saving over an existing file keeps its permission bits. A file with
several hard links is replaced by a new file under this one name: the other
names keep the old contents (the price of an atomic write).

Loading trusts nothing in the file: it checks the zip's member names, then
every member's ``.npy`` header (shape, dtype, byte count) against the model,
and only then reads the data, so a small file that declares a huge array
costs nothing. Pickled (object) arrays are refused, never unpickled.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import os
import re
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from backprop.nets import Layer

try:
    import fcntl
except ImportError:  # Windows: no flock, so stale temporary files are left alone
    fcntl = None

__all__ = ["load_params", "save_params"]

METADATA_MEMBER = "model.json"
"""The zip member holding a model file's JSON description."""
_MAX_METADATA = 1 << 20  # bytes; a description is a few kB

_FLOAT_DTYPES = ("float32", "float64")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
_NOT_NPZ = "is not a readable .npz file (expected a zip of .npy arrays, as save_params writes)"


def save_params(path: str | os.PathLike[str], params: Sequence[Layer]) -> Path:
    """Write ``params`` to ``path`` atomically, as a ``.npz`` file.

    Everything is checked before anything is written. Weights may hold NaN
    or infinity: saving a diverged model to inspect it is legitimate, and
    those values round-trip bit for bit. Integer arrays are refused rather
    than converted, since the loader accepts only float32/float64 and a
    silent conversion would save something other than what was passed.

    A new file gets mode ``0o666 & ~umask``, like any file the user
    creates; saving over an existing file keeps its mode; saving over a
    symbolic link writes the file it points to. Temporary files
    ``.{name}.{pid}.{random}.tmp`` that a killed writer left next to the
    target are removed first.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; must end in ``.npz``. Its directory must exist.
    params : sequence of (w, b) pairs
        A list or tuple of layers such as :class:`Layer`; ``w`` is a 2-D
        float32/float64 array (D_in, D_out), ``b`` a 1-D one (D_out,), and
        each layer's D_in equals the previous layer's D_out. Anything
        ``np.asarray`` converts (JAX arrays, nested lists) is accepted.

    Returns
    -------
    Path
        ``path``, as a :class:`pathlib.Path`.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.npz``, ``params`` is empty, or an
        array has the wrong number of dimensions or a shape that does not
        chain with its neighbours.
    TypeError
        If ``params`` is a dict or not a list/tuple, a layer is not a
        (w, b) pair, or an array is not float32/float64 (object arrays,
        which would be pickled, included).
    FileNotFoundError, PermissionError, IsADirectoryError, OSError
        If the file cannot be written (missing or read-only directory,
        target is a directory, disk full); the message names the target.
        The old file, if any, is left as it was.
    """
    path = _check_npz_path(path)
    return _save_npz(path, _arrays_to_save(params))


def _check_npz_path(path: Any) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    return path


def _save_npz(
    path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``arrays`` (and ``metadata`` as ``model.json``) to ``path`` atomically.

    A symbolic link is followed: the file it points to is replaced, the link
    kept. An existing file's permission bits are kept.
    """
    shown = path
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, f"cannot save parameters to {str(shown)!r}: it is a directory"
        )
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    text = None if metadata is None else json.dumps(metadata, indent=1, allow_nan=False)
    directory = path.parent
    _remove_stale_temps(path)
    try:
        fd, tmp = _locked_temp(path)
    except OSError as exc:
        why = {
            errno.ENOENT: f"directory {str(directory)!r} does not exist",
            errno.EACCES: f"no permission to create files in directory {str(directory)!r}",
            errno.EROFS: f"directory {str(directory)!r} is on a read-only file system",
        }.get(exc.errno, exc.strerror or str(exc))
        raise _save_error(exc, shown, why) from exc
    try:
        with os.fdopen(fd, "w+b") as f:
            _write_npz(f, arrays)
            if text is not None:
                f.seek(0)
                with zipfile.ZipFile(f, "a") as zf:
                    zf.writestr(METADATA_MEMBER, text)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
            # Renamed while still open, so the lock that marks this file as
            # live is held until it no longer has a temporary name.
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _save_error(exc, shown, exc.strerror or str(exc)) from exc
        raise
    _fsync_directory(directory)
    return shown


def load_params(
    path: str | os.PathLike[str], sizes: Sequence[int], dtype: Any = None
) -> tuple[Layer, ...]:
    """Read parameters saved by :func:`save_params`, checked against ``sizes``.

    Member names and every ``.npy`` header (shape, dtype, byte count) are
    checked before any array data is read, so memory use is bounded by the
    model's own size whatever the file declares.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file written by :func:`save_params` (or ``np.savez`` /
        ``np.savez_compressed`` with the same member names).
    sizes : sequence of int, or Net
        The model's layer widths, e.g. ``[2, 5, 1]``, or its :class:`Net`.
        When the file describes its network (a model file written by
        :func:`backprop.save`), a network with other sizes (or, given a
        ``Net``, other activations or head) is refused, describing both.
    dtype : dtype-like, optional
        Required dtype, float32 or float64; None accepts either.

    Returns
    -------
    tuple of Layer
        One ``Layer(w, b)`` per pair of consecutive sizes, with the file's
        values bit for bit (converted to native byte order if needed).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    IsADirectoryError, PermissionError
        If ``path`` is a directory or cannot be read.
    ValueError
        If ``sizes`` or ``dtype`` is invalid, or the file is not a ``.npz``
        of ``.npy`` arrays (a bare ``.npy``, other bytes, a truncated or
        corrupt zip), holds other members than the model needs, or a member
        has the wrong shape, a dtype other than float32/float64 (object
        arrays are never unpickled) or the wrong one for ``dtype``, or a
        byte count that disagrees with its header. The message names the
        file and what was expected.
    """
    from backprop.nets import Net

    net = sizes if isinstance(sizes, Net) else None
    widths, expected = _expected_shapes(net.sizes if net is not None else sizes)
    want = _check_dtype_argument(dtype)

    def plan(metadata: dict[str, Any] | None, where: str) -> _Plan:
        if metadata is not None:
            from backprop.model import describe_file_net

            held, text = describe_file_net(metadata, where)
            if list(held.sizes) != widths or (
                net is not None and (held.activations, held.output) != (net.activations, net.output)
            ):
                wanted = str(net) if net is not None else f"sizes {widths}"
                raise ValueError(f"{where} holds a {text} network; the model here is {wanted}")
        return _Plan(expected, {"mean": (widths[0],), "scale": (widths[0],)}, str(widths))

    _, arrays = read_npz(path, plan, want)
    n = len(widths) - 1
    return tuple(Layer(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(n))


class _Plan(NamedTuple):
    """What a file must hold: array shapes, optional extra arrays, the model's description."""

    expected: dict[str, tuple[int, ...]]
    optional: dict[str, tuple[int, ...]]
    description: str


def read_npz(
    path: str | os.PathLike[str],
    plan: Callable[[dict[str, Any] | None, str], _Plan],
    want: np.dtype | None = None,
) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """Read a ``.npz`` file's JSON description (if any) and arrays, checked before reading.

    ``plan(metadata, where)`` returns what the file must hold, given its
    description (None for a weights-only file) and the quoted file name for
    messages; it raises ``ValueError`` for a description it refuses. Every
    ``.npy`` header is checked against the plan before any array is read.
    """
    path = Path(path)
    where = repr(str(path))
    try:
        f = open(path, "rb")
    except FileNotFoundError as exc:
        raise FileNotFoundError(exc.errno, f"no parameter file at {where}") from exc
    except IsADirectoryError as exc:
        raise IsADirectoryError(exc.errno, f"{where} is a directory, not a .npz file") from exc
    except PermissionError as exc:
        raise PermissionError(exc.errno, f"no permission to read {where}") from exc
    with f:
        start = f.read(len(_NPY_MAGIC))
        if start.startswith(_NPY_MAGIC):
            raise ValueError(f"{where} {_NOT_NPZ}: it is a single .npy array (np.save output)")
        if not start:
            raise ValueError(f"{where} {_NOT_NPZ}: it is empty")
        if not start.startswith(_ZIP_MAGICS):
            raise ValueError(f"{where} {_NOT_NPZ}: it does not start with a zip signature")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as zf:
                metadata = _read_metadata(zf, where)
                p = plan(metadata, where)
                members = _members(zf, where, p)
                # Every header is checked before any member's data is read.
                headers = {name: _read_header(zf, info, where) for name, info in members.items()}
                for name, header in headers.items():
                    shape = {**p.optional, **p.expected}[name]
                    _check_header(header, members[name], shape, want, where, name)
                arrays = {
                    name: _read_data(zf, members[name], h, where) for name, h in headers.items()
                }
        except (
            zipfile.BadZipFile,
            EOFError,
            OSError,
            RuntimeError,
            NotImplementedError,
            zlib.error,
        ) as exc:
            # RuntimeError: an encrypted member; NotImplementedError: an
            # unsupported compression method; OSError: a bad seek offset.
            raise ValueError(f"{where} {_NOT_NPZ}: truncated or corrupt: {exc}") from exc
    return metadata, arrays


def _read_metadata(zf: zipfile.ZipFile, where: str) -> dict[str, Any] | None:
    """The ``model.json`` member as a dict, size checked before reading; None if absent."""
    try:
        info = zf.getinfo(METADATA_MEMBER)
    except KeyError:
        return None
    if info.file_size > _MAX_METADATA:
        raise ValueError(
            f"{where}: its {METADATA_MEMBER} declares {info.file_size} bytes, more than a "
            f"model description needs (at most {_MAX_METADATA})"
        )
    with zf.open(info) as stream:
        raw = stream.read(_MAX_METADATA + 1)
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{where}: its {METADATA_MEMBER} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: its {METADATA_MEMBER} is not a JSON object")
    return metadata


# -- saving ------------------------------------------------------------------


def _arrays_to_save(params: Any) -> dict[str, np.ndarray]:
    """``params`` as ``{"w0": ..., "b0": ...}``, or an error naming the offending entry."""
    if isinstance(params, Mapping):
        raise TypeError(
            "params must be a list or tuple of (w, b) layers, got a "
            f"{type(params).__name__} (a mapping: its keys, not the arrays, would be saved)"
        )
    if isinstance(params, str | bytes) or not isinstance(params, Sequence):
        raise TypeError(
            f"params must be a list or tuple of (w, b) layers, got {type(params).__name__}"
        )
    if not params:
        raise ValueError("params is empty: nothing to save")
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(params):
        if (
            isinstance(layer, str | bytes | Mapping)
            or not isinstance(layer, Sequence)
            or len(layer) != 2
        ):
            raise TypeError(f"params[{i}] must be a (w, b) pair, got {type(layer).__name__}")
        for name, value, ndim in (("w", layer[0], 2), ("b", layer[1], 1)):
            label = f"params[{i}].{name}"
            try:
                a = np.asarray(value)
            except (TypeError, ValueError) as exc:  # ragged nested lists
                raise ValueError(f"{label} is not an array: {exc}") from exc
            if a.dtype.name not in _FLOAT_DTYPES:
                if a.dtype.hasobject:
                    hint = " (object arrays would be pickled)"
                elif a.dtype.kind in "biuf":
                    hint = "; convert with .astype(np.float32) or .astype(np.float64)"
                else:
                    hint = ""
                raise TypeError(f"{label} has dtype {a.dtype}, expected float32 or float64{hint}")
            if a.ndim != ndim or 0 in a.shape:
                raise ValueError(
                    f"{label} has shape {a.shape}, expected a non-empty {ndim}-D array"
                )
            arrays[f"{name}{i}"] = a
        w, b = arrays[f"w{i}"], arrays[f"b{i}"]
        if b.shape != (w.shape[1],):
            raise ValueError(
                f"params[{i}].b has shape {b.shape}, params[{i}].w {w.shape} needs {(w.shape[1],)}"
            )
        if i and w.shape[0] != arrays[f"w{i - 1}"].shape[1]:
            raise ValueError(
                f"params[{i}].w has shape {w.shape}: its {w.shape[0]} rows do not match "
                f"params[{i - 1}].w's {arrays[f'w{i - 1}'].shape[1]} columns"
            )
    return arrays


def _write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    np.savez(f, allow_pickle=False, **arrays)


def _save_error(exc: OSError, path: Path, why: str) -> OSError:
    """``exc``'s type and errno, with a message naming the target rather than the temp file."""
    message = f"cannot save parameters to {str(path)!r}: {why}"
    return type(exc)(message) if exc.errno is None else type(exc)(exc.errno, message)


def _temp_pattern(path: Path) -> re.Pattern[str]:
    # mkstemp's random part is 8 characters of [a-z0-9_]. The PID is optional
    # so that temporary files left by earlier versions, which had none, match.
    return re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp")


def _locked_temp(path: Path) -> tuple[int, str]:
    """Create a temporary file next to ``path`` and hold an exclusive flock on it.

    The lock is what tells :func:`_remove_stale_temps` the writer is alive;
    the kernel drops it when the writer dies, ``kill -9`` included. A
    cleaner may lock and delete the file in the instant between its creation
    and the lock, so after locking the name is checked to still be this
    file, and another is made if not.
    """
    prefix = f".{path.name}.{os.getpid()}."
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        if fcntl is None or not _flock(fd, blocking=True):
            return fd, tmp
        if _same_file(tmp, fd):
            return fd, tmp
        os.close(fd)
    raise OSError(errno.EAGAIN, "could not keep a temporary file from being removed")


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files for ``path`` whose writer has died (nobody holds their lock).

    Failures are ignored: cleaning up must never make a save fail.
    """
    if fcntl is None:
        return
    pattern = _temp_pattern(path)
    own_pid = str(os.getpid())
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        # Where flock is emulated with POSIX locks (NFS), a process does not
        # conflict with its own locks, so this process's files are skipped:
        # another thread may be writing them.
        if match is None or match.group(1) == own_pid:
            continue
        with contextlib.suppress(OSError), _opened(entry.path) as fd:
            if _flock(fd, blocking=False) and _same_file(entry.path, fd):
                os.unlink(entry.path)


def _flock(fd: int, *, blocking: bool) -> bool:
    """Lock ``fd`` exclusively; False where the lock is held elsewhere or unsupported."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _same_file(name: str, fd: int) -> bool:
    """Whether ``name`` still names the file open as ``fd``."""
    try:
        return os.path.samestat(os.stat(name), os.fstat(fd))
    except OSError:
        return False


@contextlib.contextmanager
def _opened(name: str) -> Iterator[int]:
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        yield fd
    finally:
        os.close(fd)


_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``os.umask`` can only read the mask by setting it, and the mask is
    process-wide, so a file another thread creates in between would get the
    wrong mode. Linux (4.7+) reports it in /proc/self/status; elsewhere it is
    set to the strict 0o077 for the instant of the read, so a racing thread
    errs towards private files, under a lock so two readers cannot interleave.
    It is read on every save, not once at import, so later umask changes apply.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable across a power cut; some file systems
    # refuse to fsync a directory, which costs only that guarantee.
    with contextlib.suppress(OSError), _opened(str(directory)) as fd:
        os.fsync(fd)


# -- loading -----------------------------------------------------------------


class _Header(NamedTuple):
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    size: int  # bytes of magic and header before the data


def _expected_shapes(sizes: Any) -> tuple[list[int], dict[str, tuple[int, ...]]]:
    """``sizes`` as a list of ints, checked, and ``{"w0": (d0, d1), "b0": (d1,), ...}``."""
    try:
        widths = [] if isinstance(sizes, str | bytes) else list(sizes)
    except TypeError:
        widths = []
    if len(widths) < 2 or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in widths
    ):
        raise ValueError(f"sizes must be at least two positive integers, got {sizes!r}")
    widths = [int(s) for s in widths]
    expected: dict[str, tuple[int, ...]] = {}
    for i, (d_in, d_out) in enumerate(itertools.pairwise(widths)):
        expected[f"w{i}"], expected[f"b{i}"] = (d_in, d_out), (d_out,)
    return widths, expected


def _check_dtype_argument(dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        want = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32, float64 or None, got {dtype!r}") from exc
    if want.name not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32, float64 or None, got {dtype!r}")
    return want


def _members(zf: zipfile.ZipFile, where: str, plan: _Plan) -> dict[str, zipfile.ZipInfo]:
    """The zip's array members by name, checked to be the model's arrays (and optional ones)."""
    names = [n for n in zf.namelist() if n != METADATA_MEMBER]
    not_npy = [n for n in names if not n.endswith(".npy")]
    if not_npy:
        raise ValueError(
            f"{where} {_NOT_NPZ}: it holds members that are not .npy arrays: {sorted(not_npy)}"
        )
    if len(set(zf.namelist())) != len(zf.namelist()):
        raise ValueError(f"{where} {_NOT_NPZ}: it holds a member name twice")
    arrays = {n.removesuffix(".npy") for n in names}
    if not set(plan.expected) <= arrays <= set(plan.expected) | set(plan.optional):
        raise ValueError(
            f"{where} holds arrays {sorted(arrays)}, the model {plan.description} needs "
            f"{sorted(plan.expected)}"
        )
    return {name: zf.getinfo(f"{name}.npy") for name in sorted(arrays)}


def _read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> _Header:
    with zf.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            # Versions 1.0 and 2.0 differ only in the header's length field;
            # 3.0 (UTF-8 field names) exists only for structured dtypes,
            # which are refused anyway.
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as exc:
            raise ValueError(
                f"{where}: member {info.filename} is not a readable .npy array: {exc}"
            ) from exc
        return _Header(tuple(shape), bool(fortran_order), dtype, stream.tell())


def _check_header(
    header: _Header,
    info: zipfile.ZipInfo,
    shape: tuple[int, ...],
    want: np.dtype | None,
    where: str,
    name: str,
) -> None:
    if header.shape != shape:
        raise ValueError(f"{where}: {name} has shape {header.shape}, the model needs {shape}")
    if want is not None and header.dtype.name != want.name:
        raise ValueError(f"{where}: {name} has dtype {header.dtype}, the model needs {want}")
    if header.dtype.name not in _FLOAT_DTYPES:
        hint = " (object arrays are never unpickled)" if header.dtype.hasobject else ""
        raise ValueError(
            f"{where}: {name} has dtype {header.dtype}, expected float32 or float64{hint}"
        )
    declared = header.size + header.dtype.itemsize * math.prod(shape)
    if info.file_size != declared:
        raise ValueError(
            f"{where}: member {info.filename} holds {info.file_size} bytes, its header "
            f"({header.dtype}, shape {shape}) needs {declared}"
        )


def _read_data(zf: zipfile.ZipFile, info: zipfile.ZipInfo, header: _Header, where: str) -> Any:
    # NumPy's own reader, once the header has been checked against the model:
    # it reads into the preallocated result in chunks of 256 KiB, never
    # unpickles (allow_pickle=False) and raises on data that ends early.
    with zf.open(info) as stream:
        try:
            a = np.lib.format.read_array(stream, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{where}: member {info.filename}: {exc}") from exc
        # Reading to the end is what makes zipfile check the member's CRC.
        if stream.read(1):
            raise ValueError(f"{where}: member {info.filename} holds bytes after its array")
    if a.shape != header.shape or a.dtype != header.dtype:  # pragma: no cover - same header
        raise ValueError(f"{where}: member {info.filename} changed while it was read")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a
