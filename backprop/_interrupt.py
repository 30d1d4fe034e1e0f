"""Ctrl-C that is not lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be
when SIGINT arrives. If that is inside a garbage-collector callback or a
``__del__`` (JAX registers one, ``_xla_gc_callback``, which runs often while
a program is traced and compiled), the exception is printed as "Exception
ignored in ..." and dropped: the interrupt is lost and training runs on to
the end; and one raised in the middle of JAX's tracing or compiling left
the process to crash at exit. :func:`caught` (the command line) installs a
handler that *records* the interrupt and raises it only where that is safe:
not inside a gc callback or ``__del__``, not inside :func:`deferred` (the
JAX runs). The training loops call :func:`check` between chunks, epochs and
steps, so a recorded interrupt stops the run there (within about a
second). Without :func:`caught` (the library used from Python, with
Python's own handler) :func:`check` and :func:`deferred` change nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

_pending = False
_deferred = 0
_DROPPED_IN = frozenset({"_xla_gc_callback", "__del__"})
"""Functions where a raised exception is printed and dropped (not worth raising in)."""


def _handler(signum: int, frame: Any) -> None:
    global _pending
    _pending = True
    if _deferred or (frame is not None and frame.f_code.co_name in _DROPPED_IN):
        return  # recorded: the next check() raises
    raise KeyboardInterrupt


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived under :func:`caught` (even if its
    exception was dropped where it landed, or deferred)."""
    if _pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside, a Ctrl-C is only recorded; it is raised at the next :func:`check` (or as the
    block ends). For JAX's tracing, compiling and compiled calls: an exception raised in
    the middle of them left the process to crash at exit (a segmentation fault in 3 of 10
    tries landing during compilation)."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    check()


@contextlib.contextmanager
def caught() -> Iterator[None]:
    """Record every SIGINT while the block runs (main thread only; elsewhere a no-op)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending = False
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending = False


def ignore_further() -> None:
    """Ignore SIGINT from now on (main thread only): the command is already stopping.

    A second Ctrl-C, or a SIGINT whose Python-level handler had not run yet,
    would otherwise raise during the exit and end the process by the signal
    (status -2) after the one-line message.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
