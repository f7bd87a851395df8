"""Request bodies read in bounded memory: ``Content-Length`` or chunked, checked before a byte is read.

The JSON APIs (SageMaker, CloudWatch Logs, STS) read a body whole, up to
:data:`MAX_JSON_BODY` bytes; a larger one is refused (413) before it is
read. S3 bodies are never held whole: :func:`pieces` yields them in pieces
of at most :data:`PIECE_BYTES`, for the proxy to send on as they come.

A malformed framing (``Content-Length: abc``, a negative length, both a
length and chunking, a chunk size that is not hex, a chunk that does not end
in CRLF) is a :class:`BadBody`, which the caller answers as a 400 in its
service's shape and then closes the connection: the stream's position is no
longer known, so nothing more on it can be read as a request.
"""

from __future__ import annotations

import re

# SageMaker's largest request is CreateTrainingJob: 100 hyperparameters of 256 + 2500 characters, 48
# environment entries of 512 characters, 50 tags, 20 channels: well under 1 MiB even escaped
MAX_JSON_BODY = 2 * 1024 * 1024
PIECE_BYTES = 64 * 1024
# after a 413, a body of up to this many bytes is read and dropped before the connection closes, so
# that a client still sending it reads the answer (closing with unread data resets the connection)
MAX_DRAIN = 64 * 1024 * 1024
_CHUNK_LINE_BYTES = 4096  # a chunk-size line with its extensions (aws-chunked signatures are ~90)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")


class BadBody(Exception):
    """The request's body cannot be read: ``status`` (400, 411, 413) and why."""

    def __init__(self, message: str, status: int = 400, unread: int = 0):
        super().__init__(message)
        self.message, self.status, self.unread = message, status, unread

    def drain(self, rfile) -> None:
        """Read and drop the body's bytes still to come (at most MAX_DRAIN), as the client sends them."""
        if 0 < self.unread <= MAX_DRAIN:
            try:
                for _ in pieces(rfile, "length", self.unread):
                    pass
            except (BadBody, OSError):
                pass


def framing(headers) -> tuple[str, int]:
    """``("length", n)``, ``("chunked", -1)`` or ``("none", 0)`` from the headers; BadBody when malformed."""
    encoding = (headers.get("Transfer-Encoding") or "").strip().lower()
    lengths = headers.get_all("Content-Length") or []
    if encoding:
        if encoding != "chunked":
            raise BadBody(f"Transfer-Encoding {encoding[:40]!r} is not supported (only chunked)", 501)
        if lengths:
            raise BadBody("a request may not have both Content-Length and Transfer-Encoding: chunked")
        return "chunked", -1
    if not lengths:
        return "none", 0
    if len(set(v.strip() for v in lengths)) > 1:
        raise BadBody("the request has several different Content-Length headers")
    text = lengths[0].strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise BadBody(f"Content-Length {text[:40]!r} is not a number of bytes")
    return "length", int(text)


def pieces(rfile, kind: str, length: int, limit: int | None = None):
    """The body in pieces of at most PIECE_BYTES; BadBody when it is malformed, cut short
    or (``limit``) longer than ``limit`` bytes."""
    if limit is not None and kind == "length" and length > limit:
        raise BadBody(f"the request body is {length} bytes; at most {limit} are accepted", 413, unread=length)
    if kind == "length":
        left = length
        while left:
            data = rfile.read(min(left, PIECE_BYTES))
            if not data:
                raise BadBody(f"the request body ended after {length - left} of its {length} bytes")
            left -= len(data)
            yield data
        return
    if kind != "chunked":
        return
    total = 0
    while True:
        line = rfile.readline(_CHUNK_LINE_BYTES + 1)
        if not line.endswith(b"\n"):
            raise BadBody("a chunk-size line is too long or the body ended" if line else "the chunked body ended early")
        size_text = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise BadBody(f"the chunk size {size_text[:40].decode('latin-1')!r} is not a hexadecimal number")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(100):  # trailers, then the empty line
                trailer = rfile.readline(_CHUNK_LINE_BYTES + 1)
                if trailer in (b"\r\n", b"\n"):
                    return
                if not trailer.endswith(b"\n"):
                    break
            raise BadBody("the chunked body's trailer does not end")
        total += size
        if limit is not None and total > limit:
            raise BadBody(f"the request body is more than {limit} bytes, the most accepted", 413)
        left = size
        while left:
            data = rfile.read(min(left, PIECE_BYTES))
            if not data:
                raise BadBody("the chunked body ended inside a chunk")
            left -= len(data)
            yield data
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BadBody("a chunk does not end with CRLF where its size says")


def read_all(rfile, headers, limit: int = MAX_JSON_BODY) -> bytes:
    """The whole body, at most ``limit`` bytes; BadBody otherwise."""
    kind, length = framing(headers)
    return b"".join(pieces(rfile, kind, length, limit))
