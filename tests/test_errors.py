"""errors.py's error records: one schema, one writer, one reader, for every process that writes one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sagemaker_training import errors
from sagemaker_training.supervision import guard

SCHEMA = set(errors.RECORD_FIELDS)


def _raised(exc):
    try:
        raise exc
    except type(exc) as caught:
        return caught


def test_an_exceptions_record_and_a_processs_record_share_the_schema(tmp_path):
    exc = _raised(errors.UserError("the data is empty"))
    own = errors.error_record(exc, function="train_input_fn")
    rank = errors.process_record("exited with code 1: ValueError: bad", host="algo-2", rank=3, exit_code=1,
                                 failed=True, exception="ValueError: bad", tail=["ValueError: bad"])
    assert set(own) == SCHEMA
    assert set(rank) == SCHEMA | set(errors.PROCESS_FIELDS)
    assert (own["type"], own["kind"], own["user_function"]) == ("UserError", "UserError", "train_input_fn")
    assert (rank["type"], rank["rank"], rank["exit_code"]) == ("ValueError", 3, 1)
    for name, record in (("own.json", own), ("rank.json", rank)):
        errors.write_error_record(record, str(tmp_path / name))
        assert errors.read_error_record(str(tmp_path / name)) == json.loads(json.dumps(record))


def test_the_first_record_wins_unless_told_otherwise(tmp_path):
    path = str(tmp_path / "error.json")
    errors.write_error_file(_raised(KeyError("root cause")), path)
    errors.write_error_file(_raised(RuntimeError("unwinding")), path)
    assert errors.read_error_file(path)["type"] == "KeyError"
    errors.write_error_record(errors.error_record(_raised(RuntimeError("again"))), path, first_wins=False)
    assert errors.read_error_file(path)["type"] == "RuntimeError"
    assert os.listdir(tmp_path) == ["error.json"]  # no temporary file left


def test_the_reader_takes_only_a_json_object(tmp_path):
    for text in ("[1, 2]", "not json", ""):
        (tmp_path / "x.json").write_text(text)
        assert errors.read_error_record(str(tmp_path / "x.json")) is None
    assert errors.read_error_record(str(tmp_path / "missing.json")) is None
    assert errors.error_record_from_json('{"type": "X"}') == {"type": "X"}


def test_the_reader_refuses_deep_nesting_and_nested_values_without_raising(tmp_path):
    """What a child left in its error file cannot crash the supervisor that reads it: JSON nested
    beyond the decoder's recursion, or a field that is not a scalar (or ``tail``'s list of strings),
    is no record at all (the failure reason then comes from the child's stderr)."""
    path = tmp_path / "error.json"
    for text in ('{"type": "X", "message": ' + "[" * 100000 + "]" * 100000 + "}",
                 '{"type": "X", "message": ' + "[" * 50 + "]" * 50 + "}",
                 '{"type": "X", "message": {"nested": "object"}}',
                 '{"type": "X", "tail": [["a"]]}'):
        path.write_text(text)
        assert errors.read_error_file(str(path)) is None, text[:60]
        assert errors.error_record_from_json(text) is None, text[:60]
    record = errors.process_record("m", host="h", rank=0, exit_code=1, failed=True, exception="X: m", tail=["X: m"])
    assert errors.error_record_from_json(json.dumps(record)) == record


def test_the_reader_reads_a_bounded_prefix_of_the_file(tmp_path):
    path = tmp_path / "error.json"
    big = {"type": "X", "message": "x" * errors.MAX_RECORD_BYTES}
    path.write_text(json.dumps(big))
    assert errors.read_error_file(str(path)) is None  # over the limit: not read whole, not a record
    small = {"type": "X", "message": "x" * 1000}
    path.write_text(json.dumps(small))
    assert errors.read_error_file(str(path)) == small


def test_an_unknown_field_is_refused():
    try:
        errors.process_record("m", host="h", rank=0, exit_code=1, failed=True, exception=None, tail=[])
        errors._record("X", "m", colour="red")
    except TypeError as exc:
        assert "colour" in str(exc)
    else:
        raise AssertionError("an unknown field was accepted")


def test_the_guards_record_has_the_schema(tmp_path):
    """supervision/guard.py cannot import the package; the record it writes has the same fields."""
    path = tmp_path / "error.json"
    proc = subprocess.run([sys.executable, "-I", "-S", guard.__file__, str(os.getpid()), "", str(tmp_path / "none")],
                          env={**os.environ, errors.ERROR_FILE_ENV: str(path)}, capture_output=True)
    assert proc.returncode == 127
    record = errors.read_error_file(str(path))
    assert set(record) == SCHEMA and record["type"] == "FileNotFoundError"
