"""Local mode's own terminal output: its log lines, and transfer progress.

Every line goes to stderr (stdout is kept for the DescribeTrainingJob JSON)
prefixed with ``sagemaker-training local:``. A transfer (a channel, an
artifact) shows a tqdm bar on a terminal, updated from boto3's transfer
threads; anywhere else (a log file, a pipe, a test) it prints one line
when it is done: files, bytes, seconds. Without tqdm installed (it comes
with the ``local`` extra) a terminal gets that one line too.
"""

from __future__ import annotations

import sys
import threading
import time

PROG = "sagemaker-training local"


class Log:
    """The job's own lines on stderr (the hosts' lines come from the cluster)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self.lock:
            self.stream.write(f"{PROG}: {message}\n")
            self.stream.flush()

    @property
    def is_terminal(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False


def size_text(n: float) -> str:
    """``512 B``, ``1.5 KB``, ``3.2 GB``."""
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _bar(log: Log, label: str, total: int):
    if not log.is_terminal:
        return None
    try:
        from tqdm import tqdm  # noqa: PLC0415 - only on a terminal
    except ImportError:
        return None
    return tqdm(total=total, desc=f"{PROG}: {label}", unit="B", unit_scale=True, unit_divisor=1024,
                file=log.stream, leave=True, dynamic_ncols=True, mininterval=0.1)


class Transfer:
    """``with Transfer(log, label, total, count) as progress:`` — call
    ``progress(nbytes)`` as bytes move (from any thread)."""

    def __init__(self, log: Log, label: str, total: int, count: int):
        self.log, self.label, self.total, self.count = log, label, max(int(total), 0), count
        self.done = 0
        self.lock = threading.Lock()
        self.bar = None
        self.started = 0.0

    def __enter__(self):
        self.started = time.monotonic()
        self.bar = _bar(self.log, self.label, self.total)
        return self

    def __call__(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            if self.bar is not None:
                self.bar.update(nbytes)

    def __exit__(self, exc_type, exc, tb):
        elapsed = time.monotonic() - self.started
        if self.bar is not None:
            self.bar.close()
        elif exc is None:
            files = f"{self.count} file{'s' if self.count != 1 else ''}"
            self.log(f"{self.label}: {files}, {size_text(self.total)} in {elapsed:.1f}s")
        return False
