"""Error kinds, the structured error file children write, and redaction.

Three kinds of failure reach the user, and the first line of
``output/failure`` says which one it was:

* ``ClientError``: the job's input is wrong (a config file, a hyperparameter,
  the submit directory).  Fix the request and run again.
* ``UserError``: the user's code failed (an exception, a non-zero exit, a
  signal).  Fix the training code.
* ``ToolkitError``: sagemaker_training itself or the container failed.
* ``PlatformError``: what is around the container failed (DNS, network, S3).

A child process (a framework runner, a parameter server) reports its own
failure by writing a small JSON *error record* to the path in
``SAGEMAKER_ERROR_FILE`` (see :func:`record`); the supervisor reads it back
with :func:`read_error_file` to build the failure reason. A runner of ours
that has finished the job's work (the model saved) and has only its ending
left (a kvstore's shutdown barrier) says so with :func:`mark_done`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time

ERROR_FILE_ENV = "SAGEMAKER_ERROR_FILE"
DONE_FILE_ENV = "SAGEMAKER_DONE_FILE"


HEADLINE_LIMIT = 300  # characters of an exception's message in a failure's first line
# ... and of the toolkit's own finished sentence (a TrainingError's message), which keeps its advice whole:
# the platform shows the first 1024 characters of the failure.
SENTENCE_LIMIT = 1000
ELLIPSIS = "\u2026"
_ENDS_A_SENTENCE = (".", ":", "!", "?", ELLIPSIS)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def lazy_pattern(pattern: str, flags: int = 0):
    """A regex compiled on first use (``lazy_pattern(...)()`` is the compiled one): the ones a
    successful run never needs cost nothing at start-up."""
    compiled: list = []

    def get() -> re.Pattern:
        if not compiled:
            compiled.append(re.compile(pattern, flags))
        return compiled[0]

    return get


# Lines of a message that are no part of what went wrong: stack frames, and TensorFlow's node decorations.
_NOT_THE_REASON = lazy_pattern(r"""^\s*(?:File ".*", line \d+|\[\[\{\{node |Node: ')|(?:most recent call last\)|"""
                             r"""^Original stack trace for .*):\s*$""")


def headline_of(message: str, limit: int = HEADLINE_LIMIT) -> str:
    """An exception's message as one short line: its first line of substance
    (after an introduction that ends with a colon, such as TensorFlow's
    ``Graph execution error:``, the next one too), whitespace collapsed, cut
    at ``limit`` characters with an ellipsis."""
    lines = [line.strip() for line in str(message).splitlines()
             if line.strip() and not _NOT_THE_REASON().search(line)]
    text = " ".join(lines[:2] if len(lines) > 1 and lines[0].endswith(":") else lines[:1])
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def short_sentence(message: str) -> str:
    """A TrainingError's message as one line: whole when it fits in
    ``SENTENCE_LIMIT`` characters, else cut as :func:`headline_of` cuts."""
    text = one_line(message)
    return text if len(text) <= SENTENCE_LIMIT else headline_of(message, SENTENCE_LIMIT)


class TrainingError(Exception):
    """Base class: a failure with a ready-made, actionable one-line reason."""

    kind = "ToolkitError"
    advice = "This is a problem in sagemaker_training or the container image; report it with the log."

    def __init__(self, message: str, details: str = "", exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.details = details
        self.exit_code = exit_code

    def reason(self) -> str:
        """The failure text: one headline, then optional detail lines."""
        message, details = short_sentence(self.message), self.details
        if message != one_line(self.message):  # the headline stays short; the whole message follows it
            details = f"{self.message}\n\n{details}".strip()
        head = f"{self.kind}: {message}"
        if self.advice and self.advice not in message:
            head = f"{head.rstrip()}{'' if head.rstrip().endswith(_ENDS_A_SENTENCE) else '.'} {self.advice}"
        return f"{head}\n\n{details}".rstrip() + "\n" if details else head + "\n"


class ClientError(TrainingError):
    """The job's input is wrong: config files, hyperparameters, submit directory."""

    kind = "ClientError"
    advice = ""


class UserError(TrainingError):
    """The user's code failed."""

    kind = "UserError"
    advice = ""


class ToolkitError(TrainingError):
    kind = "ToolkitError"


class PlatformError(TrainingError):
    """The infrastructure around the container failed (network, DNS, S3)."""

    kind = "PlatformError"
    advice = "This is usually transient: run the job again; if it persists, check the network and permissions."


# --------------------------------------------------------------------------
# Error records: one schema, one writer, one reader
#
# A record is one JSON object:
#   type, message, traceback  the exception (``type`` None when the process ended without one)
#   user_function, kind       the user function it came from; a TrainingError's kind
#   pid, timestamp            who wrote it, and when (seconds since the epoch)
# and, where the process that ran a program records how it ended (an MPI rank):
#   host, rank, exit_code     where it ran; its exit code (-N: signal N)
#   failed                    whether it failed (a stop is not a failure)
#   exception                 the ``Type: message`` line of the last traceback in its stderr
#   tail                      its last stderr lines
# supervision/guard.py writes the same fields without importing the package.

RECORD_FIELDS = ("type", "message", "traceback", "user_function", "kind", "pid", "timestamp")
PROCESS_FIELDS = ("host", "rank", "exit_code", "failed", "exception", "tail")


def _record(type_, message: str, traceback_text: str = "", user_function=None, kind=None, **process) -> dict:
    unknown = set(process) - set(PROCESS_FIELDS)
    if unknown:
        raise TypeError(f"not fields of an error record: {sorted(unknown)}")
    return {"type": type_, "message": message, "traceback": traceback_text, "user_function": user_function,
            "kind": kind, "pid": os.getpid(), "timestamp": time.time(), **process}


def error_record(exc: BaseException, function: str | None = None) -> dict:
    """The record of one exception."""
    import traceback  # noqa: PLC0415 - only when something failed

    return _record(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)),
                   function or getattr(exc, "sagemaker_user_function", None),
                   getattr(exc, "kind", None) if isinstance(exc, TrainingError) else None)


def process_record(message: str, *, host: str, rank, exit_code: int, failed: bool, exception: str | None,
                   tail: list) -> dict:
    """The record of a program that ended, by the process that ran it (an MPI rank)."""
    type_ = exception.split(":", 1)[0].strip() if exception else None
    return _record(type_, message, host=host, rank=rank, exit_code=exit_code, failed=failed, exception=exception,
                   tail=tail)


def write_error_record(record: dict, path: str, first_wins: bool = True) -> None:
    """Write ``record`` to ``path`` whole (a temporary file renamed into place). With ``first_wins``
    an existing record stays: a child that already reported the root cause is not overwritten by
    the exception that unwinds after it."""
    if first_wins and os.path.exists(path):
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# A record file is read up to this many bytes; a longer one is no record (the child's stderr says why).
MAX_RECORD_BYTES = 4 << 20
_SCALARS = (str, int, float, bool, type(None))


def _is_field(value) -> bool:
    """A record's value: a JSON scalar, or a list of strings (``tail``)."""
    return isinstance(value, _SCALARS) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def error_record_from_json(text: str) -> dict | None:
    """A record from its JSON text; None when the text is not a JSON object of the schema's shape
    (scalars, ``tail`` a list of strings), nested too deeply to decode included: what a child wrote
    never raises in the process that reads it."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not all(_is_field(v) for v in data.values()):
        return None
    return data


def read_error_record(path: str | None) -> dict | None:
    """The record in ``path``; None when there is none (or not a record, or over :data:`MAX_RECORD_BYTES`)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, ValueError):
        return None
    return error_record_from_json(text) if len(data) <= MAX_RECORD_BYTES else None


def write_error_file(exc: BaseException, path: str | None = None, function: str | None = None) -> None:
    """Write the record of ``exc`` to ``path`` (default: $SAGEMAKER_ERROR_FILE); the first record wins."""
    path = path or os.environ.get(ERROR_FILE_ENV)
    if path:
        write_error_record(error_record(exc, function), path)


def mark_done() -> None:
    """Tell the supervisor (``$SAGEMAKER_DONE_FILE``) that this child's work is finished: a stop
    that comes now only cuts its ending short, and the job has still succeeded."""
    path = os.environ.get(DONE_FILE_ENV)
    if path:
        try:
            open(path, "w").close()  # noqa: SIM115
        except OSError:
            pass


def read_error_file(path: str | None) -> dict | None:
    """A child's record of its exception (:func:`read_error_record`, when it names one)."""
    data = read_error_record(path)
    return data if data is not None and data.get("type") else None


def record(fn):
    """Decorate a child's entry function so any exception is recorded first.

    Like torch.distributed.elastic's ``@record``: the exception is written to
    ``$SAGEMAKER_ERROR_FILE`` and then re-raised, so the child still exits
    non-zero with its traceback on stderr. Users may decorate their own
    ``main`` with it to get the exception type and message into the failure
    reason of a script-mode job.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                write_error_file(exc)
            raise
        except BaseException as exc:
            write_error_file(exc)
            raise

    return wrapper


class user_code:
    """Context manager marking a call into user code.

    An exception raised inside is tagged with the user function's name, so the
    failure reason reads ``train_input_fn raised KeyError: 'training'``.
    """

    def __init__(self, function: str):
        self.function = function

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            if getattr(exc, "sagemaker_user_function", None) is None:
                try:
                    exc.sagemaker_user_function = self.function
                except (AttributeError, TypeError):
                    pass
        return False


# --------------------------------------------------------------------------
# Redaction
#
# What is secret: the value of every environment variable and every
# hyperparameter whose *name* says so (:func:`is_secret_name`), and the
# password of any URL (``postgres://user:PASS@host``, as in DATABASE_URL or
# AWS_ENDPOINT_URL), whatever its name. User code still receives the real
# values; these rules decide what the toolkit prints and writes (logs,
# forwarded output, ``output/failure``, a failure reason, serve's error
# messages and DescribeTrainingJob).
#
# A name is cut into its word parts (``GITHUB_PAT`` -> github, pat;
# ``dbPassword`` -> db, password). It is secret when
# * a part holds ``secret``, ``passw`` (password, passwd), ``passphrase`` or ``credential``;
# * a part is one of these words: pass, pwd, pat, key(s), token, private, creds, apikey, privatekey;
# * its last part ends with ``token`` or ``apikey`` / ``privatekey`` (``hftoken``).
# Not secret: ``PATH``, ``KEYBOARD``, ``tokenizer``, ``max_tokens`` (no such part); a key's id
# (``AWS_ACCESS_KEY_ID``, ``kms_key_id``: ``key`` followed by ``id``); the shell's ``PWD`` and
# ``OLDPWD`` (the working directory, in every environment).

_NAME_PARTS = lazy_pattern(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_SECRET_INSIDE = ("secret", "passw", "passphrase", "credential")
_SECRET_WORDS = {"pass", "pwd", "pat", "key", "keys", "token", "private", "creds", "apikey", "privatekey"}
_SECRET_ENDINGS = ("token", "apikey", "privatekey")
_NOT_SECRET_NAMES = {"PWD", "OLDPWD"}
_NOT_SECRET_LAST = {"error", "exception", "warning"}  # an exception's name, as in "KeyError: 'x'"
# name = value, name: "value", --name value, ['--name', 'value'], "--name","value": the name is
# checked with is_secret_name
_SECRET_PATTERN = lazy_pattern(
    r"(?<![\w.-])((--)?([\w.-]+)(?(2)(?:[\"']?,\s*[\"']?|[\"']?\s+[\"']?|[\"']?[ \t]*=[ \t]*[\"']?)|"
    r"[\"']?[ \t]*[:=][ \t]*[\"']?))([^\s\"',;&]+)"
)
_URL_PASSWORD = lazy_pattern(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)(@)")
_HINTS = ("secret", "pass", "pwd", "pat", "token", "key", "cred", "private")
_NOT_SECRET = ("true", "false", "none", "null", "yes", "no")
_MIN_VALUE = 6  # shorter values are redacted only where their name stands beside them
REDACTED = "****"

_known_values: set[str] = set()  # secret hyperparameters of this job, in every form the toolkit prints


def is_secret_name(name: str) -> bool:
    """Whether a variable or hyperparameter named ``name`` holds a secret (the rule above)."""
    name = str(name)
    if name in _NOT_SECRET_NAMES:
        return False
    parts = [part.lower() for part in _NAME_PARTS().findall(name)]
    if parts and parts[-1] in _NOT_SECRET_LAST:  # KeyError: 'label', TokenizerWarning: ...
        return False
    for index, part in enumerate(parts):
        if any(word in part for word in _SECRET_INSIDE):
            return True
        if part in _SECRET_WORDS and not (part.startswith("key") and parts[index + 1:index + 2] in (["id"], ["ids"])):
            return True
    return bool(parts) and parts[-1].endswith(_SECRET_ENDINGS)


def without_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced."""
    if "://" not in text or "@" not in text:
        return text
    return _URL_PASSWORD().sub(lambda m: m.group(1) + REDACTED + m.group(3), text)


def shown_value(name, value: str) -> str:
    """How a message may quote ``value``, the value of ``name`` (a hyperparameter, an Environment
    entry, a field path such as ``hyperParameters.db_password.value``): not at all when any part of
    the name is secret-named, else without URL passwords."""
    if any(is_secret_name(piece) for piece in str(name).split(".")):
        return REDACTED
    return without_url_passwords(str(value))


def _worth_matching(value: str) -> bool:
    """Whether replacing every occurrence of ``value`` is safe: not short, a number or a boolean word."""
    text = value.strip()
    if len(text) < _MIN_VALUE or text.lower() in _NOT_SECRET:
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False


def remember_secret_hyperparameters(hyperparameters: dict, render=str) -> None:
    """Redact, from now on, the values of this job's secret-named hyperparameters
    (``render`` gives the other textual forms a value is printed in)."""
    for name, value in hyperparameters.items():
        if not is_secret_name(name) or value is None:
            continue
        for text in {value if isinstance(value, str) else str(value), render(value)}:
            if _worth_matching(text):
                _known_values.add(text)


class Redactor:
    """Removes secrets from text.

    Three layers: every value of a secret-named variable in the environment
    given, a URL's password and every secret hyperparameter remembered
    (exact match, wherever it appears); then anything that looks like
    ``secret_name = VALUE``, ``"SessionToken": "VALUE"`` or ``--db_password VALUE``.
    """

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        values = set()
        for name, value in environ.items():
            if is_secret_name(name) and _worth_matching(value):
                values.add(value)
            if "://" in value and "@" in value:
                values.update(m.group(2) for m in _URL_PASSWORD().finditer(value) if _worth_matching(m.group(2)))
        self.values = values

    def __call__(self, text: str) -> str:
        for value in sorted(self.values | _known_values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        text = without_url_passwords(text)
        lowered = text.lower()
        if any(hint in lowered for hint in _HINTS):
            text = _SECRET_PATTERN().sub(_redact_beside_name, text)
        return text


def _redact_beside_name(match) -> str:
    return match.group(1) + REDACTED if is_secret_name(match.group(3)) else match.group(0)


def redact(text: str) -> str:
    return Redactor()(text)
