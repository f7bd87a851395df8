"""supervision/guard.py: the one exec guard, both ways (setpriv and /bin/sh; the bare Python fallback)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys

import pytest

from sagemaker_training.supervision import guard


@pytest.fixture(params=["setpriv", "python"])
def way(request, monkeypatch):
    if request.param == "setpriv":
        if guard._find_setpriv() is None:
            pytest.fail("this machine has no setpriv with --pdeathsig (util-linux >= 2.33): install util-linux")
    else:
        monkeypatch.setattr(guard, "_setpriv", [None])
    return request.param


def test_the_way_is_the_one_chosen(way):
    argv = guard.argv(["true"])
    assert (argv[0] == guard._find_setpriv()) == (way == "setpriv")
    assert subprocess.run(argv).returncode == 0


def test_the_child_has_the_parent_death_signal_and_default_sigpipe(way):
    probe = ("import ctypes, signal\n"
             "value = ctypes.c_int()\n"
             "ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG\n"
             "mask = [int(l.split()[1], 16) for l in open('/proc/self/status') if l.startswith('SigIgn:')][0]\n"
             "print(value.value, bool(mask & (1 << (signal.SIGPIPE - 1))), bool(mask & (1 << (signal.SIGXFSZ - 1))))\n")
    # the probe is Python, which ignores SIGPIPE itself: read the mask of a shell instead
    out = subprocess.run(guard.argv([sys.executable, "-c", probe]), capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == str(int(signal.SIGKILL))
    shell = subprocess.run(guard.argv(["grep", "^SigIgn:", "/proc/self/status"]), capture_output=True, text=True,
                           check=True).stdout
    mask = int(shell.split()[1], 16)
    assert not mask & (1 << (signal.SIGPIPE - 1)) and not mask & (1 << (signal.SIGXFSZ - 1))


def _environment_seen(argv, environ, cwd=None) -> dict:
    out = subprocess.run(argv, env=environ, cwd=cwd, capture_output=True, check=True).stdout
    return dict(entry.split(b"=", 1) for entry in out.split(b"\0") if entry)


@pytest.mark.parametrize("pwd", [None, "/a/stale/pwd"])
def test_the_program_gets_its_environment_exactly(way, tmp_path, pwd):
    """What the guard runs in (a shell) changes nothing the program sees: not PWD (stale or unset),
    not SHLVL; a variable whose name is no shell name (SM_CHANNEL_EVAL-SET) takes the Python way."""
    base = {"PATH": os.environ["PATH"], "SM_HP_EPOCHS": "1", "SM_CHANNEL_TRAINING": "/opt/ml/input/data/training"}
    if pwd is not None:
        base["PWD"] = pwd
    dashed = {**base, "SM_CHANNEL_EVAL-SET": "/opt/ml/input/data/eval-set", "SM_HP_LEARNING-RATE": "0.1"}
    for environ in (base, dashed):
        argv = guard.argv([sys.executable, "-c", "import os, sys; sys.stdout.buffer.write("
                           "b'\\0'.join(k + b'=' + v for k, v in os.environb.items()))"], environ=environ)
        shell_way = argv[0] == guard._find_setpriv()
        assert shell_way == (way == "setpriv" and environ is base)
        seen = _environment_seen(argv, environ, cwd=str(tmp_path))
        seen.pop(b"LC_CTYPE", None)  # Python's own locale coercion, with or without a guard
        assert seen == {k.encode(): v.encode() for k, v in environ.items()}


def test_a_parent_that_is_gone_before_the_guard_starts_nothing(way, tmp_path):
    """The race: the parent dies before the prctl, the signal would never come; the guard sees that its
    parent is not the one it was given (here: a pid that is not its parent) and starts nothing."""
    marker = tmp_path / "started"
    other = os.getppid()  # not the parent of the child: as if ours had died and it had been adopted
    proc = subprocess.run(guard.argv(["touch", str(marker)], parent=other), capture_output=True, text=True)
    assert proc.returncode == guard.GONE_CODE
    assert f"({other}) is gone; not starting it" in proc.stderr
    assert not marker.exists()


def test_a_program_that_cannot_run_leaves_an_error_record(way, tmp_path):
    script = tmp_path / "train"
    script.write_text("#!/nonexistent/interpreter\necho never\n")
    script.chmod(0o755)
    error_file = tmp_path / "error.json"
    proc = subprocess.run(guard.argv([str(script)]), capture_output=True, text=True,
                          env={**os.environ, "SAGEMAKER_ERROR_FILE": str(error_file)})
    assert proc.returncode == 127
    record = json.loads(error_file.read_text())
    assert record["type"] == "FileNotFoundError"
    assert record["message"] == f"cannot run {script}: No such file or directory"
    assert f"sagemaker_training: cannot run {script}: No such file or directory" in proc.stderr


def test_a_directory_is_not_a_program(way, tmp_path):
    proc = subprocess.run(guard.argv([str(tmp_path)]), capture_output=True, text=True)
    assert proc.returncode == 126
    assert "Permission denied" in proc.stderr


def test_the_child_dies_with_the_thread_that_started_it(way):
    """A parent killed with SIGKILL takes the guarded child with it."""
    sleeper = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
    parent_code = ("import subprocess, sys\n"
                   "from sagemaker_training.supervision import guard\n"
                   f"guard._setpriv[:] = {guard._setpriv!r}\n"
                   f"subprocess.Popen(guard.argv([sys.executable, '-c', {sleeper!r}])).wait()\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # the child's own line: it runs
        pidfd = os.pidfd_open(child)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    try:
        assert select.select([pidfd], [], [], 30)[0], "the child outlived its parent"
    finally:
        os.close(pidfd)


def _spawned(program, environ, cwd=None) -> tuple:
    """(exit code, stdout, stderr) of ``program`` started by guard.spawn."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = guard.spawn(program, environ, cwd=cwd, stdout=out_w, stderr=err_w)
    finally:
        os.close(out_w)
        os.close(err_w)
    with open(out_r, "rb") as out, open(err_r, "rb") as err:
        stdout, stderr = out.read(), err.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), stdout.decode(), stderr.decode()


@pytest.mark.parametrize("oldpwd", [None, "", "/an/old/pwd"])
def test_spawn_runs_the_program_in_its_directory_in_a_session_of_its_own(way, tmp_path, oldpwd):
    """The supervisor's way (posix_spawn): the directory is entered by the guard, and the environment is
    still the one given exactly (PWD, and OLDPWD, which the shell's cd sets, put back or unset)."""
    environ = {"PATH": os.environ["PATH"], "PWD": "/given"}
    if oldpwd is not None:
        environ["OLDPWD"] = oldpwd
    probe = ("import json, os; env = dict(os.environ); env.pop('LC_CTYPE', None)\n"
             "print(os.getcwd(), os.getsid(0) == os.getpid(), json.dumps(env), sep='\\n')")
    code, out, _ = _spawned([sys.executable, "-c", probe], environ, cwd=str(tmp_path))
    assert code == 0
    cwd, own_session, seen = out.splitlines()
    assert (cwd, own_session) == (os.path.realpath(tmp_path), "True")
    assert json.loads(seen) == environ


def test_spawn_refuses_a_missing_directory_as_popen_does(way, tmp_path):
    with pytest.raises(FileNotFoundError):
        guard.spawn(["true"], dict(os.environ), cwd=str(tmp_path / "missing"))


def test_a_directory_gone_before_the_guard_enters_it_leaves_an_error_record(way, tmp_path):
    error_file = tmp_path / "error.json"
    environ = {**os.environ, "SAGEMAKER_ERROR_FILE": str(error_file)}
    proc = subprocess.run(guard.argv(["true"], environ=environ, cwd=str(tmp_path / "gone")), capture_output=True,
                          text=True, env=environ)
    assert proc.returncode == 127
    assert json.loads(error_file.read_text())["message"] == (f"cannot enter the directory {tmp_path / 'gone'}: "
                                                             "No such file or directory")


def test_spawn_passes_on_no_inheritable_descriptor(way):
    """As Popen's close_fds: a descriptor this process inherited (or made inheritable) stays here."""
    read, write = os.pipe()
    os.set_inheritable(write, True)
    try:
        code, out, _ = _spawned([sys.executable, "-c", f"import os; print(os.path.exists('/proc/self/fd/{write}'))"],
                                dict(os.environ))
    finally:
        os.close(read)
        os.close(write)
    assert (code, out.split()) == (0, ["False"])
