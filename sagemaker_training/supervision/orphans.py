"""What a job leaves behind: its orphaned descendants, found, reaped and ended.

A user's daemon that forks away and calls ``setsid()`` leaves both its
parent and its process group, so ending a finished child's group does not
reach it, and it would outlive the job. The supervisor therefore:

1. makes its process the *child subreaper* (``PR_SET_CHILD_SUBREAPER``)
   while it runs (:func:`subreaper`): an orphan among its descendants is
   re-parented to it instead of to PID 1;
2. tags every child it starts with a token in ``SAGEMAKER_SUPERVISORS``
   (:func:`tagged`); descendants inherit it (a nested supervisor adds its
   own token, so an orphan carries the tokens of all the supervisors above);
3. with :class:`Orphans`, looks at the children of this process that it did
   not start itself and whose environment carries its token: the adopted
   orphans. Those that have exited are reaped while the job runs
   (:meth:`Orphans.scan`); at the end the rest get SIGTERM, then SIGKILL
   (:meth:`Orphans.sweep`), and so do the orphans that this frees in turn.

A supervisor that was SIGKILLed sweeps nothing; whoever recorded its token
(serve, for its jobs: serve/leftovers.py) ends what is left with
:func:`end_carriers`: every process of this user whose environment carries
the token, wherever it was re-parented.

Nothing else is touched: a process started beside the supervisor by the
same program (another thread, or the test that called ``supervise()``) is a
child of this process but carries no token, so it is neither reaped nor
signalled. The limit: a descendant that replaced its whole environment
(``exec`` with a fresh one) no longer carries the token and is not found;
one that exits before a scan found it stays a zombie until this process
ends (its environment is gone, so it cannot be told from a sibling's).
"""

from __future__ import annotations

import os
import signal
import threading
import time

from .guard import int_ref, libc_call

TOKEN_ENV = "SAGEMAKER_SUPERVISORS"
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

_lock = threading.Lock()
_depth = 0
_previous = 0


def new_token() -> str:
    return f"{os.getpid()}-{os.urandom(6).hex()}"


def tagged(value: str | None, token: str) -> str:
    """The ``SAGEMAKER_SUPERVISORS`` value of a child: the inherited tokens and ours."""
    return f"{value} {token}".strip() if value else token


def _prctl():
    """``prctl(*args)`` through libc (guard.libc_call: no ctypes import on every start), or None."""
    try:
        call = libc_call()
    except (OSError, AttributeError, ImportError):
        return None
    return lambda *args: call("prctl", *args)


class subreaper:  # noqa: N801 - a context manager, like contextlib's helpers
    """``with subreaper():`` this process adopts the orphans of its descendants.

    Nested or concurrent uses share the flag; the last one out restores what
    the process had before (PID 1 managers such as tini set it themselves).
    """

    def __enter__(self):
        global _depth, _previous
        with _lock:
            if _depth == 0:
                prctl = _prctl()
                if prctl is not None:
                    current, pointer = int_ref()
                    prctl(PR_GET_CHILD_SUBREAPER, pointer, 0, 0, 0)
                    _previous = current.value
                    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and not _previous:
                prctl = _prctl()
                if prctl is not None:
                    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        return False


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` now: from its threads' ``/proc/PID/task/TID/children``
    where the kernel has them (CONFIG_PROC_CHILDREN), else from every process's ``stat``."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tids = []
    found = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(child) for child in f.read().split())
        except FileNotFoundError:
            if tid == str(pid):  # the main thread has no such file: this kernel keeps no lists
                found = None
                break
        except OSError:
            continue  # a thread that ended meanwhile
    if found is not None and tids:
        return found
    return _children_from_stat(pid)


def _children_from_stat(pid: int) -> list[int]:
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    wanted = str(pid)
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1].decode() == wanted:
            found.append(int(name))
    return found


def tokens_of(pid: int) -> set[str]:
    """The tokens in ``SAGEMAKER_SUPERVISORS`` of the environment ``pid`` started with."""
    prefix = f"{TOKEN_ENV}=".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return set()
    return {token.decode(errors="replace") for entry in entries if entry.startswith(prefix)
            for token in entry[len(prefix):].split()}


def carries(pid: int, token: str) -> bool:
    """Whether the environment ``pid`` started with holds ``token`` in ``SAGEMAKER_SUPERVISORS``."""
    return token in tokens_of(pid)


def carriers(tokens: set[str]) -> list[int]:
    """Every process of this user but this one whose environment carries one of ``tokens``, wherever
    it was re-parented: what a supervisor that died (SIGKILL) left behind, found by the tokens it
    recorded. A random token in the environment is what no stranger carries."""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me and tokens_of(int(name)) & tokens:
            found.append(int(name))
    return found


def end_carriers(tokens: set[str], term_seconds: float = 1.0, limit_seconds: float = 5.0) -> list[int]:
    """SIGTERM every carrier of ``tokens``, SIGKILL after ``term_seconds`` those that remain,
    for at most ``limit_seconds``; the pids that were signalled."""
    started = time.monotonic()
    signalled: dict[int, float] = {}
    while tokens and time.monotonic() - started < limit_seconds:
        alive = [pid for pid in carriers(tokens) if not _zombie(pid)]
        if not alive:
            break
        _escalate(alive, signalled, term_seconds)
        time.sleep(0.05)
    return list(signalled)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def _reap(pid: int) -> bool:
    """Reap ``pid`` (a child of ours) if it has exited; True once it is gone."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG) is not None
    except ChildProcessError:
        return True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Orphans:
    """The adopted orphans of one supervisor, known by its ``token``.

    ``own()`` gives the pids of the children the supervisor started and has
    not reaped yet; they are never taken for orphans.
    """

    def __init__(self, token: str, own):
        self.token = token
        self.own = own
        self.adopted: set[int] = set()
        self.ended: list[int] = []

    def scan(self) -> set[int]:
        """Find new adopted orphans and reap those that exited; the live ones."""
        mine = set(self.own())
        for pid in children_of(os.getpid()):
            if pid not in mine and pid not in self.adopted and carries(pid, self.token):
                self.adopted.add(pid)
        self.adopted = {pid for pid in self.adopted if not _reap(pid)}
        return self.adopted

    def sweep(self, term_seconds: float = 1.0, limit_seconds: float = 5.0) -> list[int]:
        """End every adopted orphan (SIGTERM, then SIGKILL after ``term_seconds``),
        and the orphans that their ending frees, for at most ``limit_seconds``;
        returns the pids that were ended."""
        started = time.monotonic()
        signalled: dict[int, float] = {}
        while self.scan() and time.monotonic() - started < limit_seconds:
            _escalate(self.adopted, signalled, term_seconds)
            time.sleep(0.02)
        self.ended.extend(signalled)
        return list(signalled)


def _escalate(pids, signalled: dict, term_seconds: float) -> None:
    """One round of ending ``pids``: SIGTERM to each not yet signalled (noted in ``signalled``),
    SIGKILL to each that has had ``term_seconds`` since."""
    now = time.monotonic()
    for pid in pids:
        if pid not in signalled:
            signalled[pid] = now
            _signal(pid, signal.SIGTERM)
        elif now - signalled[pid] >= term_seconds:
            _signal(pid, signal.SIGKILL)
