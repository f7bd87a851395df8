"""core/recordio.py against MXNet's own RecordIO (mxnet 1.9.1's reader and writer), and the
streaming read of one object (storage's ``read_chunks``) it frames, from a real S3 endpoint."""

from __future__ import annotations

import io
import os

import pytest

from sagemaker_training.core import recordio
from sagemaker_training.errors import ClientError
from sagemaker_training.storage import transfer

mxrecordio = pytest.importorskip("mxnet.recordio")

M = recordio.MAGIC_BYTES
RECORDS = [b"", b"a", b"abcd", b"abcde", M, b"xyzw" + M + b"12", M + M, b"x" + M + b"yyy", os.urandom(5000),
           b"ab" * 10 + M + os.urandom(37) + M + b"q" * 40 + M, bytes(4096) + M + bytes(13)]


def _chunks(data: bytes, size: int = 7):
    return lambda: (data[i:i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("block", [4, 8, 16, recordio.BLOCK])  # small blocks: the two-pass path
def test_framing_is_mxnets_byte_for_byte_and_reads_back(tmp_path, block):
    ours = b"".join(piece for data in RECORDS for piece in recordio.frame(_chunks(data), block=block))
    path = str(tmp_path / "mx.rec")
    writer = mxrecordio.MXRecordIO(path, "w")
    for data in RECORDS:
        writer.write(data)
    writer.close()
    with open(path, "rb") as f:
        assert ours == f.read()
    (tmp_path / "ours.rec").write_bytes(ours)
    reader = mxrecordio.MXRecordIO(str(tmp_path / "ours.rec"), "r")
    assert [reader.read() for _ in RECORDS] == RECORDS and reader.read() is None
    stream = io.BytesIO(ours)
    assert [recordio.read_record(stream) for _ in RECORDS] == RECORDS and recordio.read_record(stream) is None


def test_a_long_object_is_read_twice_never_whole(tmp_path):
    data = os.urandom(40) + M + os.urandom(100)
    opened = []

    def open_chunks():
        opened.append(1)
        return (data[i:i + 16] for i in range(0, len(data), 16))

    pieces = list(recordio.frame(open_chunks, block=32))
    assert len(opened) == 2 and max(len(p) for p in pieces) <= 16
    assert recordio.read_record(io.BytesIO(b"".join(pieces))) == data


def test_content_shorter_than_its_first_pass_is_an_error():
    calls = []

    def open_chunks():
        calls.append(1)
        return iter([b"x" * 8, b"y" * 8] if len(calls) == 1 else [b"x" * 8])

    with pytest.raises(recordio.RecordIOError, match="changed while being read"):
        list(recordio.frame(open_chunks, block=8))


@pytest.mark.parametrize("second", [
    b"x" * 4 + b"abcd" + b"y" * 8,  # the magic word where the first pass cut is gone
    b"x" * 4 + M + b"y" * 8 + b"more",  # longer than the first pass
])
def test_content_that_changed_between_the_two_passes_is_an_error(second):
    """The second pass must be the content the first one cut into parts, or the record would be
    silently wrong: a magic word that moved, or content that grew, fails the framing."""
    first = b"x" * 4 + M + b"y" * 8
    calls = []

    def open_chunks():
        calls.append(1)
        data = first if len(calls) == 1 else second
        return iter([data[i:i + 8] for i in range(0, len(data), 8)])

    with pytest.raises(recordio.RecordIOError, match="changed while being read"):
        list(recordio.frame(open_chunks, block=8))


@pytest.mark.parametrize("data, message", [
    (b"\x00" * 8, "Invalid magic number"),
    (M + b"\x05\x00\x00\x00abc", "ended inside a record"),
    (M[:3], "inside a record header"),
    (M + (4 << 29 | 0).to_bytes(4, "little"), "part flag 4"),
])
def test_reading_bad_framing_says_what_is_wrong(data, message):
    with pytest.raises(recordio.RecordIOError, match=message):
        recordio.read_record(io.BytesIO(data))


def test_read_chunks_streams_an_s3_object_and_a_file(tmp_path, s3, s3_bucket):
    bucket = s3_bucket("chunks")
    data = os.urandom(3 << 20)
    s3.put_object(Bucket=bucket, Key="d/obj.bin", Body=data)
    (tmp_path / "obj.bin").write_bytes(data)
    for location in (f"s3://{bucket}/d", str(tmp_path / "obj.bin")):
        [entry] = transfer.list_files(location)
        chunks = list(transfer.read_chunks(entry, chunk_size=1 << 20))
        assert b"".join(chunks) == data and max(map(len, chunks)) <= 1 << 20
    s3.delete_object(Bucket=bucket, Key="d/obj.bin")
    with pytest.raises(ClientError, match=f"s3://{bucket}/d/obj.bin"):
        list(transfer.read_chunks(transfer.Entry(f"s3://{bucket}/d/obj.bin", "obj.bin", 1)))
