"""supervision/child.py: one started child, through the exec guard, in a session of its own, with
its error file; the guard's guarantees seen from the supervisor."""

from __future__ import annotations

import json
import os
import signal

from helpers import kill_quietly, pid_alive, read_failure, run_train, start_train, wait_for_file
from supervision_helpers import Sink, job_with_script, py_argv, wait_gone
from sagemaker_training.supervision.processes import ProcessSpec, supervise


def test_supervisor_killed_takes_the_user_process_with_it(tmp_path):
    base = job_with_script(tmp_path, """
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
        wait_gone(user_pid)
        assert not pid_alive(user_pid)  # PR_SET_PDEATHSIG
    finally:
        kill_quietly(proc.pid)
        kill_quietly(user_pid)


def test_children_are_started_without_preexec_fn(monkeypatch):
    """posix_spawn (no subprocess import on every start) has no preexec_fn at all: nothing of ours runs
    between the fork and the exec; the child's own session is posix_spawn's setsid."""
    seen = []
    real = os.posix_spawn

    def spy(path, argv, env, **kwargs):
        seen.append(kwargs)
        return real(path, argv, env, **kwargs)

    monkeypatch.setattr(os, "posix_spawn", spy)
    out = Sink()
    outcome = supervise([ProcessSpec(name="worker", argv=py_argv("import os; print(os.getpgid(0) == os.getpid())"))],
                        grace=5, out=out)
    assert outcome.ok
    [kwargs] = seen
    assert kwargs.get("preexec_fn") is None
    assert kwargs["setsid"] is True  # its own group, set up by posix_spawn itself
    assert "".join(out.parts).split() == ["True"]


def test_exec_wrapper_failure_is_the_users_with_the_reason(tmp_path):
    base = job_with_script(tmp_path, "#!/nonexistent/interpreter\necho never\n", name="train")
    os.chmod(os.path.join(base, "code", "train"), 0o755)
    result = run_train(base)
    assert result.returncode == 127
    head = read_failure(base).splitlines()[0]
    assert head.startswith("UserError: train raised FileNotFoundError: cannot run ")
    assert head.split(": ")[-1].startswith("No such file or directory")


def test_children_get_default_sigpipe_and_the_parent_death_signal():
    """The exec wrapper undoes what the Python it runs in did (SIGPIPE, SIGXFSZ ignored) and sets
    PR_SET_PDEATHSIG to SIGKILL, which exec keeps."""
    out = Sink()
    pdeathsig = ("import ctypes\n"
                 "value = ctypes.c_int(0)\n"
                 "ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG\n"
                 "print('pdeathsig', value.value)\n")
    outcome = supervise([ProcessSpec(name="mask", argv=["grep", "^SigIgn:", "/proc/self/status"]),
                         ProcessSpec(name="pdeathsig", argv=py_argv(pdeathsig))], grace=5, out=out)
    assert outcome.ok
    lines = "".join(out.parts).splitlines()
    assert f"pdeathsig {int(signal.SIGKILL)}" in lines
    [mask] = [int(line.split()[1], 16) for line in lines if line.startswith("SigIgn:")]
    assert not mask & (1 << (signal.SIGPIPE - 1)) and not mask & (1 << (signal.SIGXFSZ - 1))


def test_error_file_path_is_given_to_the_child(tmp_path):
    base = job_with_script(tmp_path, """
        import json, os
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "env.json"), "w") as f:
            json.dump({"error_file": os.environ.get("SAGEMAKER_ERROR_FILE")}, f)
    """)
    assert run_train(base).returncode == 0
    with open(os.path.join(base, "model", "env.json")) as f:
        error_file = json.load(f)["error_file"]
    assert error_file and os.path.isabs(error_file)
    assert not os.path.exists(os.path.dirname(error_file))  # cleaned up after the run
