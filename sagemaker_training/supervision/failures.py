"""Why a child failed, in one line: its error record, its signal, or its stderr.

:class:`ProcessFailure` turns a finished child into the failure reason the
supervisor reports: the child's own error record (``SAGEMAKER_ERROR_FILE``),
a plain-text reason it left (a host's ``output/failure``), the signal that
killed it with a hint at the usual cause, or its exit code with the
``Type: message`` line of the last traceback in its stderr tail.

The headline (the first line of ``output/failure``, which the platform shows)
stays short: an exception's message gives its first line of substance, cut
at ``errors.HEADLINE_LIMIT`` characters (:func:`errors.headline_of`; the
toolkit's own error sentences at ``errors.SENTENCE_LIMIT``), and the whole
message follows below it when that left something out.
"""

from __future__ import annotations

import signal

from ..core.values import Value
from .signals import name as signal_name
from ..errors import headline_of, lazy_pattern, one_line, short_sentence


_SIGNAL_HINTS = {
    signal.SIGKILL: "usually the kernel's out-of-memory killer: use an instance with more memory or reduce "
    "the batch or model size",
    signal.SIGSEGV: "a segmentation fault in native code (a framework, a library extension or a GPU driver)",
    signal.SIGBUS: "a bus error in native code, often a full /dev/shm: increase the shared memory size",
    signal.SIGABRT: "the process aborted itself, usually a failed assertion in native code",
    signal.SIGTERM: "it was asked to stop",
    signal.SIGINT: "it was interrupted",
}


class ProcessFailure(Value):
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
            return f"on {self.name}: {headline_of(parts[1])}"
        if self.record:
            who = self.record.get("user_function") or self.name
            message = self._record_message()
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

    def _record_message(self) -> str:
        """The record's message in the headline: a TrainingError's finished sentence, or an exception's
        message (a traceback's worth, for TensorFlow's errors) cut short."""
        message = self.record.get("message") or ""
        return short_sentence(message) if self.record.get("kind") else headline_of(message)

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
        message = str((self.record or {}).get("message") or "").strip()
        if message and self._record_message() != one_line(message):  # the headline left some of it out
            details.extend([f"The whole message of {self.record.get('type')}:", message, ""])
        if self.stderr_tail:
            details.append(f"Last stderr lines of {self.name}:")
            details.extend(self.stderr_tail)
        return head + ("\n\n" + "\n".join(details) if details else "") + "\n"


_EXCEPTION_LINE = lazy_pattern(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Fault)\b[^:]*)(?::\s?(.*))?$")


def exception_from_stderr(lines) -> str | None:
    """The ``Type: message`` line of the last Python traceback in ``lines``."""
    seen_traceback = False
    found = None
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            seen_traceback, found = True, None
            continue
        if seen_traceback and not line.startswith((" ", "\t")):
            match = _EXCEPTION_LINE().match(line.strip())
            if match:
                found = line.strip()
    return headline_of(found) if found else None


