"""Progress of long work on a terminal and off one.

On a terminal (stderr is a TTY) the commands draw a rich progress bar in place. Off one (output sent to
a file, a pipe or a job scheduler's log) a bar cannot redraw and rich prints it only at the end, so
`LineProgress` writes one plain line instead, at most every `interval()` seconds
(`SCALEFIT_PROGRESS_EVERY`, default 30 s; 0 prints every update), plus the final state:

    train: step 1200/5000 (24%) · loss 3.412 · 0:41 elapsed · ETA 2:10
    sweep: 5/51 runs done · 0 failed · 46 remaining · 2 running · 3:20 elapsed · ETA 28:01
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["LineProgress", "fmt_seconds", "interval", "on_terminal"]

ENV = "SCALEFIT_PROGRESS_EVERY"
DEFAULT_INTERVAL_S = 30.0


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether progress output (stderr by default) goes to a terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def interval() -> float:
    """Seconds between plain progress lines: SCALEFIT_PROGRESS_EVERY, else 30."""
    try:
        return max(0.0, float(os.environ.get(ENV, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def fmt_seconds(s: float | None) -> str:
    """`m:ss`, or `h:mm:ss` from an hour; `?` when unknown."""
    if s is None or not math.isfinite(s):
        return "?"
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LineProgress:
    """Plain progress lines `<label>: <status>` at most every `every` seconds.

    `update(text)` records the latest status and prints it when `every` seconds have passed since the last
    line. With `heartbeat=True` a background thread also prints the latest status (from `status()` when
    given, else the last `update`) every `every` seconds, for work whose updates are far apart (a sweep
    waiting on one long run). `close(text)` prints the final line.
    """

    def __init__(
        self,
        label: str,
        every: float | None = None,
        stream: TextIO | None = None,
        status: Callable[[], str] | None = None,
        heartbeat: bool = False,
    ) -> None:
        self.label, self.every = label, interval() if every is None else every
        self.stream = stream if stream is not None else sys.stderr
        self.start = self._last = time.monotonic()
        self._text, self._status = "", status
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat and self.every > 0:
            self._thread = threading.Thread(target=self._beat, daemon=True, name=f"{label}-progress")
            self._thread.start()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def update(self, text: str, force: bool = False) -> None:
        with self._lock:
            self._text = text
            if force or time.monotonic() - self._last >= self.every:
                self._print(text)

    def close(self, text: str | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            final = text if text is not None else self._text
            if final:
                self._print(final)

    def _print(self, text: str) -> None:
        self._last = time.monotonic()
        print(f"{self.label}: {text}", file=self.stream, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                if time.monotonic() - self._last >= self.every:
                    text = self._status() if self._status is not None else self._text
                    if text:
                        self._print(text)
