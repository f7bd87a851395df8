"""The stopping signals: which they are, their names, and handlers installed and put back.

SIGTERM (the platform's stop: StopTrainingJob, a spot interruption, the max
run time) and SIGINT stop a job at every stage. :class:`handling` installs one
handler for both for the length of a ``with`` block and puts back the ones
there were, in the main thread only (Python takes signals there; elsewhere it
does nothing). :func:`name` is how every message names a signal.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 99`` for a number that names none."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class handling:  # noqa: N801 - a context manager, like contextlib's helpers
    """``with handling(handler):`` ``handler(signum, frame)`` takes SIGTERM and SIGINT, then the
    previous handlers are back. Outside the main thread it installs nothing; ``installed`` says
    which it did."""

    def __init__(self, handler, signals=STOP_SIGNALS):
        self.handler = handler
        self.signals = tuple(signals)
        self._previous: dict = {}

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self.handler)
        return self

    def __exit__(self, *exc):
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        return False


def forward_to(process, signals=STOP_SIGNALS) -> list:
    """From now on, SIGTERM and SIGINT go on to ``process`` (a ``subprocess.Popen``), for a program
    that is only a wrapper around it (nothing is put back: it ends with its child). Returns the list
    the signals passed on are appended to."""
    passed: list = []

    def forward(signum, frame):  # noqa: ARG001
        passed.append(signum)
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass

    for signum in signals:
        signal.signal(signum, forward)
    return passed
