"""serve/scheduler.py: a job process's output read through the one bounded reader."""

from __future__ import annotations

import subprocess

from helpers import LONG_LINE_MIB, long_line_writer, peak_python_memory
from sagemaker_training.serve import scheduler
from sagemaker_training.supervision import streams


def _read(argv, width=None):
    sizes = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    kwargs = {} if width is None else {"width": width}
    _, peak = peak_python_memory(lambda: scheduler._read_lines(proc.stdout, lambda line: sizes.append(len(line)),
                                                               **kwargs))
    assert proc.wait() == 0
    return sizes, peak


def test_a_log_line_without_a_newline_comes_in_pieces_in_bounded_memory():
    sizes, peak = _read(long_line_writer("stdout", then="\nepoch 1: loss 0.25\n"))
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB held while reading"
    assert sum(sizes[:-1]) == LONG_LINE_MIB * 2**20
    assert max(sizes) <= streams.PIECE_CHARS and len(sizes) >= LONG_LINE_MIB * 2**20 // streams.PIECE_CHARS
    assert sizes[-1] == len("epoch 1: loss 0.25")


def test_the_state_channel_takes_a_whole_state_line_and_no_more():
    """A state report (one JSON line) up to EVENT_LINE_CHARS comes whole; what is longer comes in pieces."""
    sizes, peak = _read(long_line_writer("stdout", mib=3, then="\n"), scheduler.EVENT_LINE_CHARS)
    assert sizes == [3 * 2**20]
    sizes, peak = _read(long_line_writer("stdout", mib=9, then="\n"), scheduler.EVENT_LINE_CHARS)
    assert sum(sizes) == 9 * 2**20 and max(sizes) <= scheduler.EVENT_LINE_CHARS and len(sizes) == 3
    assert peak < 4 * scheduler.EVENT_LINE_CHARS
