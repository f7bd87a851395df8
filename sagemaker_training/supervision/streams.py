"""A child's output, read line by line in bounded memory: the one reader of every child's output.

:func:`pieces` (and :func:`lines`) read a pipe to its end as lines; the
supervisor's children, pip, mpirun, an MPI rank's program and serve's job
processes are all read through it. :func:`pump` copies one pipe of a child
to one of our streams:

* bytes are read in chunks and decoded incrementally (invalid UTF-8 becomes
  U+FFFD, a character split across two reads stays whole);
* ``\\n``, ``\\r`` and ``\\r\\n`` each end a line, so the progress bars of
  tqdm and Keras (``\\r`` only) show as they move instead of when a newline
  finally comes; a ``\\r`` that ends nothing (an empty redraw) is dropped;
* each line is redacted and written with the child's label in front;
* a line longer than :data:`PIECE_CHARS` is forwarded in pieces, cut at a
  space where there is one (so that a ``name=value`` secret is redacted
  whole), and is written out intact: memory holds one piece, never the
  line, whatever the child writes (100 MB with no newline included);
* the last :data:`TAIL_LINES` lines of stderr are kept for the failure
  reason in a :class:`Tail`, each cut to :data:`TAIL_LINE_CHARS`
  characters (the rest is counted, not kept).
"""

from __future__ import annotations

import codecs
import collections
import os
import threading

PIECE_CHARS = 64 * 1024
READ_BYTES = 64 * 1024
TAIL_LINES = 40
TAIL_LINE_CHARS = 500  # 40 such lines stay well inside output/failure's 32 KiB


class Tail:
    """The last ``lines`` lines of a stream, each at most ``width`` characters."""

    def __init__(self, lines: int = TAIL_LINES, width: int = TAIL_LINE_CHARS):
        self._lines: collections.deque = collections.deque(maxlen=lines)
        self._width = width
        self._current: list[str] = []
        self._kept = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def add(self, piece: str) -> None:
        """Part of the current line."""
        with self._lock:
            room = self._width - self._kept
            if room > 0:
                self._current.append(piece[:room])
                self._kept += min(room, len(piece))
            self._dropped += max(0, len(piece) - max(room, 0))

    def take(self, text: str, end_of_line: bool) -> None:
        """One piece from :func:`pieces`."""
        self.add(text)
        if end_of_line:
            self.end_line()

    def end_line(self) -> None:
        with self._lock:
            line = "".join(self._current)
            if self._dropped:
                line += f" [... {self._dropped} more characters]"
            self._lines.append(line)
            self._current, self._kept, self._dropped = [], 0, 0

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)


class _Splitter:
    """Splits decoded text into lines; holds at most one piece (``width`` characters) of a line.

    ``feed`` and ``close`` return the ``(text, end_of_line)`` pieces that are complete."""

    def __init__(self, width: int = PIECE_CHARS):
        self.width = width
        self.pending = ""
        self.in_line = False  # part of the current line is handed on already
        self.after_cr = False  # the last character seen was a \r (a \n right after it ends nothing)

    def feed(self, text: str) -> list:
        out = []
        start = 0
        # str.find runs at memchr speed (a regex scans 50 times slower); each position is found once
        next_lf, next_cr = text.find("\n"), text.find("\r")
        while next_lf >= 0 or next_cr >= 0:
            if next_cr < 0 or 0 <= next_lf < next_cr:
                at, end, next_lf = next_lf, "\n", text.find("\n", next_lf + 1)
            else:
                at, end, next_cr = next_cr, "\r", text.find("\r", next_cr + 1)
            if end == "\n" and self.after_cr and at == start and not self.pending:
                self.after_cr = False  # the \n of a \r\n
                start = at + 1
                continue
            self.after_cr = end == "\r"
            segment, self.pending, start = self.pending + text[start:at], "", at + 1
            if end == "\r" and not segment and not self.in_line:
                continue  # a redraw that shows nothing
            self.in_line = False
            out.append((segment, True))
        rest = text[start:]
        if rest:
            self.after_cr = False
            self.pending += rest
        width = self.width
        while len(self.pending) > width:
            cut = self.pending.rfind(" ", width // 2, width)
            cut = width if cut < 0 else cut + 1
            piece, self.pending = self.pending[:cut], self.pending[cut:]
            self.in_line = True
            out.append((piece, False))
        return out

    def close(self) -> list:
        if self.pending or self.in_line:
            piece, self.pending, self.in_line = self.pending, "", False
            return [(piece, True)]
        return []


def pieces(pipe, width: int = PIECE_CHARS):
    """``(text, end_of_line)`` for everything ``pipe`` (a binary pipe or file) gives until end of
    file, then the pipe is closed: every line as one piece, or a line longer than ``width``
    characters as several, the last one ending it. The one reader of every child's output."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    splitter = _Splitter(width)
    fd = pipe.fileno()
    try:
        while True:
            try:
                data = os.read(fd, READ_BYTES)
            except OSError:
                break
            yield from splitter.feed(decoder.decode(data, final=not data))
            if not data:
                break
        yield from splitter.close()
    finally:
        pipe.close()


def lines(pipe, width: int = PIECE_CHARS):
    """Each line of ``pipe`` as one string, without its end; a line longer than ``width`` comes
    as several strings (pieces), so memory stays bounded whatever the child writes."""
    for text, _ in pieces(pipe, width):
        yield text


class _Forwarder:
    """Writes pieces of lines to our stream: redacted, the label in front of each line."""

    def __init__(self, sink, prefix: str, redactor, tail: Tail | None):
        self.sink = sink
        self.prefix = prefix
        self.redactor = redactor
        self.tail = tail
        self.in_line = False  # part of the current line is written already

    def emit(self, text: str, end_of_line: bool) -> None:
        text = self.redactor(text) if text else text
        head = "" if self.in_line else self.prefix
        self.in_line = not end_of_line
        if self.tail is not None:
            self.tail.take(text, end_of_line)
        try:
            self.sink.write(f"{head}{text}\n" if end_of_line else f"{head}{text}")
            self.sink.flush()
        except (OSError, ValueError):  # our own stream is gone: keep draining the child
            pass


def pump(pipe, sink, prefix: str, redactor, tail: Tail | None = None) -> None:
    """Copy ``pipe`` (a child's stdout or stderr) to ``sink`` until end of file."""
    forwarder = _Forwarder(sink, prefix, redactor, tail)
    for text, end_of_line in pieces(pipe):
        forwarder.emit(text, end_of_line)


def start(pipe, sink, prefix: str, redactor, tail: Tail | None = None) -> threading.Thread:
    """:func:`pump` in a daemon thread."""
    thread = threading.Thread(target=pump, args=(pipe, sink, prefix, redactor, tail), daemon=True)
    thread.start()
    return thread
