"""``PipeModeDataset``: a SageMaker Pipe-mode channel as a ``tf.data`` dataset of string records.

Written for this toolkit on ``tf.data`` alone (no custom op): the records
come from a Python generator (``Dataset.from_generator``) that reads the
channel's FIFO. Every iteration of the dataset (a ``for`` loop, a round of
``repeat()``, a new ``input_fn`` call) takes the next epoch's FIFO
``<pipe_dir>/<channel>_<epoch>``; the epoch counter is kept in
``<state_dir>/.<channel>-pipe_mode-state`` (under ``flock()``), so a new
dataset object, or a new process, reads the next FIFO too, as the original
module did.

Record formats: ``RecordIO`` (MXNet's framing, each object of a channel
with ``RecordWrapperType: RecordIO`` is one record; parts are joined as
MXNet joins them), ``TFRecord`` (lengths and data checked by their masked
CRC32C) and ``TextLine`` (one record per ``\\n``-ended line, without it).

The dataset is a ``tf.compat.v1.data.Dataset`` (a ``tf.data.Dataset`` too),
so TensorFlow 1.x code may call ``make_one_shot_iterator()`` on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import sys
import time

import tensorflow as tf
from tensorflow.python.data.ops import dataset_ops

from sagemaker_training.core import recordio
from sagemaker_training.environment import base_dir_from

RECORD_FORMATS = ("RecordIO", "TFRecord", "TextLine")
FILE_WAIT_SECONDS = 120  # how long an iterator waits for its FIFO to appear (the original's wait)
READ_SIZE = 1 << 16
_TFRECORD_HEADER = struct.Struct("<QI")


class PipeModeDatasetException(Exception):
    """An error using a PipeModeDataset."""


class PipeModeDataset(dataset_ops.DatasetV1Adapter):
    """A SageMaker Pipe-mode channel's records, one epoch FIFO per iteration."""

    def __init__(self, channel, record_format="RecordIO", state_dir=None, pipe_dir=None, config_dir=None,
                 benchmark=False, benchmark_records_interval=0, max_corrupted_records_to_skip=0):
        """``channel``: the channel's name; ``record_format``: RecordIO, TFRecord or TextLine;
        ``state_dir`` (epoch counters), ``pipe_dir`` (the FIFOs) and ``config_dir``
        (inputdataconfig.json) default to ``pipe_state``, ``input/data`` and
        ``input/config`` under ``$SAGEMAKER_BASE_DIR`` (``/opt/ml``); ``benchmark``
        prints each epoch's reading time and throughput when it ends,
        ``benchmark_records_interval`` every N records; ``max_corrupted_records_to_skip``
        (TFRecord only): how many records in a row may fail their CRC check and be skipped."""
        base = base_dir_from()
        self.channel = channel
        self.record_format = record_format
        self.state_dir = state_dir or os.path.join(base, "pipe_state")
        self.pipe_dir = pipe_dir or os.path.join(base, "input", "data")
        self.config_dir = config_dir or os.path.join(base, "input", "config")
        self.benchmark = benchmark
        self.benchmark_records_interval = int(benchmark_records_interval)
        self.max_corrupted_records_to_skip = int(max_corrupted_records_to_skip)
        if record_format not in RECORD_FORMATS:
            raise PipeModeDatasetException(f"Invalid record format: {record_format} "
                                           f"(one of {', '.join(RECORD_FORMATS)})")
        if self.max_corrupted_records_to_skip > 0 and record_format != "TFRecord":
            raise PipeModeDatasetException("max_corrupted_records_to_skip can only be set for record_format='TFRecord'")
        os.makedirs(self.state_dir, exist_ok=True)
        with open(os.path.join(self.config_dir, "inputdataconfig.json"), encoding="utf-8") as f:
            self.input_data_config = json.load(f)
        self._validate_input_data_config()
        source = tf.data.Dataset.from_generator(self._records, output_signature=tf.TensorSpec([], tf.string))
        super().__init__(source)

    def _validate_input_data_config(self):
        if self.channel not in self.input_data_config:
            raise PipeModeDatasetException(f"Channel {self.channel} not found in Training Job InputDataConfig")
        if str(self.input_data_config[self.channel].get("TrainingInputMode", "")).lower() != "pipe":
            raise PipeModeDatasetException(f"Channel {self.channel} is not a PipeMode channel")

    # -- one iteration: one epoch ---------------------------------------------------
    def _take_epoch(self) -> int:
        """This iteration's epoch: the counter's value, which is then advanced (under a lock)."""
        path = os.path.join(self.state_dir, f".{self.channel}-pipe_mode-state")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.read(fd, 64).decode().strip()
            epoch = int(text) if text else 0
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(epoch + 1).encode())
        finally:
            os.close(fd)  # and the lock with it
        return epoch

    def _wait_for(self, path: str, epoch: int) -> None:
        deadline = time.monotonic() + FILE_WAIT_SECONDS
        pause = 0.01
        while not os.path.exists(path):
            if time.monotonic() >= deadline:
                raise PipeModeDatasetException(
                    f"File does not exist: {path} (epoch {epoch} of Pipe-mode channel {self.channel}; waited "
                    f"{FILE_WAIT_SECONDS}s). Each iteration of a PipeModeDataset reads the next epoch's FIFO: "
                    f"remove {os.path.join(self.state_dir, f'.{self.channel}-pipe_mode-state')} to start again "
                    "from epoch 0 in a new job.")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _records(self):
        epoch = self._take_epoch()
        path = os.path.join(self.pipe_dir, f"{self.channel}_{epoch}")
        self._wait_for(path, epoch)
        read = {"RecordIO": _recordio_records, "TFRecord": self._tfrecords, "TextLine": _lines}[self.record_format]
        count = size = 0
        started = time.monotonic()
        with open(path, "rb", buffering=READ_SIZE) as f:
            try:
                for record in read(f):
                    count += 1
                    size += len(record)
                    if self.benchmark_records_interval and count % self.benchmark_records_interval == 0:
                        print(f"PipeModeDataset {self.channel}_{epoch}: {count} records, {size} bytes", flush=True)
                    yield record
            finally:
                if self.benchmark:
                    seconds = time.monotonic() - started
                    print(f"PipeModeDataset {self.channel}_{epoch}: {count} records, {size} bytes read in "
                          f"{seconds * 1000:.0f} ms ({size / max(seconds, 1e-9) / 1e6:.1f} MB/s)", flush=True)

    def _tfrecords(self, f):
        bad = 0
        while True:
            head = recordio.read_exact(f, _TFRECORD_HEADER.size)
            if not head:
                return
            if len(head) < _TFRECORD_HEADER.size:
                raise PipeModeDatasetException("the FIFO ended inside a TFRecord header: the data is not TFRecords")
            length, masked = _TFRECORD_HEADER.unpack(head)
            if _masked_crc32c(head[:8]) != masked:
                raise PipeModeDatasetException("CRC check on header failed.")
            data = recordio.read_exact(f, length)
            footer = recordio.read_exact(f, 4)
            if len(data) < length or len(footer) < 4:
                raise PipeModeDatasetException("the FIFO ended inside a TFRecord")
            if _masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                bad += 1
                if bad > self.max_corrupted_records_to_skip:
                    raise PipeModeDatasetException("CRC check on data failed.")
                print(f"WARN: Skipping record (count: {bad}) because: CRC check on data failed.", file=sys.stderr)
                continue
            if bad:
                print(f"Data record parsed successfully, but previous {bad} recs failed CRC check", file=sys.stderr)
                bad = 0
            yield data


def _recordio_records(f):
    while True:
        try:
            record = recordio.read_record(f)
        except recordio.RecordIOError as exc:
            raise PipeModeDatasetException(f"{exc}: the channel's data is not RecordIO (give record_format="
                                           "'TFRecord' or 'TextLine', or RecordWrapperType RecordIO)") from None
        if record is None:
            return
        yield record


def _lines(f):
    for line in f:
        yield line[:-1] if line.endswith(b"\n") else line


def _masked_crc32c(data: bytes) -> int:
    import google_crc32c  # noqa: PLC0415 - only TFRecord channels need it

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
