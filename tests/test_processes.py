"""Supervision: exit codes, signals, grace periods, orphans, odd output, error records.

Everything runs a real ``train`` on a real user script, or :func:`supervise`
on real child processes; signals are real signals.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from helpers import (kill_quietly, pid_alive, read_failure, run_train, start_train, succeeded, wait_for_file,
                     write_base_dir)
from sagemaker_training.processes import ProcessSpec, exception_from_stderr, supervise


def _job(tmp_path, script: str, name: str = "train.py", **kwargs) -> str:
    return write_base_dir(tmp_path, program=name, code={name: script}, **kwargs)


# ---------------------------------------------------------------------------
# Exit codes and signals of the user process


def test_exit_code_is_passed_on_with_the_exception(tmp_path):
    base = _job(tmp_path, """
        import sys, traceback
        print("epoch 1 loss 0.5")
        try:
            raise ValueError("learning rate must be positive, got -1")
        except ValueError:
            traceback.print_exc()
            sys.exit(3)
    """)
    result = run_train(base)
    assert result.returncode == 3
    failure = read_failure(base)
    head = failure.splitlines()[0]
    assert head.startswith("UserError: train.py exited with code 3")
    assert "ValueError: learning rate must be positive, got -1" in head
    assert "Fix the training code" in head
    assert "Traceback (most recent call last)" in failure  # the stderr tail follows
    assert "epoch 1 loss 0.5" in result.stdout
    assert not succeeded(base)


def test_uncaught_exception_is_named_from_the_stderr_tail(tmp_path):
    base = _job(tmp_path, """
        import sys
        def load():
            raise KeyError("features")
        try:
            load()
        except KeyError as exc:
            raise RuntimeError("could not read the training channel") from exc
    """)
    result = run_train(base)
    assert result.returncode == 1
    head = read_failure(base).splitlines()[0]
    # The last traceback's last line, not the first exception of the chain.
    assert "exited with code 1: RuntimeError: could not read the training channel" in head
    assert "KeyError" not in head


@pytest.mark.parametrize("signum, code, says", [
    (signal.SIGSEGV, 139, "SIGSEGV"),
    (signal.SIGKILL, 137, "out-of-memory"),
    (signal.SIGABRT, 134, "SIGABRT"),
])
def test_killed_by_a_signal(tmp_path, signum, code, says):
    base = _job(tmp_path, f"""
        import os, sys
        print("about to die", flush=True)
        os.kill(os.getpid(), {int(signum)})
    """)
    result = run_train(base)
    assert result.returncode == code
    head = read_failure(base).splitlines()[0]
    assert head.startswith(f"UserError: train.py was killed by {signal.Signals(signum).name}")
    assert says in head
    if signum == signal.SIGKILL:
        assert "memory" in head


# ---------------------------------------------------------------------------
# SIGTERM to train (StopTrainingJob, spot interruption)


def test_sigterm_reaches_the_user_handler(tmp_path):
    base = _job(tmp_path, """
        import os, signal, sys, time
        def on_term(signum, frame):
            with open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint"), "w") as f:
                f.write(f"saved on signal {signum}")
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        open(os.path.join(os.environ["SM_MODEL_DIR"], "ready"), "w").close()
        while True:
            time.sleep(0.1)
    """)
    proc = start_train(base)
    try:
        wait_for_file(os.path.join(base, "model", "ready"), proc=proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        kill_quietly(proc.pid)
    assert time.monotonic() - started < 5
    with open(os.path.join(base, "model", "checkpoint")) as f:
        assert f.read() == f"saved on signal {int(signal.SIGTERM)}"
    assert proc.returncode == 128 + signal.SIGTERM
    head = read_failure(base).splitlines()[0]
    assert head.startswith("Stopped:") and "SIGTERM" in head
    assert b"received SIGTERM" in err


def test_user_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    base = _job(tmp_path, """
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "pid"), "w") as f:
            f.write(str(os.getpid()))
        while True:
            time.sleep(0.1)
    """)
    proc = start_train(base, {"SAGEMAKER_TERMINATION_GRACE_SECONDS": "1"})
    try:
        wait_for_file(os.path.join(base, "model", "pid"), proc=proc)
        with open(os.path.join(base, "model", "pid")) as f:
            user_pid = int(f.read())
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert pid_alive(user_pid)  # it ignored SIGTERM and is inside its grace period
        proc.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        kill_quietly(proc.pid)
    assert 0.9 < elapsed < 5
    assert proc.returncode == 128 + signal.SIGTERM
    assert not pid_alive(user_pid)
    assert read_failure(base).startswith("Stopped:")


def test_sigint_is_forwarded_too(tmp_path):
    base = _job(tmp_path, """
        import os, time
        open(os.path.join(os.environ["SM_MODEL_DIR"], "ready"), "w").close()
        try:
            while True:
                time.sleep(0.1)
        except KeyboardInterrupt:
            open(os.path.join(os.environ["SM_MODEL_DIR"], "interrupted"), "w").close()
            raise SystemExit(130)
    """)
    proc = start_train(base)
    try:
        wait_for_file(os.path.join(base, "model", "ready"), proc=proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        kill_quietly(proc.pid)
    assert os.path.exists(os.path.join(base, "model", "interrupted"))
    assert proc.returncode == 128 + signal.SIGINT


# ---------------------------------------------------------------------------
# Orphans: what the user leaves behind neither hangs train nor survives it


def test_grandchildren_are_ended_with_the_user_process(tmp_path):
    base = _job(tmp_path, """
        import os, subprocess
        worker = subprocess.Popen(["sleep", "300"])  # inherits stdout/stderr and the process group
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "pid"), "w") as f:
            f.write(str(worker.pid))
        print("leaving a worker behind", flush=True)
    """)
    started = time.monotonic()
    result = run_train(base, timeout=30)
    elapsed = time.monotonic() - started
    with open(os.path.join(base, "model", "pid")) as f:
        worker = int(f.read())
    try:
        assert result.returncode == 0, result.stderr
        assert elapsed < 5
        time.sleep(0.1)
        assert not pid_alive(worker)
    finally:
        kill_quietly(worker)


def test_daemonised_grandchild_holding_the_pipes_does_not_hang_train(tmp_path):
    base = _job(tmp_path, """
        import os, subprocess
        # A new session: out of reach of the group kill, and it keeps our stdout and stderr open.
        worker = subprocess.Popen(["sleep", "300"], start_new_session=True)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "pid"), "w") as f:
            f.write(str(worker.pid))
    """)
    started = time.monotonic()
    result = run_train(base, timeout=30)
    elapsed = time.monotonic() - started
    with open(os.path.join(base, "model", "pid")) as f:
        kill_quietly(int(f.read()))
    assert result.returncode == 0, result.stderr
    assert elapsed < 3.5  # the rest of the output is awaited 2 s in all
    assert succeeded(base)


def test_supervisor_killed_takes_the_user_process_with_it(tmp_path):
    base = _job(tmp_path, """
        import os, time
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(300)
    """)
    proc = start_train(base)
    try:
        wait_for_file(os.path.join(base, "model", "pid"), proc=proc)
        with open(os.path.join(base, "model", "pid")) as f:
            user_pid = int(f.read())
        proc.kill()
        proc.communicate(timeout=10)
        deadline = time.monotonic() + 5
        while pid_alive(user_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(user_pid)  # PR_SET_PDEATHSIG
    finally:
        kill_quietly(proc.pid)
        kill_quietly(user_pid)


# ---------------------------------------------------------------------------
# Output streaming


def test_long_lines_and_invalid_utf8_stream_intact(tmp_path):
    base = _job(tmp_path, """
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
    base = _job(tmp_path, """
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
    """)
    result = run_train(base)
    assert "to stdout" in result.stdout and "to stderr" not in result.stdout
    assert "to stderr" in result.stderr and "to stdout" not in result.stderr


# ---------------------------------------------------------------------------
# The structured error record


def test_error_record_gives_the_exception_without_any_stderr(tmp_path):
    base = _job(tmp_path, """
        import os, sys
        from sagemaker_training import errors

        @errors.record
        def main():
            sys.stderr = open(os.devnull, "w")  # no traceback reaches the supervisor
            raise KeyError("missing column 'label'")

        main()
    """)
    result = run_train(base)
    assert result.returncode == 1
    head = read_failure(base).splitlines()[0]
    assert head.startswith("UserError: train.py raised KeyError:"), head
    assert "missing column 'label'" in head
    assert "Traceback" not in result.stderr


def test_error_record_of_a_sys_exit(tmp_path):
    base = _job(tmp_path, """
        import sys
        from sagemaker_training import errors

        @errors.record
        def main():
            sys.exit("no data in the training channel")

        main()
    """)
    result = run_train(base)
    assert result.returncode == 1
    head = read_failure(base).splitlines()[0]
    assert "raised SystemExit: no data in the training channel" in head


def test_error_file_path_is_given_to_the_child(tmp_path):
    base = _job(tmp_path, """
        import json, os
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "env.json"), "w") as f:
            json.dump({"error_file": os.environ.get("SAGEMAKER_ERROR_FILE")}, f)
    """)
    assert run_train(base).returncode == 0
    with open(os.path.join(base, "model", "env.json")) as f:
        error_file = json.load(f)["error_file"]
    assert error_file and os.path.isabs(error_file)
    assert not os.path.exists(os.path.dirname(error_file))  # cleaned up after the run


@pytest.mark.parametrize("lines, expected", [
    (["Traceback (most recent call last):", '  File "t.py", line 1, in <module>', "ValueError: bad"],
     "ValueError: bad"),
    (["Traceback (most recent call last):", '  File "t.py", line 1', "KeyError: 'a'", "",
      "During handling of the above exception, another exception occurred:", "",
      "Traceback (most recent call last):", '  File "t.py", line 3', "mod.CustomError: two",
      "INFO some log line after"],
     "mod.CustomError: two"),
    (["Traceback (most recent call last):", '  File "t.py", line 1', "KeyboardInterrupt"], "KeyboardInterrupt"),
    (["ValueError: printed without a traceback"], None),
    (["just a log line"], None),
    ([], None),
])
def test_exception_from_stderr(lines, expected):
    assert exception_from_stderr(lines) == expected


# ---------------------------------------------------------------------------
# supervise(): several children


def _py(code: str) -> list:
    return [sys.executable, "-c", code]


def test_auxiliary_children_are_stopped_when_the_mains_succeed(tmp_path):
    marker, ready = tmp_path / "aux-stopped", tmp_path / "aux-ready"
    aux = ("import signal, sys, time\n"
           f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').close(), sys.exit(0)))\n"
           f"open({str(ready)!r}, 'w').close()\n"
           "time.sleep(300)\n")
    worker = f"import os, time\nwhile not os.path.exists({str(ready)!r}):\n    time.sleep(0.01)\n"
    started = time.monotonic()
    outcome = supervise([
        ProcessSpec(name="server", argv=_py(aux), main=False),
        ProcessSpec(name="worker", argv=_py(worker)),
    ], grace=5)
    assert outcome.ok
    assert outcome.exit_codes == {"worker": 0, "server": 0}
    assert marker.exists()
    assert time.monotonic() - started < 5


def test_first_failure_stops_the_others(tmp_path):
    started = time.monotonic()
    outcome = supervise([
        ProcessSpec(name="slow", argv=_py("import time; time.sleep(300)")),
        ProcessSpec(name="broken", argv=_py("import sys; print('boom', file=sys.stderr); sys.exit(7)")),
    ], grace=5)
    assert not outcome.ok
    assert outcome.failure.name == "broken" and outcome.failure.exit_code == 7
    assert outcome.failure.stderr_tail == ["boom"]
    assert outcome.exit_codes["slow"] == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_toolkit_child_failure_is_a_toolkit_error():
    outcome = supervise([ProcessSpec(name="parameter server", argv=_py("raise SystemExit(2)"), user_code=False)],
                        grace=5)
    reason = outcome.failure.reason()
    assert reason.startswith("ToolkitError: parameter server exited with code 2")
    assert "report it" in reason.splitlines()[0]
