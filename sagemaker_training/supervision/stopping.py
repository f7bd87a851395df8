"""SIGTERM and SIGINT before the training processes run.

The platform stops a job with SIGTERM (StopTrainingJob, a spot interruption,
the max run time) whenever it likes, also while ``train`` is still reading
its configuration, fetching the code or installing the requirements. From
the first line of ``train`` a :class:`StopGuard` turns such a signal into a
:class:`Stopped` exception raised where the work is: the download or the
pip run under way is abandoned (pip is killed by the code that started it),
the job writes ``output/failure`` saying what was interrupted, and exits
128+signal (143 for SIGTERM). Once the supervisor runs it installs its own
handlers (it passes the signal on to the training processes); when it
returns, :meth:`StopGuard.disarm` makes a late signal a no-op.

Work that cannot be interrupted (an S3 transfer thread blocked on a network
read, which the transfer library waits for) is bounded: with ``on_stuck``,
the guard calls it ``STUCK_SECONDS`` after the signal if the job has not
finished by then (``train`` writes the report and exits there).
"""

from __future__ import annotations

import threading

from . import signals

STUCK_SECONDS = 5.0


class Stopped(BaseException):
    """A stopping signal arrived before the training processes started.

    A BaseException, like KeyboardInterrupt: no ``except Exception`` of the
    work it interrupts (a retry loop, a translation of errors) swallows it.
    """

    def __init__(self, signum: int, phase: str):
        super().__init__(signum, phase)
        self.signum = signum
        self.phase = phase

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def reason(self) -> str:
        return (f"Stopped: the container received {signals.name(self.signum)} while {self.phase}, before the training code started "
                "(StopTrainingJob, a spot interruption or the max run time); nothing was trained.\n")


class StopGuard:
    """``with StopGuard() as guard:`` SIGTERM/SIGINT raise :class:`Stopped` in the main thread.

    ``guard.phase`` names the work under way, for the failure reason.
    Outside the main thread (where no handler can be set) it does nothing.
    """

    def __init__(self, on_stuck=None, stuck_seconds: float = STUCK_SECONDS):
        self.phase = "starting"
        self.on_stuck = on_stuck
        self.stuck_seconds = stuck_seconds
        self.stopped: Stopped | None = None
        self._armed = True
        self._handling = signals.handling(self._handle)
        self._timer: threading.Timer | None = None

    def __enter__(self):
        self._handling.__enter__()
        return self

    def __exit__(self, *exc):
        if self._timer is not None:
            self._timer.cancel()
        return self._handling.__exit__(*exc)

    def disarm(self) -> None:
        """The training processes have run: a signal now changes nothing."""
        self._armed = False

    def _handle(self, signum, frame):  # noqa: ARG002
        if not self._armed or self.stopped is not None:
            return  # too late to matter, or a second signal while the first one unwinds
        self.stopped = Stopped(signum, self.phase)
        if self.on_stuck is not None:
            self._timer = threading.Timer(self.stuck_seconds, self.on_stuck, args=(self.stopped,))
            self._timer.daemon = True
            self._timer.start()
        raise self.stopped
