"""MXNet's RecordIO framing (dmlc-core's ``RecordIOWriter``), written and read in bounded memory.

The platform's ``RecordWrapperType: RecordIO`` delivers each object of a
Pipe-mode channel as one RecordIO record; ``sagemaker_tensorflow``'s
``PipeModeDataset(record_format='RecordIO')`` and ``mxnet.recordio`` read
them back. The format, as dmlc-core writes it:

* every part starts with two little-endian uint32 words: the magic
  ``0xced7230a``, then ``cflag << 29 | length`` (length < 2**29);
* a record whose data holds the magic word at an offset that is a multiple
  of 4 is cut there: the magic word is left out and the record becomes parts
  with cflag 1 (first), 2 (middle), 3 (last); a record in one part has
  cflag 0; a reader puts the magic word back between parts;
* the record ends with zero bytes up to a multiple of 4.

:func:`frame` writes one record whose content it can read twice (a first
pass finds where the parts end, a second copies them), so an object of any
size is framed holding one block at a time; :func:`read_record` reads one
record back from a stream.
"""

from __future__ import annotations

import struct

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
MAX_LENGTH = (1 << 29) - 1  # the length field's 29 bits: the largest record dmlc-core writes
BLOCK = 1 << 20  # bytes scanned at a time (a multiple of 4)
_HEADER = struct.Struct("<II")
WHOLE, FIRST, MIDDLE, LAST = 0, 1, 2, 3


class RecordIOError(ValueError):
    """Bytes that are not RecordIO framing."""


def header(cflag: int, length: int) -> bytes:
    return _HEADER.pack(MAGIC, cflag << 29 | length)


def _blocks(chunks, size: int):
    """``chunks`` (an iterable of bytes) re-cut into ``size``-byte blocks (the last may be shorter);
    a chunk that is already a block goes through uncopied."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        start = 0
        while len(chunk) - start >= size:
            yield chunk[start:start + size]  # the chunk itself when it is exactly one block
            start += size
        pending = chunk[start:]
    if pending:
        yield pending


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable


def _part_ends(blocks):
    """(length, cut) of each part of a record whose content comes in
    ``blocks`` (each a multiple of 4 bytes long but the last): ``cut`` is
    true when the part ends at an aligned magic word (left out of the parts)."""
    start = offset = 0
    for block in blocks:
        pos = block.find(MAGIC_BYTES)
        while pos != -1:
            if pos % 4 == 0:  # blocks start aligned, so an aligned word lies whole inside one
                yield offset + pos - start, True
                start = offset + pos + 4
            pos = block.find(MAGIC_BYTES, pos + 1)
        offset += len(block)
    yield offset - start, False


_CHANGED = "the object's second read differs from its first (where its parts end): it changed while being read"


class _Exact:
    """Exactly ``n`` bytes at a time from an iterable of chunks."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def take(self, n: int):
        """Yield ``n`` bytes in pieces; content that ends first is an error."""
        while n:
            if not self._buffer:
                self._buffer = next(self._chunks, b"")
                if not self._buffer:
                    raise RecordIOError("the object ended before its listed size: it changed while being read")
            piece, self._buffer = self._buffer[:n], self._buffer[n:]
            n -= len(piece)
            yield piece

    def at_end(self) -> bool:
        """Whether nothing is left (the content is no longer than what was taken)."""
        while not self._buffer:
            self._buffer = next(self._chunks, None)
            if self._buffer is None:
                self._buffer = b""
                return True
        return False


def frame(open_chunks, block: int = BLOCK):
    """The pieces (bytes) of one RecordIO record holding the content that
    ``open_chunks()`` yields in chunks. Content of at most ``block`` bytes is
    read once; longer content is read twice (``open_chunks`` is called a
    second time: one pass finds where the parts end, the other copies them),
    so memory holds a block and a chunk whatever the size."""
    if block <= 0 or block % 4:
        raise ValueError("block must be a positive multiple of 4")
    blocks = _blocks(open_chunks(), block)
    first = next(blocks, b"")
    second = next(blocks, None)
    if second is None:  # all of it is in memory
        scan, copy = (first,), None
    else:
        scan, copy = _chain((first, second), blocks), _Exact(open_chunks())
    written = index = 0
    for length, cut in _part_ends(scan):
        if length > MAX_LENGTH:
            raise RecordIOError(f"a record of {length} bytes or more is over RecordIO's limit of "
                                f"{MAX_LENGTH} bytes (its length field has 29 bits)")
        cflag = (FIRST if index == 0 else MIDDLE) if cut else (WHOLE if index == 0 else LAST)
        yield header(cflag, length)
        if copy is None:
            yield first[written:written + length]
        else:
            yield from copy.take(length)
            if cut and b"".join(copy.take(4)) != MAGIC_BYTES:  # the magic word itself is not written
                raise RecordIOError(_CHANGED)
        written += length + (4 if cut else 0)
        index += 1
    if copy is not None and not copy.at_end():
        raise RecordIOError(_CHANGED)
    if written % 4:
        yield bytes(4 - written % 4)


def read_exact(stream, n: int) -> bytes:
    """``n`` bytes of ``stream`` (fewer only at its end)."""
    data = stream.read(n)
    if len(data) == n or not data:
        return data
    pieces = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


def read_record(stream) -> bytes | None:
    """The next record of ``stream`` (a binary file object), its parts joined
    with the magic word put back as dmlc-core's reader does; None at the end."""
    pieces = []
    while True:
        head = read_exact(stream, _HEADER.size)
        if not head:
            if pieces:
                raise RecordIOError("the stream ended inside a record of several parts")
            return None
        if len(head) < _HEADER.size:
            raise RecordIOError(f"the stream ended inside a record header ({len(head)} of 8 bytes)")
        magic, word = _HEADER.unpack(head)
        if magic != MAGIC:
            raise RecordIOError(f"Invalid magic number: {magic} (RecordIO records start with {MAGIC})")
        cflag, length = word >> 29, word & MAX_LENGTH
        padded = (length + 3) & ~3
        body = read_exact(stream, padded)
        if len(body) < padded:
            raise RecordIOError(f"the stream ended inside a record ({len(body)} of {padded} bytes)")
        pieces.append(body[:length])
        if cflag in (WHOLE, LAST):
            return MAGIC_BYTES.join(pieces)
        if cflag not in (FIRST, MIDDLE):
            raise RecordIOError(f"Invalid RecordIO part flag {cflag}")
