"""One MPI rank: ``python -m sagemaker_training.mpi.rank -- ARGV...`` (started by the MPI daemon).

It gives the rank its own host's view of the job, runs ARGV as its child,
and leaves a record of how it ended:

* the ``SM_*`` variables crossed from the first host with ``-x``; here they
  are replaced by this host's own (``SM_CURRENT_HOST``, its channel dirs);
  where this host's base dir differs from the first host's (local mode),
  paths under the first host's base dir in ARGV and the environment point
  at this host's copy instead;
* a Python entry point runs through :func:`run_python`: an uncaught
  exception (or ``sys.exit`` with an error) prints its traceback and ends
  the process at once, without ``MPI_Finalize``, which would wait forever
  for the ranks still computing: the daemon then sees the failure and ends
  the whole job;
* the child's stderr passes through, its last lines kept; when the child
  fails (not when the daemon stops it), one marker line
  (:data:`MARKER` + the JSON of :func:`..errors.process_record`, the one
  error-record schema: host, rank, exit code, message, stderr tail) goes
  to stderr, where the launcher on the first host finds it in mpirun's
  output, and the same record goes to this host's state dir, where its
  worker finds it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

MARKER = "SAGEMAKER_MPI_RANK_FAILED "
TAIL_LINES = 20
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")


def rank_number(environ) -> int | None:
    for name in RANK_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def host_view(argv: list, environ: dict) -> tuple[list, dict, str]:
    """(argv, environment, host name) with this host's base dir and SM_* values."""
    from .. import mpi  # noqa: PLC0415
    from ..environment import Environment, base_dir_from  # noqa: PLC0415

    environ = dict(environ)
    environ.pop("SAGEMAKER_ERROR_FILE", None)  # the launcher's own: never a rank's
    own = os.path.abspath(base_dir_from(environ))
    first = environ.get(mpi.LAUNCH_BASE_ENV)
    if first and os.path.abspath(first) != own:
        first = os.path.abspath(first)

        def moved(text: str) -> str:
            return text.replace(first + os.sep, own + os.sep) if first + os.sep in text else text

        argv = [moved(arg) for arg in argv]
        environ = {name: moved(value) for name, value in environ.items()}
    try:
        env = Environment(own, environ)
    except Exception:  # noqa: BLE001 - no readable job here: keep what crossed
        return argv, environ, environ.get("SM_CURRENT_HOST") or os.uname().nodename
    environ.update(env.sm_env_vars())
    return argv, environ, env.current_host


def python_argv(argv: list) -> list:
    """ARGV through :func:`run_python` when it runs a Python script or module."""
    if len(argv) >= 2 and os.path.basename(argv[0]).startswith("python") and (
            argv[1].endswith(".py") or argv[1] == "-m"):
        return [argv[0], "-m", "sagemaker_training.mpi.rank", "--python", *argv[1:]]
    return argv


def run_python(args: list) -> None:
    """``SCRIPT ARGS`` or ``-m MODULE ARGS`` as ``__main__``; a failure ends the process at once."""
    import runpy  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    module = args[0] == "-m"
    target = args[1] if module else args[0]
    sys.argv = [target, *args[2 if module else 1:]]
    if not module:
        sys.path[0] = os.path.dirname(os.path.abspath(target))
    code = 0
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        if exc.code in (None, 0):
            raise
        if not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - every failure of the user's code
        frames = exc.__traceback__
        while frames is not None and (frames.tb_frame.f_code.co_filename == __file__
                                      or frames.tb_frame.f_code.co_filename.startswith("<frozen runpy")):
            frames = frames.tb_next  # the user's frames only, as when Python runs the script itself
        traceback.print_exception(type(exc), exc, frames)
        code = 1
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def failure_text(record: dict) -> str:
    """A failed rank's record as a failure reason: the headline names host and rank; its stderr follows."""
    who = f"rank {record.get('rank')} on host {record.get('host')}"
    text = f"UserError: {who} {record.get('message')}. Fix the training code"
    tail = record.get("tail") or []
    if not tail:
        return text + ".\n"
    return text + "; its last stderr lines follow.\n\n" + f"Last stderr lines of {who}:\n" + "\n".join(tail) + "\n"


def exit_status(record: dict) -> int:
    """The exit code a host passes on for a failed rank: the rank's own, or 128+signal."""
    code = record.get("exit_code")
    if not isinstance(code, int) or code == 0:
        return 1
    return 128 - code if code < 0 else code


CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL)


def cause_first(record: dict) -> tuple:
    """The order in which failed ranks are reported: those whose code raised an exception or
    crashed (a fatal signal of its own) first, then the others, which are mostly ranks MPI ended
    because a peer had died (Open MPI's abort: exit code 14, no traceback, and not always later
    by the clock; or SIGKILL/SIGTERM); within each, the oldest first."""
    code = record.get("exit_code")
    own = bool(record.get("exception")) or (isinstance(code, int) and -code in CRASH_SIGNALS)
    return (not own, record.get("timestamp") or 0)


def read_records(state: str) -> list[dict]:
    """Every rank record in ``state``, the likeliest cause first (:func:`cause_first`)."""
    from ..errors import read_error_record  # noqa: PLC0415

    try:
        names = sorted(os.listdir(state))
    except OSError:
        return []
    found = [read_error_record(os.path.join(state, name)) for name in names
             if name.startswith("rank-") and name.endswith(".json")]
    return sorted((r for r in found if r is not None), key=cause_first)


def record_path(state: str, rank: int | None) -> str:
    return os.path.join(state, f"rank-{'unknown' if rank is None else rank}.json")


def start_forwarding(argv: list, environ: dict | None = None) -> tuple[subprocess.Popen, list]:
    """``argv`` as a child with its stderr piped; SIGTERM and SIGINT go on to it from now on.
    The list collects the signals passed on."""
    from ..supervision import signals  # noqa: PLC0415

    child = subprocess.Popen(argv, env=environ, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    return child, signals.forward_to(child)


def main(argv: list) -> int:
    from .. import mpi  # noqa: PLC0415
    from ..errors import process_record, write_error_record  # noqa: PLC0415
    from ..supervision import streams  # noqa: PLC0415
    from ..supervision.failures import exception_from_stderr  # noqa: PLC0415
    from ..supervision.signals import name as signal_name  # noqa: PLC0415

    argv, environ, host = host_view(argv, os.environ)
    rank = rank_number(environ)
    child, stopped = start_forwarding(python_argv(argv), environ)
    tail = streams.Tail(TAIL_LINES)
    for text, end_of_line in streams.pieces(child.stderr):
        sys.stderr.write(f"{text}\n" if end_of_line else text)
        sys.stderr.flush()
        tail.take(text, end_of_line)
    tail = tail.lines()
    code = child.wait()
    failed = code != 0 and not stopped
    exception = None
    if code < 0:
        message = f"was killed by {signal_name(-code)}"
    else:
        exception = exception_from_stderr(tail)
        message = f"exited with code {code}" + (f": {exception}" if exception else "")
    result = process_record(message, host=host, rank=rank, exit_code=code, failed=failed, exception=exception,
                            tail=tail)
    if failed:
        sys.stderr.write(MARKER + json.dumps(result) + "\n")
        sys.stderr.flush()
    state = mpi.state_dir(host, environ)
    try:
        os.makedirs(state, exist_ok=True)
    except OSError:
        pass
    write_error_record(result, record_path(state, rank), first_wins=False)
    return exit_status(result) if code else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--python":
        run_python(sys.argv[2:])
    else:
        args = sys.argv[1:]
        sys.exit(main(args[1:] if args and args[0] == "--" else args))
