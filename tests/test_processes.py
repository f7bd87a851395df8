"""supervision/processes.py: the supervisor runs its children to an outcome, passes SIGTERM and SIGINT
on, waits a grace period, stops auxiliary children and waits only for its own.

Everything runs a real ``train`` on a real user script, or :func:`supervise` on real child processes;
signals are real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from helpers import SIGTERM_SCRIPT, kill_quietly, pid_alive, read_failure, start_train, wait_for_file
from supervision_helpers import Sink, job_with_script, py_argv, wait_for_line
from sagemaker_training.supervision.processes import ProcessSpec, supervise


def test_sigterm_reaches_the_user_handler(tmp_path):
    base = job_with_script(tmp_path, SIGTERM_SCRIPT)
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
    base = job_with_script(tmp_path, """
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
        wait_for_line(proc.stderr, b"received SIGTERM; passing it to the training processes")  # passed on by now
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
    base = job_with_script(tmp_path, """
        import os, time
        try:  # ready inside the try: a SIGINT right after it is still the handler's
            open(os.path.join(os.environ["SM_MODEL_DIR"], "ready"), "w").close()
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


def test_auxiliary_children_are_stopped_when_the_mains_succeed(tmp_path):
    marker, ready = tmp_path / "aux-stopped", tmp_path / "aux-ready"
    aux = ("import signal, sys, time\n"
           f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').close(), sys.exit(0)))\n"
           f"open({str(ready)!r}, 'w').close()\n"
           "time.sleep(300)\n")
    worker = f"import os, time\nwhile not os.path.exists({str(ready)!r}):\n    time.sleep(0.01)\n"
    started = time.monotonic()
    outcome = supervise([
        ProcessSpec(name="server", argv=py_argv(aux), main=False),
        ProcessSpec(name="worker", argv=py_argv(worker)),
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

    err = Sink()
    started = time.monotonic()
    outcome = supervise([ProcessSpec(name="server", argv=py_argv(aux), main=False),
                         ProcessSpec(name="worker", argv=py_argv("pass"))], grace=5, on_mains_done=on_mains_done, err=err)
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
    err = Sink()
    outcome = supervise([ProcessSpec(name="worker", argv=py_argv(worker))], grace=5, err=err)
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
    outcome = supervise([ProcessSpec(name="saved", argv=py_argv(finished)), ProcessSpec(name="training", argv=py_argv(training))],
                        grace=5, err=Sink())
    assert not outcome.ok
    assert (outcome.stopped_by, outcome.late_signal) == (signal.SIGTERM, None)


def test_a_stop_before_the_mains_end_still_stops_the_run(tmp_path):
    ready = tmp_path / "ready"
    worker = f"import time; open({str(ready)!r}, 'w').close(); time.sleep(300)\n"
    threading.Thread(target=lambda: (wait_for_file(str(ready)), os.kill(os.getpid(), signal.SIGTERM)),
                     daemon=True).start()
    outcome = supervise([ProcessSpec(name="worker", argv=py_argv(worker))], grace=5,
                        on_mains_done=lambda children, stopping: None, err=Sink())
    assert not outcome.ok
    assert (outcome.stopped_by, outcome.late_signal) == (signal.SIGTERM, None)


def test_first_failure_stops_the_others(tmp_path):
    started = time.monotonic()
    outcome = supervise([
        ProcessSpec(name="slow", argv=py_argv("import time; time.sleep(300)")),
        ProcessSpec(name="broken", argv=py_argv("import sys; print('boom', file=sys.stderr); sys.exit(7)")),
    ], grace=5)
    assert not outcome.ok
    assert outcome.failure.name == "broken" and outcome.failure.exit_code == 7
    assert outcome.failure.stderr_tail == ["boom"]
    assert outcome.exit_codes["slow"] == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_a_process_started_beside_the_supervisor_keeps_its_exit_code(tmp_path):
    started = tmp_path / "supervised"
    # the sibling exits once the supervisor's child runs; that child ends only once the sibling is a
    # zombie: it has exited while the supervisor waited, and nothing has reaped it (its /proc entry stays)
    sibling = subprocess.Popen(py_argv(f"import os, sys, time\nwhile not os.path.exists({str(started)!r}):\n"
                                       "    time.sleep(0.01)\nsys.exit(3)\n"))
    worker = (f"import time\nopen({str(started)!r}, 'w').close()\n"
              f"while open('/proc/{sibling.pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z':\n"
              "    time.sleep(0.01)\n")
    try:
        outcome = supervise([ProcessSpec(name="worker", argv=py_argv(worker))], grace=5)
        assert outcome.ok
        assert sibling.wait(timeout=10) == 3  # not reaped by the supervisor (it reported 0)
    finally:
        kill_quietly(sibling.pid)


def test_a_stop_that_comes_while_a_child_is_starting_reaches_it(monkeypatch, tmp_path):
    """SIGTERM handled after the child was spawned but before the supervisor listed it (its output
    threads starting on a loaded machine): the child still gets the signal, and SIGKILL after the grace."""
    from sagemaker_training.supervision import processes

    ready = tmp_path / "ready"

    class SignalledWhileStarting(processes.Child):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            wait_for_file(str(ready))
            signal.raise_signal(signal.SIGTERM)  # the handler runs here, before the child is listed

    monkeypatch.setattr(processes, "Child", SignalledWhileStarting)
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                f"open({str(ready)!r}, 'w').close(); time.sleep(60)")
    started = time.monotonic()
    outcome = supervise([ProcessSpec(name="stubborn", argv=py_argv(stubborn)),
                         ProcessSpec(name="never", argv=py_argv("pass"))], grace=1, err=Sink())
    assert time.monotonic() - started < 30
    assert outcome.stopped_by == signal.SIGTERM
    assert outcome.exit_codes == {"stubborn": -signal.SIGKILL}  # the second child was never started
