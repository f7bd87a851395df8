"""MetricDefinitions: checked when a job is created, matched away from the server.

A user's regex can take exponential time on a line (``(a+)+$`` against
``"a" * 28 + "!"``: 16 s, doubling with each character), and Python's ``re``
holds the GIL while it runs. So the server itself only compiles the regexes
(:func:`check`: one Python cannot read is a ValidationException at
CreateTrainingJob). The matching runs in a process of the job's own
(``python -m sagemaker_training.serve.metrics DEFINITIONS_JSON``, started by
the job's worker process, under the exec guard so that it dies with it): it
reads ``TIME<TAB>LINE`` lines on stdin and writes ``[name, value, time]``
JSON lines on stdout. The worker hands it lines through a bounded queue
(:data:`QUEUE_LINES`; a line that finds it full is not matched, and the job's
log never waits for it), so a slow regex delays only its own job's metrics.

Values are taken as SageMaker takes them: the first group of the match (the
whole match for a regex without groups), as a float; NaN and infinities are
skipped.
"""

from __future__ import annotations

import json
import math
import queue
import re
import subprocess
import sys
import threading
import time

QUEUE_LINES = 10000
LINE_CHARS = 64 * 1024  # a longer line is matched on its first 64 Ki characters
_HOST_PREFIX = re.compile(r"^\[algo-\d+\] ?")


def definitions(request: dict) -> list[dict]:
    return (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []


def check(request: dict) -> str | None:
    """What is wrong with the request's MetricDefinitions (a regex Python cannot read), or None."""
    for index, definition in enumerate(definitions(request), 1):
        try:
            re.compile(definition["Regex"])
        except (re.error, OverflowError, RecursionError) as exc:
            return (f"Value {definition['Regex']!r} at 'algorithmSpecification.metricDefinitions.{index}.member."
                    f"regex' failed to satisfy constraint: Member must be a regular expression Python can read "
                    f"({exc})")
    return None


def value_of(pattern: re.Pattern, line: str) -> float | None:
    found = pattern.search(line)
    if not found:
        return None
    try:
        value = float(found.group(1) if pattern.groups else found.group(0))
    except (ValueError, IndexError, TypeError):
        return None
    return value if math.isfinite(value) else None


class Matcher:
    """The worker's side: a matching process, fed from a bounded queue."""

    def __init__(self, request: dict, report):
        self.report = report  # called with a list of [name, value, time]
        self.queue: queue.Queue = queue.Queue(QUEUE_LINES)
        from ..supervision import guard  # noqa: PLC0415

        argv = [sys.executable, "-m", "sagemaker_training.serve.metrics",
                json.dumps([[d["Name"], d["Regex"]] for d in definitions(request)])]
        self.process = subprocess.Popen(guard.argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace")
        self.threads = [threading.Thread(target=self._feed, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for thread in self.threads:
            thread.start()

    def line(self, text: str) -> None:
        try:
            self.queue.put_nowait(f"{time.time():.3f}\t{_HOST_PREFIX.sub('', text, count=1)[:LINE_CHARS]}")
        except queue.Full:
            pass  # the matcher is behind: this line's metrics are lost, the log goes on

    def _feed(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    break
                self.process.stdin.write(item.replace("\n", " ") + "\n")
                self.process.stdin.flush()
        except (OSError, ValueError):
            pass
        finally:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.report([json.loads(line)])
            except ValueError:
                pass

    def close(self, timeout: float = 5.0) -> None:
        """Match what is queued (for at most ``timeout`` seconds), then end the process."""
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Tee:
    """A text stream that writes through to ``stream`` and gives each whole line to ``each``
    (at most LINE_CHARS characters of it are kept)."""

    def __init__(self, stream, each):
        self.stream, self.each = stream, each
        self.partial: list[str] = []
        self.kept = 0
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        self.stream.write(text)
        with self.lock:
            *complete, rest = text.split("\n")
            for piece in complete:
                self._keep(piece)
                self.each("".join(self.partial))
                self.partial, self.kept = [], 0
            self._keep(rest)
        return len(text)

    def _keep(self, piece: str) -> None:
        room = LINE_CHARS - self.kept
        if room > 0 and piece:
            self.partial.append(piece[:room])
            self.kept += min(room, len(piece))

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str]) -> int:
    """The matching process: definitions as JSON in argv[0]; lines on stdin, values on stdout."""
    patterns = [(name, re.compile(regex)) for name, regex in json.loads(argv[0])]
    out = sys.stdout
    for line in sys.stdin:
        when, _, text = line.rstrip("\n").partition("\t")
        try:
            when = float(when)
        except ValueError:
            continue
        for name, pattern in patterns:
            value = value_of(pattern, text)
            if value is not None:
                out.write(json.dumps([name, value, when]) + "\n")
                out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
