"""Start, stream, signal and reap child processes.

The supervisor never runs framework code itself. It starts every piece of
work (the user script, a framework runner, a parameter server, a whole host
in a local cluster) as a child described by a :class:`ProcessSpec`, and
:func:`supervise` then:

* streams each child's stdout and stderr line by line (bytes, so there is no
  line-length limit and no decoding error), redacting secrets and optionally
  prefixing a label; the last stderr lines are kept for the failure reason;
* forwards SIGTERM and SIGINT to every child's process group, waits a grace
  period, then sends SIGKILL;
* reaps children as they exit; the job succeeds when every *main* child
  exited 0, after which *auxiliary* children (parameter servers, schedulers)
  are stopped; any child failing first fails the job and stops the others;
* turns an exit into a :class:`ProcessFailure` that reads the child's own
  error record (``SAGEMAKER_ERROR_FILE``), its signal and its stderr tail.
"""

from __future__ import annotations

import collections
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from ._record import Record
from .errors import ERROR_FILE_ENV, Redactor, read_error_file

STDERR_TAIL_LINES = 40

_SIGNAL_HINTS = {
    signal.SIGKILL: "usually the kernel's out-of-memory killer: use an instance with more memory or reduce "
    "the batch or model size",
    signal.SIGSEGV: "a segmentation fault in native code (a framework, a library extension or a GPU driver)",
    signal.SIGBUS: "a bus error in native code, often a full /dev/shm: increase the shared memory size",
    signal.SIGABRT: "the process aborted itself, usually a failed assertion in native code",
    signal.SIGTERM: "it was asked to stop",
    signal.SIGINT: "it was interrupted",
}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


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


class ProcessFailure(Record):
    _fields = ("name", "pid", "exitcode", "signum", "record", "stderr_tail", "user_code", "failure_text")

    def __init__(self, name: str, pid: int, exitcode: int | None, signum: int | None, record: dict | None,
                 stderr_tail: list, user_code: bool = True, failure_text: str | None = None):
        self.name = name
        self.pid = pid
        self.exitcode = exitcode
        self.signum = signum
        self.record = record
        self.stderr_tail = stderr_tail
        self.user_code = user_code
        self.failure_text = failure_text

    @property
    def exit_code(self) -> int:
        """The exit code the supervisor should pass on: the child's, or 128+signal."""
        if self.signum:
            return 128 + self.signum
        return self.exitcode or 1

    def _failure_text_parts(self):
        """(kind, first line, rest) of a failure file such as a host's output/failure."""
        lines = (self.failure_text or "").strip().splitlines()
        if not lines:
            return None
        kind, sep, rest = lines[0].partition(": ")
        if not sep or not kind.endswith("Error"):
            kind, rest = None, lines[0]
        return kind, rest, "\n".join(lines[1:]).strip()

    @property
    def kind(self) -> str:
        parts = self._failure_text_parts()
        if parts and parts[0]:
            return parts[0]
        if self.record and self.record.get("kind"):
            return self.record["kind"]
        return "UserError" if self.user_code else "ToolkitError"

    def headline(self) -> str:
        """What went wrong, in one line, without the kind prefix."""
        parts = self._failure_text_parts()
        if parts:
            return f"on {self.name}: {parts[1]}"
        if self.record:
            who = self.record.get("user_function") or self.name
            message = _one_line(self.record.get("message", ""))
            what = f"{who} raised {self.record.get('type')}"
            if self.record.get("kind"):  # a TrainingError carries a finished sentence
                return f"{self.name}: {message}" if self.record.get("user_function") is None else f"{what}: {message}"
            return f"{what}: {message}" if message else what
        if self.signum:
            hint = _SIGNAL_HINTS.get(self.signum)
            text = f"{self.name} was killed by {signal_name(self.signum)}"
            return f"{text} ({hint})" if hint else text
        text = f"{self.name} exited with code {self.exitcode}"
        exception = exception_from_stderr(self.stderr_tail)
        return f"{text}: {exception}" if exception else text

    def reason(self) -> str:
        parts = self._failure_text_parts()
        if parts:  # the child wrote a finished reason: keep it, say where it came from
            return f"{self.kind}: {self.headline()}" + (f"\n\n{parts[2]}" if parts[2] else "") + "\n"
        head = f"{self.kind}: {self.headline()}".rstrip(".")  # a finished sentence gets one period
        if self.kind == "UserError":
            head += ". Fix the training code" + ("; its last stderr lines follow." if self.stderr_tail else ".")
        elif self.kind == "ToolkitError":
            head += ". This is a problem in sagemaker_training or the image; report it with the log below."
        elif not head.endswith("."):
            head += "."
        details = []
        if self.stderr_tail:
            details.append(f"Last stderr lines of {self.name}:")
            details.extend(self.stderr_tail)
        return head + ("\n\n" + "\n".join(details) if details else "") + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Fault)\b[^:]*)(?::\s?(.*))?$")


def exception_from_stderr(lines) -> str | None:
    """The ``Type: message`` line of the last Python traceback in ``lines``."""
    seen_traceback = False
    found = None
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            seen_traceback, found = True, None
            continue
        if seen_traceback and not line.startswith((" ", "\t")):
            match = _EXCEPTION_LINE.match(line.strip())
            if match:
                found = line.strip()
    return _one_line(found) if found else None


class Outcome(Record):
    """How a supervised run ended. ``stopped_by``: the signal the supervisor itself received."""

    _fields = ("exit_codes", "failure", "stopped_by", "timed_out")

    def __init__(self, exit_codes: dict | None = None, failure: ProcessFailure | None = None,
                 stopped_by: int | None = None, timed_out: bool = False):
        self.exit_codes = {} if exit_codes is None else exit_codes
        self.failure = failure
        self.stopped_by = stopped_by
        self.timed_out = timed_out

    @property
    def ok(self) -> bool:
        return self.failure is None and self.stopped_by is None and not self.timed_out


def _parent_death_signal():
    """A preexec function that makes the kernel SIGKILL the child when the
    supervisor dies (PR_SET_PDEATHSIG), so a killed supervisor leaves no
    training process behind. The libc function is looked up here, in the
    parent: between fork and exec the child only calls it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec():
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return preexec


class _Child:
    def __init__(self, spec: ProcessSpec, error_file: str, redactor: Redactor, out, err, preexec=None):
        self.spec = spec
        self.error_file = error_file
        env = dict(os.environ if spec.env is None else spec.env)
        env[ERROR_FILE_ENV] = self.error_file
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.popen = subprocess.Popen(
            spec.argv,
            env=env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec,
        )
        self.pid = self.popen.pid
        self.tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
        prefix = f"[{spec.label}] " if spec.label else ""
        self.threads = [
            threading.Thread(target=_pump, args=(self.popen.stdout, out, prefix, redactor, None), daemon=True),
            threading.Thread(target=_pump, args=(self.popen.stderr, err, prefix, redactor, self.tail), daemon=True),
        ]
        for thread in self.threads:
            thread.start()
        self.returncode = None

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def finish(self) -> int:
        """Reap the child, end what it left behind in its group, drain its output."""
        self.returncode = self.popen.wait()
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
                    failure_text = f.read()
            except OSError:
                pass
        return ProcessFailure(
            name=self.spec.name,
            pid=self.pid,
            exitcode=code if code is not None and code >= 0 else None,
            signum=-code if code is not None and code < 0 else None,
            record=read_error_file(self.error_file),
            stderr_tail=list(self.tail),
            user_code=self.spec.user_code,
            failure_text=failure_text,
        )


def _pump(pipe, sink, prefix, redactor, tail):
    """Copy a child's pipe to our stream line by line."""
    try:
        for raw in iter(pipe.readline, b""):
            line = redactor(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            if tail is not None:
                tail.append(line)
            try:
                sink.write(f"{prefix}{line}\n")
                sink.flush()
            except (OSError, ValueError):
                pass
    finally:
        pipe.close()


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


def grace_seconds(environ=None, default: float = 110.0) -> float:
    environ = os.environ if environ is None else environ
    try:
        return float(environ.get("SAGEMAKER_TERMINATION_GRACE_SECONDS", default))
    except ValueError:
        return default


class Supervisor:
    """Runs a set of children to an :class:`Outcome`. Use :func:`supervise`."""

    def __init__(self, specs, grace: float, aux_grace: float = 10.0, deadline: float | None = None,
                 on_mains_done=None, out=None, err=None):
        self.specs = list(specs)
        self.grace = grace
        self.aux_grace = aux_grace
        self.deadline = deadline
        self.on_mains_done = on_mains_done
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.children: list[_Child] = []
        self.outcome = Outcome()
        self._lock = threading.RLock()  # stop() runs from the signal handler too, maybe inside stop()
        self._kill_timer: threading.Timer | None = None
        self._stopping = False

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

    def _on_signal(self, signum, frame):
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
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        error_dir = _make_error_dir()
        deadline_timer = None
        try:
            redactor = Redactor()
            preexec = _parent_death_signal()
            for index, spec in enumerate(self.specs):
                if self._stopping:
                    break
                error_file = os.path.join(error_dir, f"{index}.json")
                self.children.append(_Child(spec, error_file, redactor, self.out, self.err, preexec))
            if self.deadline is not None:
                deadline_timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._on_deadline)
                deadline_timer.daemon = True
                deadline_timer.start()
            self._wait()
        finally:
            if deadline_timer:
                deadline_timer.cancel()
            for child in self._live():  # only on an unexpected error in here
                child.signal_group(signal.SIGKILL)
                child.finish()
            if self._kill_timer:
                self._kill_timer.cancel()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            _remove_error_dir(error_dir)
        return self.outcome

    def _wait(self):
        by_pid = {c.pid: c for c in self.children}
        mains_done = False
        while self._live():
            pid = self._wait_any()
            child = by_pid.get(pid)
            if child is None:  # not ours (a grandchild re-parented to us): reap it
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                continue
            code = child.finish()
            self.outcome.exit_codes[child.spec.name] = code
            if self._stopping:
                continue
            if code != 0:
                self.outcome.failure = child.failure()
                self.stop(min(self.grace, self.aux_grace))
                continue
            if not mains_done and not any(c.spec.main for c in self._live()):
                mains_done = True
                if self.on_mains_done and self._live():
                    self.on_mains_done()
                self.stop(self.aux_grace)

    def _wait_any(self) -> int:
        """Block until some child exits; return its pid without reaping it."""
        while True:
            try:
                result = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                live = self._live()
                return live[0].pid if live else -1
            if result is None:
                continue
            return result.si_pid


def supervise(specs, grace: float | None = None, **kwargs) -> Outcome:
    return Supervisor(specs, grace=grace_seconds() if grace is None else grace, **kwargs).run()
