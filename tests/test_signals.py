"""supervision/signals.py: the one installer of SIGTERM/SIGINT handlers, and signal names."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from sagemaker_training.supervision import signals


def test_names():
    assert signals.name(signal.SIGTERM) == "SIGTERM"
    assert signals.name(99) == "signal 99"


def test_handling_installs_for_the_block_and_puts_back_what_was_there():
    seen = []
    before = {s: signal.getsignal(s) for s in signals.STOP_SIGNALS}
    with signals.handling(lambda signum, frame: seen.append(signum)) as handled:
        assert handled.installed
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert seen == [signal.SIGTERM, signal.SIGINT]
    assert {s: signal.getsignal(s) for s in signals.STOP_SIGNALS} == before


def test_an_exception_from_the_handler_leaves_the_block_and_the_handlers_are_back():
    class Stop(Exception):
        pass

    def stop(signum, frame):
        raise Stop(signum)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stop):
        with signals.handling(stop):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # not reached: the handler raises first
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_nothing_is_installed():
    result = {}

    def other():
        with signals.handling(lambda *_: None) as handled:
            result["installed"] = handled.installed
            result["handler"] = signal.getsignal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert result == {"installed": False, "handler": before}
