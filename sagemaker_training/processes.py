"""Start, stream, signal and reap child processes.

The supervisor never runs framework code itself. It starts every piece of
work (the user script, a framework runner, a parameter server, a whole host
in a local cluster) as a child described by a :class:`ProcessSpec`, and
:func:`supervise` then:

* starts each child in its own session and process group (``Popen``'s
  ``start_new_session``) through the exec wrapper :mod:`._exec`, which sets
  the parent-death signal (a killed supervisor leaves no training process
  behind) without a ``preexec_fn``, unsafe in a program whose output
  threads run;
* streams each child's stdout and stderr line by line in bounded memory
  (:mod:`.streams`), redacting secrets and optionally prefixing a label; the
  last stderr lines are kept for the failure reason;
* waits for its own children only, through their pidfds (``poll`` on
  ``os.pidfd_open``) and its own ``Popen`` objects, as
  torch.distributed.elastic's process context polls only its own handles: a
  process started beside it by the same program is never reaped here;
* forwards SIGTERM and SIGINT to every child's process group, waits a grace
  period (``SAGEMAKER_TERMINATION_GRACE_SECONDS``, default 110), then sends
  SIGKILL;
* the job succeeds when every *main* child exited 0; then the plan's
  ``on_mains_done(children)`` gets the live :class:`Child` handles of the
  *auxiliary* children (parameter servers, schedulers, watchers) to wait for
  or signal, after which they are stopped; any child failing first fails the
  job and stops the others; a stop that comes only then ends the wait and
  the job still succeeds;
* adopts and, at the end, ends the orphans its children leave behind
  (:mod:`.orphans`), so that every process the job started ends with it;
* turns an exit into a :class:`~.failures.ProcessFailure` that reads the
  child's own error record (``SAGEMAKER_ERROR_FILE``), its signal and its
  stderr tail.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time

from . import orphans, settings, streams
from ._record import Record
from .errors import DONE_FILE_ENV, ERROR_FILE_ENV, Redactor, read_error_file
from .failures import ProcessFailure, exception_from_stderr, signal_name  # noqa: F401 - re-exported

GRACE_ENV = "SAGEMAKER_TERMINATION_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 110.0
STDERR_TAIL_LINES = streams.TAIL_LINES
SCAN_SECONDS = 1.0  # how often the adopted orphans are looked for while children run
EXEC_WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_exec.py")


class ProcessSpec(Record):
    """One child to run.

    ``main`` children decide the outcome; auxiliary ones serve them and are
    stopped once every main child has exited 0. ``user_code`` says whose code
    the child runs, so that its failure is a UserError or a ToolkitError.
    ``failure_file`` is a plain-text reason the child leaves (a host's
    output/failure).
    """

    _fields = ("name", "argv", "env", "cwd", "main", "label", "user_code", "failure_file")

    def __init__(self, name: str, argv: list, env: dict | None = None, cwd: str | None = None, main: bool = True,
                 label: str | None = None, user_code: bool = True, failure_file: str | None = None):
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.main = main
        self.label = label
        self.user_code = user_code
        self.failure_file = failure_file


class Outcome(Record):
    """How a supervised run ended. ``stopped_by``: the signal the supervisor itself received
    while training ran; ``late_signal``: one it received only after every main child had exited 0
    (while ``on_mains_done`` waited for peers): the training had succeeded, so the run did too."""

    _fields = ("exit_codes", "failure", "stopped_by", "timed_out", "late_signal")

    def __init__(self, exit_codes: dict | None = None, failure: ProcessFailure | None = None,
                 stopped_by: int | None = None, timed_out: bool = False, late_signal: int | None = None):
        self.exit_codes = {} if exit_codes is None else exit_codes
        self.failure = failure
        self.stopped_by = stopped_by
        self.timed_out = timed_out
        self.late_signal = late_signal

    @property
    def ok(self) -> bool:
        return self.failure is None and self.stopped_by is None and not self.timed_out




def launcher() -> list:
    """What goes before a child's argv: the exec wrapper that sets its parent-death signal."""
    return [sys.executable, "-I", "-S", EXEC_WRAPPER, str(os.getpid())]


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfds (Linux < 5.3): Child.exited() is polled instead
        return None


class Child:
    """A started child: the handle the supervisor waits on, and what
    ``on_mains_done`` receives for each live auxiliary child."""

    def __init__(self, spec: ProcessSpec, error_file: str, redactor: Redactor, out, err, token: str):
        self.spec = spec
        self.error_file = error_file
        self.done_file = os.path.splitext(error_file)[0] + ".done"  # errors.mark_done()
        env = dict(os.environ if spec.env is None else spec.env)
        env[ERROR_FILE_ENV] = self.error_file
        env[DONE_FILE_ENV] = self.done_file
        env[orphans.TOKEN_ENV] = orphans.tagged(env.get(orphans.TOKEN_ENV), token)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.popen = subprocess.Popen(
            [*launcher(), *spec.argv],
            env=env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.pidfd = _pidfd(self.pid)
        self.tail = streams.Tail(STDERR_TAIL_LINES)
        prefix = f"[{spec.label}] " if spec.label else ""
        self.threads = [streams.start(self.popen.stdout, out, prefix, redactor),
                        streams.start(self.popen.stderr, err, prefix, redactor, self.tail)]
        self.returncode = None

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

    def signal_group(self, signum: int) -> None:
        """``signum`` to the child's process group (the child and what it started there)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self) -> int:
        """Wait for the child itself (only it: ``waitpid`` on its pid) and keep its exit code."""
        self.returncode = self.popen.wait()
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


def wait_ended(children, timeout: float, poll: float = 0.05) -> list:
    """Wait until every one of ``children`` (:class:`Child` handles) has ended by
    itself, at most ``timeout`` seconds; return those still running. Nothing is
    reaped: the supervisor does that."""
    deadline = time.monotonic() + timeout
    running = [c for c in children if not c.exited()]
    while running and time.monotonic() < deadline:
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        running = [c for c in running if not c.exited()]
    return running


def _make_error_dir() -> str:
    """A private directory for the children's error records: ``tempfile.mkdtemp``
    without importing tempfile (and random, hashlib ...) on every start."""
    path = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"sagemaker-errors-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.mkdir(path, 0o700)
        return path
    except OSError:
        import tempfile  # noqa: PLC0415

        return tempfile.mkdtemp(prefix="sagemaker-errors-")


def _remove_error_dir(path: str) -> None:
    try:
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil  # noqa: PLC0415

        shutil.rmtree(path, ignore_errors=True)


def grace_seconds(environ=None) -> float:
    """``SAGEMAKER_TERMINATION_GRACE_SECONDS``: how long stopped children get before SIGKILL."""
    return settings.seconds(GRACE_ENV, DEFAULT_GRACE_SECONDS, environ)


class Supervisor:
    """Runs a set of children to an :class:`Outcome`. Use :func:`supervise`.

    ``on_mains_done(children, stopping=...)``, when given, runs once every
    main child has exited 0 and before the auxiliary children are stopped;
    ``children`` are the :class:`Child` handles of the auxiliary children
    still running, ``stopping()`` says whether a stop has come since (it
    should then return at once). It must return within a bounded time.

    A SIGTERM or SIGINT that comes only then, or once every main child has
    said its work is done (``$SAGEMAKER_DONE_FILE``, :func:`.errors.mark_done`)
    and is only ending, stops the children and leaves the outcome a success,
    with ``late_signal`` set (the SDK's local mode stops every container once
    one has ended).
    """

    def __init__(self, specs, grace: float, aux_grace: float = 10.0, deadline: float | None = None,
                 on_mains_done=None, out=None, err=None):
        self.specs = list(specs)
        self.grace = grace
        self.aux_grace = aux_grace
        self.deadline = deadline
        self.on_mains_done = on_mains_done
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.children: list[Child] = []
        self.outcome = Outcome()
        self.orphans = orphans.Orphans(orphans.new_token(), lambda: [c.pid for c in self._live()])
        self._lock = threading.RLock()  # stop() runs from the signal handler too, maybe inside stop()
        self._kill_timer: threading.Timer | None = None
        self._stopping = False
        self._mains_done = False
        self._started = False

    # -- stopping -----------------------------------------------------------
    def _live(self):
        return [c for c in self.children if c.returncode is None]

    def stop(self, grace: float, signum: int = signal.SIGTERM) -> None:
        """SIGTERM (or ``signum``) to every live child, SIGKILL after ``grace``."""
        with self._lock:
            self._stopping = True
            live = self._live()
            for child in live:
                child.signal_group(signum)
            if live and self._kill_timer is None:  # nothing left to kill: no timer thread
                self._kill_timer = threading.Timer(grace, self.kill_all)
                self._kill_timer.daemon = True
                self._kill_timer.start()

    def kill_all(self) -> None:
        for child in self._live():
            child.signal_group(signal.SIGKILL)

    def _work_done(self) -> bool:
        """Whether every main child has exited 0 or said its work is done (errors.mark_done)."""
        if self._mains_done:
            return True
        mains = [c for c in self.children if c.spec.main]
        return (self._started and bool(mains)
                and all(c.returncode == 0 or (c.returncode is None and os.path.exists(c.done_file)) for c in mains))

    def _on_signal(self, signum, frame):
        if self.outcome.stopped_by is None and self.outcome.failure is None and self._work_done():
            if self.outcome.late_signal is None:
                self.outcome.late_signal = signum
                print(f"sagemaker_training: received {signal_name(signum)} after the training processes had "
                      "finished their work; ending the wait for peers", file=self.err, flush=True)
            self.stop(min(self.grace, self.aux_grace), signum)
            return
        if self.outcome.stopped_by is None:
            self.outcome.stopped_by = signum
            print(f"sagemaker_training: received {signal_name(signum)}; passing it to the training processes "
                  f"and waiting up to {self.grace:g}s before SIGKILL", file=self.err, flush=True)
        self.stop(self.grace, signum)

    def _on_deadline(self):
        if self._live() and not self._stopping:
            self.outcome.timed_out = True
            self.stop(self.grace)

    # -- running ------------------------------------------------------------
    def run(self) -> Outcome:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        error_dir = _make_error_dir()
        deadline_timer = None
        try:
            with orphans.subreaper():
                try:
                    self._start(error_dir)
                    if self.deadline is not None:
                        deadline_timer = threading.Timer(max(0.0, self.deadline - time.monotonic()),
                                                         self._on_deadline)
                        deadline_timer.daemon = True
                        deadline_timer.start()
                    self._wait()
                finally:
                    for child in self._live():  # only on an unexpected error in here
                        child.signal_group(signal.SIGKILL)
                        child.finish()
                    self._sweep()
        finally:
            if deadline_timer:
                deadline_timer.cancel()
            if self._kill_timer:
                self._kill_timer.cancel()
            _remove_error_dir(error_dir)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.outcome

    def _start(self, error_dir: str) -> None:
        redactor = Redactor()
        for index, spec in enumerate(self.specs):
            if self._stopping:
                break
            error_file = os.path.join(error_dir, f"{index}.json")
            self.children.append(Child(spec, error_file, redactor, self.out, self.err, self.orphans.token))
        self._started = True

    def _sweep(self) -> None:
        ended = self.orphans.sweep()
        if ended:
            print(f"sagemaker_training: ended {len(ended)} process(es) the job left running "
                  f"(pids {', '.join(map(str, sorted(ended)))})", file=self.err, flush=True)

    def _wait(self):
        while self._live():
            for child in self._exited(SCAN_SECONDS):
                code = child.finish(adopt=self.orphans.scan)
                self.outcome.exit_codes[child.spec.name] = code
                if self._stopping:
                    continue
                if code != 0:
                    self.outcome.failure = child.failure()
                    self.stop(min(self.grace, self.aux_grace))
                    continue
                if not self._mains_done and not any(c.spec.main for c in self._live()):
                    self._mains_done = True
                    if self.on_mains_done and self._live():
                        self.on_mains_done(self._live(), stopping=lambda: self._stopping)
                    self.stop(self.aux_grace)
            self.orphans.scan()

    def _exited(self, timeout: float) -> list:
        """The live children that have ended (not reaped yet), waiting at most ``timeout``."""
        live = self._live()
        by_fd = {c.pidfd: c for c in live if c.pidfd is not None}
        if len(by_fd) == len(live):
            poller = select.poll()
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            return [by_fd[fd] for fd, _ in poller.poll(timeout * 1000)]
        deadline = time.monotonic() + timeout
        while True:
            ended = [c for c in live if c.exited()]
            if ended or time.monotonic() >= deadline:
                return ended
            time.sleep(0.05)


def supervise(specs, grace: float | None = None, **kwargs) -> Outcome:
    return Supervisor(specs, grace=grace_seconds() if grace is None else grace, **kwargs).run()
