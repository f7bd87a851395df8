"""Logging for the supervisor: one format, secrets redacted."""

from __future__ import annotations

import logging
import sys

from ..errors import Redactor

LOGGER_NAME = "sagemaker_training"


class RedactingFilter(logging.Filter):
    def __init__(self):
        super().__init__()
        self.redact = Redactor()

    def filter(self, record):
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def configure(level: int = logging.INFO, stream=None) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def get(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)
