"""supervision/orphans.py: what the user leaves behind neither hangs train nor survives it, and the
sweep ends only the job's own."""

from __future__ import annotations

import os
import subprocess
import time

from helpers import kill_quietly, pid_alive, run_train, succeeded
from supervision_helpers import job_with_script, py_argv, wait_gone
from sagemaker_training.supervision.processes import ProcessSpec, supervise


def test_grandchildren_are_ended_with_the_user_process(tmp_path):
    base = job_with_script(tmp_path, """
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
        wait_gone(worker)  # ended by train; its zombie is the adopting process's to reap
        assert not pid_alive(worker)
    finally:
        kill_quietly(worker)


def test_daemonised_grandchild_holding_the_pipes_does_not_hang_train(tmp_path):
    base = job_with_script(tmp_path, """
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
    base = job_with_script(tmp_path, DAEMON)
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
        outcome = supervise([ProcessSpec(name="worker", argv=py_argv(code))], grace=5)
        with open(tmp_path / "daemon.pid") as f:
            daemon = int(f.read())
        assert outcome.ok
        assert not pid_alive(daemon)
        assert pid_alive(beside.pid) and beside.poll() is None
    finally:
        kill_quietly(beside.pid)
        beside.wait()
