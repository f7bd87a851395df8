"""Supervision: exit codes, signals, grace periods, orphans, odd output, error records.

Everything runs a real ``train`` on a real user script, or :func:`supervise`
on real child processes; signals are real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import (SIGTERM_SCRIPT, kill_quietly, pid_alive, read_failure, run_train, start_train, succeeded,
                     wait_for_file, write_base_dir)
from sagemaker_training.supervision.processes import ProcessSpec, exception_from_stderr, supervise


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
    base = _job(tmp_path, SIGTERM_SCRIPT)
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


class _Sink:
    """A stream that keeps what is written to it, in the pieces it came in."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass


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


def test_a_stop_while_waiting_for_peers_ends_the_wait_and_the_run_still_succeeds(tmp_path):
    # The SDK's local mode stops every container once one has ended: a host whose training has
    # succeeded and that only waits for its peers then gets SIGTERM. That is not a stopped job.
    aux = "import time; time.sleep(300)\n"  # this host's parameter server, still needed by peers
    seen = []

    def on_mains_done(children, stopping):
        seen.append(stopping())
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        deadline = time.monotonic() + 60  # a peer that never ends: only the stop ends this wait
        while not stopping() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append(stopping())

    err = _Sink()
    started = time.monotonic()
    outcome = supervise([ProcessSpec(name="server", argv=_py(aux), main=False),
                         ProcessSpec(name="worker", argv=_py("pass"))], grace=5, on_mains_done=on_mains_done, err=err)
    assert seen == [False, True]
    assert time.monotonic() - started < 10
    assert outcome.ok, outcome
    assert (outcome.stopped_by, outcome.late_signal) == (None, signal.SIGTERM)
    assert outcome.exit_codes == {"worker": 0, "server": -signal.SIGTERM}
    assert "received SIGTERM after the training processes had finished their work; ending the wait for peers" in "".join(err.parts)


def test_a_stop_after_the_main_said_its_work_is_done_leaves_the_run_a_success(tmp_path):
    # MXNet's legacy runner marks its work done once the model is saved; what follows is the
    # kvstore's shutdown barrier, which a stop may cut short
    ready = tmp_path / "ready"
    worker = ("import time\nfrom sagemaker_training.errors import mark_done\n"
              f"mark_done(); open({str(ready)!r}, 'w').close(); time.sleep(300)\n")
    threading.Thread(target=lambda: (wait_for_file(str(ready)), os.kill(os.getpid(), signal.SIGTERM)),
                     daemon=True).start()
    err = _Sink()
    outcome = supervise([ProcessSpec(name="worker", argv=_py(worker))], grace=5, err=err)
    assert outcome.ok, outcome
    assert (outcome.stopped_by, outcome.late_signal) == (None, signal.SIGTERM)
    assert outcome.exit_codes == {"worker": -signal.SIGTERM}
    assert "received SIGTERM after the training processes had finished their work" in "".join(err.parts)


def test_a_stop_when_only_some_mains_said_they_are_done_still_stops_the_run(tmp_path):
    done, busy = tmp_path / "done", tmp_path / "busy"
    finished = ("import time\nfrom sagemaker_training.errors import mark_done\n"
                f"mark_done(); open({str(done)!r}, 'w').close(); time.sleep(300)\n")
    training = f"import time; open({str(busy)!r}, 'w').close(); time.sleep(300)\n"

    def stop_when_both_run():
        wait_for_file(str(done))
        wait_for_file(str(busy))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_both_run, daemon=True).start()
    outcome = supervise([ProcessSpec(name="saved", argv=_py(finished)), ProcessSpec(name="training", argv=_py(training))],
                        grace=5, err=_Sink())
    assert not outcome.ok
    assert (outcome.stopped_by, outcome.late_signal) == (signal.SIGTERM, None)


def test_a_stop_before_the_mains_end_still_stops_the_run(tmp_path):
    ready = tmp_path / "ready"
    worker = f"import time; open({str(ready)!r}, 'w').close(); time.sleep(300)\n"
    threading.Thread(target=lambda: (wait_for_file(str(ready)), os.kill(os.getpid(), signal.SIGTERM)),
                     daemon=True).start()
    outcome = supervise([ProcessSpec(name="worker", argv=_py(worker))], grace=5,
                        on_mains_done=lambda children, stopping: None, err=_Sink())
    assert not outcome.ok
    assert (outcome.stopped_by, outcome.late_signal) == (signal.SIGTERM, None)


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


# ---------------------------------------------------------------------------
# The supervisor waits for, signals and sweeps only what is its own


def test_a_process_started_beside_the_supervisor_keeps_its_exit_code():
    sibling = subprocess.Popen(_py("import sys, time; time.sleep(0.3); sys.exit(3)"))
    try:
        outcome = supervise([ProcessSpec(name="worker", argv=_py("import time; time.sleep(1.5)"))], grace=5)
        assert outcome.ok
        assert sibling.wait(timeout=10) == 3  # not reaped by the supervisor (it reported 0)
    finally:
        kill_quietly(sibling.pid)


def test_children_are_started_without_preexec_fn(monkeypatch):
    seen = []

    class Spy(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    outcome = supervise([ProcessSpec(name="worker", argv=_py("import os; print(os.getpgid(0) == os.getpid())"))],
                        grace=5)
    assert outcome.ok
    [kwargs] = seen
    assert kwargs.get("preexec_fn") is None
    assert kwargs["start_new_session"] is True  # its own group, set up by Popen itself


def test_exec_wrapper_failure_is_the_users_with_the_reason(tmp_path):
    base = _job(tmp_path, "#!/nonexistent/interpreter\necho never\n", name="train")
    os.chmod(os.path.join(base, "code", "train"), 0o755)
    result = run_train(base)
    assert result.returncode == 127
    head = read_failure(base).splitlines()[0]
    assert head.startswith("UserError: train raised FileNotFoundError: cannot run ")
    assert head.split(": ")[-1].startswith("No such file or directory")


DAEMON = """
    import os, sys, time
    pid_file = os.path.join(os.environ["SM_MODEL_DIR"], "daemon.pid")
    if os.fork() == 0:          # the classic double fork: out of the group, the session and the parent
        os.setsid()
        if os.fork() == 0:
            with open(pid_file + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pid_file + ".tmp", pid_file)
            os.close(1); os.close(2)
            time.sleep(300)
        os._exit(0)
    while not os.path.exists(pid_file):
        time.sleep(0.01)
    print("training done, the daemon runs on", flush=True)
"""


def test_a_daemon_that_calls_setsid_does_not_outlive_train(tmp_path):
    base = _job(tmp_path, DAEMON)
    started = time.monotonic()
    result = run_train(base, timeout=60)
    with open(os.path.join(base, "model", "daemon.pid")) as f:
        daemon = int(f.read())
    try:
        assert result.returncode == 0, result.stderr
        assert not pid_alive(daemon)  # gone by the time train has exited
        assert f"ended 1 process(es) the job left running (pids {daemon})" in result.stderr
        assert time.monotonic() - started < 10
    finally:
        kill_quietly(daemon)


def test_the_sweep_touches_only_descendants(tmp_path):
    """A process started beside the supervisor, alive or exited, is left alone;
    the daemon of a supervised child is ended."""
    code = "\n".join(line[4:] for line in DAEMON.splitlines()).replace(
        'os.environ["SM_MODEL_DIR"]', repr(str(tmp_path)))
    beside = subprocess.Popen(["sleep", "60"])
    try:
        outcome = supervise([ProcessSpec(name="worker", argv=_py(code))], grace=5)
        with open(tmp_path / "daemon.pid") as f:
            daemon = int(f.read())
        assert outcome.ok
        assert not pid_alive(daemon)
        assert pid_alive(beside.pid) and beside.poll() is None
    finally:
        kill_quietly(beside.pid)
        beside.wait()


# ---------------------------------------------------------------------------
# Output in bounded memory


def _peak_rss_of_train(base: str, env: dict | None = None, timeout: float = 120):
    """Run train with its output discarded; (exit code, its peak RSS in MiB, sampled every 20 ms)."""
    import psutil

    proc = start_train(base, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    deadline = time.monotonic() + timeout
    try:
        process = psutil.Process(proc.pid)
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.02)
        return proc.wait(timeout=10), peak / 2**20
    finally:
        kill_quietly(proc.pid)


def test_huge_stderr_lines_keep_the_supervisor_small_and_the_tail_bounded(tmp_path):
    base = _job(tmp_path, """
        import sys
        line = b"x" * (20 * 2**20) + b"\\n"
        for _ in range(40):
            sys.stderr.buffer.write(line)
        sys.stderr.buffer.write(b"RuntimeError: out of patience\\n")
        sys.exit(1)
    """)
    code, peak = _peak_rss_of_train(base)
    assert code == 1
    assert peak < 100, f"the supervisor's RSS reached {peak:.0f} MiB"
    failure = read_failure(base)
    assert failure.count("Last stderr lines of train.py:") == 1
    kept = failure.split("Last stderr lines of train.py:\n", 1)[1].splitlines()
    assert kept[-1] == "RuntimeError: out of patience"
    assert kept[-2] == "x" * 500 + f" [... {20 * 2**20 - 500} more characters]"
    assert len(failure) < 100_000


def test_a_hundred_megabytes_without_a_newline(tmp_path):
    base = _job(tmp_path, """
        import sys
        chunk = b"y" * 2**20
        for _ in range(100):
            sys.stdout.buffer.write(chunk)
    """)
    code, peak = _peak_rss_of_train(base)
    assert code == 0
    assert peak < 100, f"the supervisor's RSS reached {peak:.0f} MiB"


def test_the_failure_tail_is_not_printed_twice(tmp_path):
    base = _job(tmp_path, """
        import sys
        print("the one line the user wrote", file=sys.stderr)
        sys.exit(4)
    """)
    result = run_train(base)
    assert result.returncode == 4
    assert result.stderr.count("the one line the user wrote") == 1
    assert read_failure(base).count("the one line the user wrote") == 1


def test_carriage_returns_end_lines_as_they_come(tmp_path):
    base = _job(tmp_path, """
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
    sink, tail = _Sink(), streams.Tail(lines=3, width=10)
    streams.pump(os.fdopen(read, "rb"), sink, "[h] ", Redactor(), tail)
    text = "".join(sink.parts)
    # \r, \n and \r\n end a line; a \r that ends nothing is dropped, an empty \n line is kept
    assert text.split("\n") == ["[h] a", "[h] b", "[h] c", "[h] d", "[h] ", "[h] ééé\ufffd",
                                f"[h] {long_line}", "[h] password=****", ""]
    # a long line goes out in pieces: what is held is one piece and one read, never the line
    assert max(len(part) for part in sink.parts) <= streams.PIECE_CHARS + streams.READ_BYTES < len(long_line)
    assert tail.lines() == ["ééé\ufffd", f"word word  [... {len(long_line) - 10} more characters]",
                            "password=* [... 3 more characters]"]


# ---------------------------------------------------------------------------
# Runners get the handles of their own auxiliary children

LEGACY_TF = ("def estimator_fn(run_config, hyperparameters):\n    pass\n"
             "def train_input_fn(training_dir, hyperparameters):\n    pass\n"
             "def eval_input_fn(training_dir, hyperparameters):\n    pass\n")


def _tf_two_host_plan(tmp_path, current_host="algo-1"):
    from sagemaker_training.environment import Environment
    from sagemaker_training.frameworks import tensorflow as tf_runner
    from sagemaker_training.train import Job

    base = write_base_dir(tmp_path / current_host, program="train.py", code={"train.py": LEGACY_TF},
                          hosts=("algo-1", "algo-2"), current_host=current_host)
    job = Job(env=Environment(base, {}), addresses={"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"})
    return tf_runner.plan(job)


def test_the_peer_watcher_stands_down_through_its_handle(tmp_path, monkeypatch):
    import socket
    import tempfile

    from sagemaker_training.local.ports import free_port_block

    port = free_port_block(4)  # master, worker 0, ps 0, ps 1
    for name, value in (("SAGEMAKER_TF_PORT", port), ("SAGEMAKER_TF_PS_PORT", port + 2), ("SAGEMAKER_PORT_STRIDE", 1),
                        ("SAGEMAKER_TF_PEER_POLL_SECONDS", 0.05), ("SAGEMAKER_TF_PEER_WAIT_SECONDS", 0.5)):
        monkeypatch.setenv(name, str(value))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    other_ps = socket.create_server(("127.0.0.1", port + 3))  # algo-2's parameter server
    plan = _tf_two_host_plan(tmp_path)
    _, _, watcher = plan.specs
    handed = []

    def on_mains_done(children, stopping):
        handed.extend(child.name for child in children)
        plan.on_mains_done(children, stopping=stopping)
        assert os.listdir(scratch) == []  # no marker file: the watcher got a signal through its handle
        other_ps.close()  # the peers end, as they do when the job is over
        time.sleep(1.5)  # a watcher still watching would report the loss within a second

    err = _Sink()
    trainer = ProcessSpec(name="master", argv=_py("import time; time.sleep(1)"))
    try:
        outcome = supervise([watcher, trainer], grace=5, on_mains_done=on_mains_done, err=err)
    finally:
        other_ps.close()
    assert outcome.ok
    assert handed == ["peer watch on algo-1"]
    assert outcome.exit_codes == {"master": 0, "peer watch on algo-1": 0}  # it stood down by itself, quietly
    assert "went away" not in "".join(err.parts)


def test_bad_framework_bounds_are_refused_naming_them(tmp_path, monkeypatch):
    from sagemaker_training.errors import ClientError
    from sagemaker_training.frameworks import mxnet

    with pytest.raises(ClientError, match=r"SAGEMAKER_MXNET_NODE_EXIT_SECONDS='soon' is not valid"):
        mxnet.node_exit_seconds({"SAGEMAKER_MXNET_NODE_EXIT_SECONDS": "soon"})
    monkeypatch.setenv("SAGEMAKER_TF_PEER_START_SECONDS", "-1")  # read by the watcher child: checked at plan time
    with pytest.raises(ClientError, match=r"SAGEMAKER_TF_PEER_START_SECONDS='-1' is not valid: it must be a number "
                                          r">= 0"):
        _tf_two_host_plan(tmp_path)


def test_children_get_default_sigpipe_and_the_parent_death_signal():
    """The exec wrapper undoes what the Python it runs in did (SIGPIPE, SIGXFSZ ignored) and sets
    PR_SET_PDEATHSIG to SIGKILL, which exec keeps."""
    out = _Sink()
    pdeathsig = ("import ctypes\n"
                 "value = ctypes.c_int(0)\n"
                 "ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG\n"
                 "print('pdeathsig', value.value)\n")
    outcome = supervise([ProcessSpec(name="mask", argv=["grep", "^SigIgn:", "/proc/self/status"]),
                         ProcessSpec(name="pdeathsig", argv=_py(pdeathsig))], grace=5, out=out)
    assert outcome.ok
    lines = "".join(out.parts).splitlines()
    assert f"pdeathsig {int(signal.SIGKILL)}" in lines
    [mask] = [int(line.split()[1], 16) for line in lines if line.startswith("SigIgn:")]
    assert not mask & (1 << (signal.SIGPIPE - 1)) and not mask & (1 << (signal.SIGXFSZ - 1))
