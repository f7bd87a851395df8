"""Logging for the supervisor: one format, secrets redacted, without importing ``logging``.

``import logging`` brings ``traceback`` and with it ``linecache``, ``tokenize`` and
``textwrap``: about 4 ms of every ``train`` start, for a handful of lines. The
supervisor's modules log through :func:`get` (``configure`` once, in ``train``):
``logging``'s calling interface where they use it (``info``, ``warning``,
``error``, ``setLevel``) and its default line format, ``%(asctime)s %(name)s
%(levelname)s %(message)s``, each message redacted (:class:`..errors.Redactor`).
The children (framework runners) use ``logging`` itself, configured there.
"""

from __future__ import annotations

import sys
import threading
import time

from ..errors import Redactor

LOGGER_NAME = "sagemaker_training"
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_LEVEL_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR", CRITICAL: "CRITICAL"}


class _Output:
    """Where every logger writes: one stream, one level, one redactor (set by :func:`configure`)."""

    def __init__(self):
        self.stream = None  # sys.stderr at the time of writing
        self.level = WARNING  # as logging's, before anything is configured
        self.redact = None
        self.lock = threading.Lock()


_output = _Output()


class Logger:
    """A named logger of the supervisor (``sagemaker_training`` or ``sagemaker_training.NAME``)."""

    def __init__(self, name: str):
        self.name = name
        self.level: int | None = None  # None: the configured level

    def setLevel(self, level: int) -> None:  # noqa: N802 - logging's name
        if self.name == LOGGER_NAME:
            _output.level = level
        else:
            self.level = level

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level >= (_output.level if self.level is None else self.level)

    def debug(self, msg, *args) -> None:
        self.log(DEBUG, msg, *args)

    def info(self, msg, *args) -> None:
        self.log(INFO, msg, *args)

    def warning(self, msg, *args) -> None:
        self.log(WARNING, msg, *args)

    def error(self, msg, *args) -> None:
        self.log(ERROR, msg, *args)

    def critical(self, msg, *args) -> None:
        self.log(CRITICAL, msg, *args)

    def log(self, level: int, msg, *args) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args}"
        if _output.redact is not None:
            text = _output.redact(text)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"
        line = f"{stamp} {self.name} {_LEVEL_NAMES.get(level, f'Level {level}')} {text}\n"
        with _output.lock:
            stream = _output.stream or sys.stderr
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):  # our own stream is gone: the line is lost, the job goes on
                pass


_loggers: dict[str, Logger] = {}


def configure(level: int = INFO, stream=None) -> Logger:
    """The supervisor's logger, writing to ``stream`` (stderr) from ``level`` up, secrets redacted."""
    _output.stream = stream
    _output.level = level
    _output.redact = Redactor()
    return get()


def get(name: str = "") -> Logger:
    full = f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME
    logger = _loggers.get(full)
    if logger is None:
        logger = _loggers[full] = Logger(full)
    return logger
