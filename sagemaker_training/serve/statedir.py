"""The state dir: one server at a time, and private to its user.

:class:`Lock` is an ``flock`` on ``<state dir>/serve.lock`` held for the
server's whole life (the kernel drops it when the process ends, however it
ends); the file names the holder's PID. A second server on the same state dir
exits at once naming the lock and that PID, before it opens the database, the
S3 or a job: recovery only ever touches the jobs of a state dir its server
holds.

The state dir, ``jobs/`` and every job's directory are 0700, and the files
that hold requests and keys (the database and its ``-wal`` / ``-shm``, each
``jobs/*/request.json``, the key pair) 0600, whatever the umask.
"""

from __future__ import annotations

import fcntl
import os

LOCK_FILE = "serve.lock"


class Busy(Exception):
    """Another server holds the state dir."""


class Lock:
    def __init__(self, state_dir: str):
        self.path = os.path.join(state_dir, LOCK_FILE)
        self.fd: int | None = None

    def acquire(self) -> "Lock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Busy(f"another sagemaker-training serve (PID {holder}) holds {self.path}: one server per state "
                       "dir; stop it, or give this one another --state-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def private_dir(path: str) -> str:
    """``path`` made (with its parents) and set to 0700."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: str) -> str:
    """``path`` made empty if missing, and set to 0600 (before anything is written to it)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    os.chmod(path, 0o600)
    return path


def write_private(path: str, text: str) -> None:
    """``path`` holds ``text``, mode 0600 from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
