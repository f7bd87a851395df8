"""Helpers of the supervision tests (test_processes, test_child, test_streams, test_failures, test_orphans,
test_peers): a job whose code is one script, a Python child's argv, a sink that keeps what is written,
train's peak RSS, and waiting for a line of a child's output."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from helpers import kill_quietly, start_train, write_base_dir


def job_with_script(tmp_path, script: str, name: str = "train.py", **kwargs) -> str:
    return write_base_dir(tmp_path, program=name, code={name: script}, **kwargs)


def py_argv(code: str) -> list:
    return [sys.executable, "-c", code]


class Sink:
    """A stream that keeps what is written to it, in the pieces it came in."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass


def peak_rss_of_train(base: str, env: dict | None = None, timeout: float = 120):
    """Run train with its output discarded; (exit code, its peak RSS in MiB, sampled every 20 ms)."""
    import psutil

    proc = start_train(base, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    deadline = time.monotonic() + timeout
    try:
        process = psutil.Process(proc.pid)
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.02)
        return proc.wait(timeout=10), peak / 2**20
    finally:
        kill_quietly(proc.pid)


def wait_for_line(pipe, text: bytes, timeout: float = 30) -> bytes:
    """Read ``pipe`` (a child's binary pipe, read only through here until then) until a line holding
    ``text`` has come; returns what was read. Fails when the pipe ends or ``timeout`` passes first."""
    fd = pipe.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while True:
        end = seen.rfind(b"\n")
        if text in seen[:end + 1]:
            return seen
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no line with {text!r} within {timeout}s; read: {seen[-2000:]!r}")
        data = os.read(fd, 65536)
        if not data:
            raise AssertionError(f"the output ended before a line with {text!r}; read: {seen[-2000:]!r}")
        seen += data


def wait_gone(pid: int, timeout: float = 5) -> None:
    """Block until process ``pid`` has ended (its pidfd turns readable), at most ``timeout`` seconds;
    one that is still running then is left for the caller's assertion."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
