"""One started child process: the handle the supervisor (:mod:`.processes`) waits on.

A :class:`Child` starts its :class:`~.processes.ProcessSpec` through the exec
guard (:mod:`.guard`, which sets the parent-death signal) in a session of
its own, streams its stdout and stderr (:mod:`.streams`), keeps its pidfd to
be waited on, signals its process group, and turns its exit into a
:class:`~.failures.ProcessFailure`. Each child gets two paths in its
environment: ``SAGEMAKER_ERROR_FILE`` for its error record and
``SAGEMAKER_DONE_FILE`` for :func:`.errors.mark_done`.
"""

from __future__ import annotations

import os
import signal
import time

from . import guard, orphans, streams
from ..errors import DONE_FILE_ENV, ERROR_FILE_ENV, Redactor, read_error_file
from .failures import ProcessFailure

STDERR_TAIL_LINES = streams.TAIL_LINES


def _pipe() -> tuple:
    """A pipe (both ends non-inheritable) whose write end is above 2: ``posix_spawn``'s dup2 onto
    the same number would leave it close-on-exec (only where this process's 0, 1 or 2 is closed)."""
    read, write = os.pipe()
    low = []
    while write <= 2:
        low.append(write)
        write = os.dup(write)
    for fd in low:
        os.close(fd)
    return read, write


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfds (Linux < 5.3): Child.exited() is polled instead
        return None


class Child:
    """A started child: the handle the supervisor waits on, and what
    ``on_mains_done`` receives for each live auxiliary child."""

    def __init__(self, spec: "ProcessSpec",  # noqa: F821 - processes.py's; not imported (a cycle)
                 error_file: str, redactor: Redactor, out, err, token: str):
        self.spec = spec
        self.error_file = error_file
        self.done_file = os.path.splitext(error_file)[0] + ".done"  # errors.mark_done()
        env = dict(os.environ if spec.env is None else spec.env)
        env[ERROR_FILE_ENV] = self.error_file
        env[DONE_FILE_ENV] = self.done_file
        env[orphans.TOKEN_ENV] = orphans.tagged(env.get(orphans.TOKEN_ENV), token)
        env.setdefault("PYTHONUNBUFFERED", "1")
        pipes = [_pipe(), _pipe()]  # (read, write) for stdout, stderr
        try:  # in a session of its own (setsid), through the guard, without importing subprocess
            self.pid = guard.spawn(spec.argv, env, cwd=spec.cwd, stdout=pipes[0][1], stderr=pipes[1][1])
        except BaseException:
            for fd in (*pipes[0], *pipes[1]):
                os.close(fd)
            raise
        os.close(pipes[0][1])
        os.close(pipes[1][1])
        self.pidfd = _pidfd(self.pid)
        self.tail = streams.Tail(STDERR_TAIL_LINES)
        prefix = f"[{spec.label}] " if spec.label else ""
        self.threads = [streams.start(open(pipes[0][0], "rb", buffering=0), out, prefix, redactor),
                        streams.start(open(pipes[1][0], "rb", buffering=0), err, prefix, redactor, self.tail)]
        self.returncode = None
        self.stopped_with: int | None = None  # the signal a stop of the supervisor sent it

    @property
    def name(self) -> str:
        return self.spec.name

    def exited(self) -> bool:
        """Whether the child has ended (it is not reaped here: the supervisor does that)."""
        if self.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def peek_code(self) -> int | None:
        """The exit code (``-signal`` when a signal ended it) of a child that has ended, reaped
        or not; None while it runs. Nothing is reaped here."""
        if self.returncode is not None:
            return self.returncode
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def signal_group(self, signum: int) -> None:
        """``signum`` to the child's process group (the child and what it started there)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self) -> int:
        """Wait for the child itself (only it: ``waitpid`` on its pid) and keep its exit code
        (``-signal`` when a signal ended it)."""
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:  # reaped elsewhere: its code is lost, as Popen.wait says
                self.returncode = 0
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return self.returncode

    def finish(self, adopt=None) -> int:
        """Reap the child, end what it left behind in its group, drain its output.

        ``adopt()`` runs between the two: what the child left is re-parented to
        the supervisor by then, and still alive to be recognised as ours.
        """
        self.reap()
        if adopt is not None:
            adopt()
        self.signal_group(signal.SIGKILL)
        # A daemonised grandchild may hold the pipes open forever: wait for the
        # rest of the output at most 2 s in all, not 2 s per pipe.
        deadline = time.monotonic() + 2
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return self.returncode

    def failure(self) -> ProcessFailure:
        code = self.returncode
        failure_text = None
        if self.spec.failure_file:
            try:
                with open(self.spec.failure_file, encoding="utf-8", errors="replace") as f:
                    failure_text = f.read(streams.PIECE_CHARS)
            except OSError:
                pass
        return ProcessFailure(
            name=self.spec.name,
            pid=self.pid,
            exitcode=code if code is not None and code >= 0 else None,
            signum=-code if code is not None and code < 0 else None,
            record=read_error_file(self.error_file),
            stderr_tail=self.tail.lines(),
            user_code=self.spec.user_code,
            failure_text=failure_text,
        )


def wait_ended(children, timeout: float, poll: float = 0.05, stopping=lambda: False) -> list:
    """Wait until every one of ``children`` (:class:`Child` handles) has ended by
    itself, at most ``timeout`` seconds or until ``stopping()``; return those
    still running. Nothing is reaped: the supervisor does that."""
    deadline = time.monotonic() + timeout
    running = [c for c in children if not c.exited()]
    while running and time.monotonic() < deadline and not stopping():
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        running = [c for c in running if not c.exited()]
    return running


def make_error_dir() -> str:
    """A private directory for the children's error records: ``tempfile.mkdtemp``
    without importing tempfile (and random, hashlib ...) on every start."""
    path = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"sagemaker-errors-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.mkdir(path, 0o700)
        return path
    except OSError:
        import tempfile  # noqa: PLC0415

        return tempfile.mkdtemp(prefix="sagemaker-errors-")


def remove_error_dir(path: str) -> None:
    try:
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil  # noqa: PLC0415

        shutil.rmtree(path, ignore_errors=True)
