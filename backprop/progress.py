"""Progress for long command-line runs.

On a terminal, a tqdm progress bar (optional: ``pip install
'backprop-by-hand[progress]'``); elsewhere - a pipe, a log file, CI - no
bar at all: the experiments then print their plain periodic lines.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any


@contextmanager
def progress_bar(
    total: int,
    desc: str,
    stream: IO[str] | None = None,
    mininterval: float = 0.1,
    enabled: bool = True,
) -> Iterator[Callable[[int, float], None] | None]:
    """Yield a ``progress(done, loss)`` callback drawing a bar on ``stream``, or None.

    None when ``enabled`` is false, ``stream`` (default stdout) is not a
    terminal or tqdm is not installed; the bar is redrawn at most every
    ``mininterval`` seconds and cleared when training ends.
    """
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if not (enabled and isatty and isatty()):
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield None
        return
    bar: Any = tqdm(
        total=total, desc=desc, file=stream, unit="epoch", leave=False, mininterval=mininterval
    )

    def update(done: int, loss: float) -> None:
        if done - bar.n >= max(1, total // 200) or done >= total:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.update(done - bar.n)
        if done >= total:  # training is over: clear the bar before the results print
            bar.close()

    try:
        yield update
    finally:
        bar.close()
