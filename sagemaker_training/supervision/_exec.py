"""Exec wrapper: ``python -I -S _exec.py PARENT_PID ARGV...`` becomes ARGV with a parent-death signal.

The supervisor starts every child through this file instead of setting
``PR_SET_PDEATHSIG`` in a ``preexec_fn`` (which Python documents as unsafe
while other threads run, and the supervisor's output threads always run).
Here, in a fresh single-threaded interpreter, it:

1. asks the kernel to SIGKILL this process when its parent dies
   (``prctl(PR_SET_PDEATHSIG, SIGKILL)``; the setting survives ``exec``);
2. exits at once if the parent already died (it is no longer PARENT_PID),
   since then no signal would ever come;
3. puts back the default handling of SIGPIPE and SIGXFSZ, which every
   Python interpreter ignores at start-up and ``exec`` would pass on;
4. replaces itself with ARGV (searched on ``PATH``), keeping the environment.

When ARGV cannot run, it writes an error record to ``$SAGEMAKER_ERROR_FILE``
(the format of :func:`sagemaker_training.errors.error_record`) and exits
126 or 127, as a shell does.

It is run by path with ``-I -S`` (no site, no environment variables read by
Python itself) and imports only ``os`` and ``_ctypes``: this keeps its cost
to a bare interpreter start, about 10 ms (measured against ``/bin/true``
and ``python -I -S -c pass``; ``import ctypes`` would add 4-7 ms more). It
must stay free of imports from the package.
"""

import os
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9
SIGPIPE = 13
SIGXFSZ = 25
SIG_DFL = 0


def _libc_call():
    """``call(name, *int_args)``: a libc function called with int arguments.

    ``_ctypes`` (ctypes' C core; importing ``ctypes`` itself costs half an
    interpreter start more) where it has ``call_function`` (CPython 3.11 to
    3.13), else ``ctypes``."""
    import _ctypes  # noqa: PLC0415

    if hasattr(_ctypes, "call_function"):
        handle = _ctypes.dlopen(None)
        return lambda name, *args: _ctypes.call_function(_ctypes.dlsym(handle, name), args)
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    return lambda name, *args: getattr(libc, name)(*(ctypes.c_long(arg) for arg in args))


def _prepare(parent: int) -> None:
    call = _libc_call()
    call("prctl", PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before the prctl: nothing would kill us later
        os._exit(137)
    for signum in (SIGPIPE, SIGXFSZ):
        call("signal", signum, SIG_DFL)


def _report(argv0: str, exc: OSError) -> int:
    path = os.environ.get("SAGEMAKER_ERROR_FILE")
    if path:
        import json  # noqa: PLC0415 - only on this failure path
        import time  # noqa: PLC0415

        record = {"type": type(exc).__name__, "message": f"cannot run {argv0}: {exc.strerror}", "traceback": "",
                  "user_function": None, "kind": None, "pid": os.getpid(), "timestamp": time.time()}
        try:
            with open(path, "x", encoding="utf-8") as f:
                json.dump(record, f)
        except OSError:
            pass
    sys.stderr.write(f"sagemaker_training: cannot run {argv0}: {exc.strerror}\n")
    sys.stderr.flush()
    return 127 if isinstance(exc, FileNotFoundError) else 126


def main(argv) -> int:
    parent, command = int(argv[0]), argv[1:]
    _prepare(parent)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        return _report(command[0], exc)
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
