"""Exclusive locks on files, for as long as a process holds them, that leave no file behind.

:func:`acquire` takes an ``flock()`` on a file (created if needed) or
refuses with :class:`Busy` carrying the message given; :func:`release` removes the file while still holding the lock, then
lets go. The lock ends with the process however it ends (a crash leaves the
file, which the next claimant simply locks).
"""

from __future__ import annotations

import fcntl
import os



class Busy(Exception):
    """Another process holds the lock; the message says what that means to the caller."""


def _is_at(f, path: str) -> bool:
    """Whether the open file ``f`` is still the file at ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(f.fileno())
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def acquire(path: str, busy_message: str):
    """An exclusive lock on ``path`` for as long as the returned file is open.

    The holder removes the file when done (:func:`release`), so a claimant
    that opened the file just before may lock a file no longer there: after
    locking, it checks that the path still names the file it holds, and
    starts again if not."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    while True:
        f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise Busy(busy_message) from None
        if _is_at(f, path):
            break
        f.close()  # the previous holder removed it between our open and our lock
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def release(f, path: str) -> None:
    """Remove the lock file, while still holding the lock, then release it."""
    try:
        if _is_at(f, path):
            os.unlink(path)
    except OSError:
        pass  # left behind: the next claimant locks it as it is
    finally:
        f.close()
