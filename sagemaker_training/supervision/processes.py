"""Start, stream, signal and reap child processes.

The supervisor never runs framework code itself. It starts every piece of
work (the user script, a framework runner, a parameter server, a whole host
in a local cluster) as a child described by a :class:`ProcessSpec`, and
:func:`supervise` then:

* starts each child in its own session and process group (``Popen``'s
  ``start_new_session``) through the exec guard :mod:`.guard`, which sets
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
  ``on_mains_done(children)`` gets the live :class:`~.child.Child` handles of the
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
import sys
import threading
import time

from . import orphans, signals
from ..core import settings
from ..core.values import Value
from .child import Child, make_error_dir, remove_error_dir
from ..errors import Redactor
from .failures import ProcessFailure, exception_from_stderr, signal_name  # noqa: F401 - re-exported

GRACE_ENV = "SAGEMAKER_TERMINATION_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 110.0
SCAN_SECONDS = 1.0  # how often the adopted orphans are looked for while children run


class ProcessSpec(Value):
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


class Outcome(Value):
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
        self._stop_with = (grace, signal.SIGTERM)  # the last stop's grace and signal
        self._mains_done = False
        self._started = False

    # -- stopping -----------------------------------------------------------
    def _live(self):
        return [c for c in self.children if c.returncode is None]

    def stop(self, grace: float, signum: int = signal.SIGTERM) -> None:
        """SIGTERM (or ``signum``) to every live child, SIGKILL after ``grace``."""
        with self._lock:
            self._stopping = True
            self._stop_with = (grace, signum)
            live = self._live()
            for child in live:
                child.stopped_with = signum
                child.signal_group(signum)
            if live:
                self._arm_kill_timer(grace)

    def _arm_kill_timer(self, grace: float) -> None:
        if self._kill_timer is None:  # nothing left to kill: no timer thread
            self._kill_timer = threading.Timer(grace, self.kill_all)
            self._kill_timer.daemon = True
            self._kill_timer.start()

    def kill_all(self) -> None:
        for child in self._live():
            child.signal_group(signal.SIGKILL)

    def _work_done(self) -> bool:
        """Whether every main child has exited 0 (reaped or not), or runs on having said its
        work is done (errors.mark_done)."""
        if self._mains_done:
            return True
        mains = [c for c in self.children if c.spec.main]
        if not (self._started and mains):
            return False
        for child in mains:
            code = child.peek_code()
            if code != 0 and not (code is None and os.path.exists(child.done_file)):
                return False
        return True

    def _say(self, text: str) -> None:
        try:  # from the signal handler: the main thread may be inside a write to the same stream
            print(text, file=self.err, flush=True)
        except (RuntimeError, OSError, ValueError):
            pass

    def _on_signal(self, signum, frame):
        if self.outcome.stopped_by is None and self.outcome.failure is None and self._work_done():
            # what is left is ending (a shutdown barrier) and waiting for peers: cut short, at the
            # auxiliary children's grace
            first = self.outcome.late_signal is None
            if first:
                self.outcome.late_signal = signum
            self.stop(min(self.grace, self.aux_grace), signum)
            if first:
                self._say(f"sagemaker_training: received {signal_name(signum)} after the training processes had "
                          "finished their work; ending the wait for peers")
            return
        first = self.outcome.stopped_by is None
        if first:
            self.outcome.stopped_by = signum
        self.stop(self.grace, signum)
        if first:
            self._say(f"sagemaker_training: received {signal_name(signum)}; passing it to the training processes "
                      f"and waiting up to {self.grace:g}s before SIGKILL")

    def _on_deadline(self):
        if self._live() and not self._stopping:
            self.outcome.timed_out = True
            self.stop(self.grace)

    # -- running ------------------------------------------------------------
    def run(self) -> Outcome:
        with signals.handling(self._on_signal):
            return self._run()

    def _run(self) -> Outcome:
        error_dir = make_error_dir()
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
            remove_error_dir(error_dir)
        return self.outcome

    def _start(self, error_dir: str) -> None:
        redactor = Redactor()
        for index, spec in enumerate(self.specs):
            if self._stopping:
                break
            error_file = os.path.join(error_dir, f"{index}.json")
            child = Child(spec, error_file, redactor, self.out, self.err, self.orphans.token)
            with self._lock:
                self.children.append(child)
                if self._stopping and child.stopped_with is None:
                    # the stop came while it was starting (its signal handler ran before the child was
                    # listed): it gets the same signal, and the same SIGKILL after the grace
                    grace, signum = self._stop_with
                    child.stopped_with = signum
                    child.signal_group(signum)
                    self._arm_kill_timer(grace)
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
