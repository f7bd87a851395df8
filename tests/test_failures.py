"""supervision/failures.py: a finished child as a one-line failure reason (its error record, its
signal, its exit code and stderr tail)."""

from __future__ import annotations

import signal

import pytest

from helpers import read_failure, run_train, succeeded
from supervision_helpers import job_with_script, py_argv
from sagemaker_training.supervision.processes import ProcessSpec, exception_from_stderr, supervise


def test_exit_code_is_passed_on_with_the_exception(tmp_path):
    base = job_with_script(tmp_path, """
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
    base = job_with_script(tmp_path, """
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
    base = job_with_script(tmp_path, f"""
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


def test_error_record_gives_the_exception_without_any_stderr(tmp_path):
    base = job_with_script(tmp_path, """
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
    base = job_with_script(tmp_path, """
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


def test_toolkit_child_failure_is_a_toolkit_error():
    outcome = supervise([ProcessSpec(name="parameter server", argv=py_argv("raise SystemExit(2)"), user_code=False)],
                        grace=5)
    reason = outcome.failure.reason()
    assert reason.startswith("ToolkitError: parameter server exited with code 2")
    assert "report it" in reason.splitlines()[0]
