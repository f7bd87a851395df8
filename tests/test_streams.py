"""supervision/streams.py: a child's output forwarded line by line in bounded memory, the stderr tail."""

from __future__ import annotations

import os
import signal
import threading

from helpers import kill_quietly, read_failure, run_train, start_train
from supervision_helpers import Sink, job_with_script, peak_rss_of_train


def test_long_lines_and_invalid_utf8_stream_intact(tmp_path):
    base = job_with_script(tmp_path, """
        import sys
        out = sys.stdout.buffer
        out.write(b"start\\n")
        out.write(b"x" * 5_000_000 + b"\\n")
        out.write(b"bad bytes: \\xff\\xfe \\xc3\\x28 end\\n")
        out.flush()
        sys.stderr.buffer.write(b"err \\xff line\\n")
        out.write(b"no newline at the end")
    """)
    result = run_train(base, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "start"
    assert lines[1] == "x" * 5_000_000
    assert lines[2].startswith("bad bytes: \ufffd\ufffd ") and lines[2].endswith(" end")
    assert lines[3] == "no newline at the end"
    assert "err \ufffd line" in result.stderr


def test_stdout_and_stderr_stay_apart(tmp_path):
    base = job_with_script(tmp_path, """
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
    """)
    result = run_train(base)
    assert "to stdout" in result.stdout and "to stderr" not in result.stdout
    assert "to stderr" in result.stderr and "to stdout" not in result.stderr


def test_huge_stderr_lines_keep_the_supervisor_small_and_the_tail_bounded(tmp_path):
    base = job_with_script(tmp_path, """
        import sys
        line = b"x" * (20 * 2**20) + b"\\n"
        for _ in range(40):
            sys.stderr.buffer.write(line)
        sys.stderr.buffer.write(b"RuntimeError: out of patience\\n")
        sys.exit(1)
    """)
    code, peak = peak_rss_of_train(base)
    assert code == 1
    assert peak < 100, f"the supervisor's RSS reached {peak:.0f} MiB"
    failure = read_failure(base)
    assert failure.count("Last stderr lines of train.py:") == 1
    kept = failure.split("Last stderr lines of train.py:\n", 1)[1].splitlines()
    assert kept[-1] == "RuntimeError: out of patience"
    assert kept[-2] == "x" * 500 + f" [... {20 * 2**20 - 500} more characters]"
    assert len(failure) < 100_000


def test_a_hundred_megabytes_without_a_newline(tmp_path):
    base = job_with_script(tmp_path, """
        import sys
        chunk = b"y" * 2**20
        for _ in range(100):
            sys.stdout.buffer.write(chunk)
    """)
    code, peak = peak_rss_of_train(base)
    assert code == 0
    assert peak < 100, f"the supervisor's RSS reached {peak:.0f} MiB"


def test_the_failure_tail_is_not_printed_twice(tmp_path):
    base = job_with_script(tmp_path, """
        import sys
        print("the one line the user wrote", file=sys.stderr)
        sys.exit(4)
    """)
    result = run_train(base)
    assert result.returncode == 4
    assert result.stderr.count("the one line the user wrote") == 1
    assert read_failure(base).count("the one line the user wrote") == 1


def test_carriage_returns_end_lines_as_they_come(tmp_path):
    base = job_with_script(tmp_path, """
        import sys, time
        for step in (10, 20, 30):  # as tqdm and Keras draw: each state after a \\r, no newline
            sys.stdout.write(f"\\rtraining {step}%")
            sys.stdout.flush()
        time.sleep(300)
    """)
    proc = start_train(base)
    try:
        # each \r ends the state before it: they show while the script still runs (the last one, at its end)
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines == [b"training 10%\n", b"training 20%\n"]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        kill_quietly(proc.pid)


def test_line_ends_and_pieces():
    from sagemaker_training.supervision import streams
    from sagemaker_training.errors import Redactor

    read, write = os.pipe()
    long_line = ("word " * 30000).strip()
    payload = (b"a\r\nb\rc\n\r\r\nd\n\n" + "é".encode() * 3 + b"\xff\n" + long_line.encode() + b"\npassword=hunter2hunter2")

    def writer():
        with os.fdopen(write, "wb") as f:
            f.write(payload)

    threading.Thread(target=writer, daemon=True).start()
    sink, tail = Sink(), streams.Tail(lines=3, width=10)
    streams.pump(os.fdopen(read, "rb"), sink, "[h] ", Redactor(), tail)
    text = "".join(sink.parts)
    # \r, \n and \r\n end a line; a \r that ends nothing is dropped, an empty \n line is kept
    assert text.split("\n") == ["[h] a", "[h] b", "[h] c", "[h] d", "[h] ", "[h] ééé\ufffd",
                                f"[h] {long_line}", "[h] password=****", ""]
    # a long line goes out in pieces: what is held is one piece and one read, never the line
    assert max(len(part) for part in sink.parts) <= streams.PIECE_CHARS + streams.READ_BYTES < len(long_line)
    assert tail.lines() == ["ééé\ufffd", f"word word  [... {len(long_line) - 10} more characters]",
                            "password=* [... 3 more characters]"]
