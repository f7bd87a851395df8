"""The exec guard: a child that dies with the process that started it, without ``preexec_fn``.

:func:`argv` puts a prefix before a program's command line. The program
started through it, by ``subprocess.Popen`` (whose ``restore_signals``, the
default, puts back the default handling of SIGPIPE and SIGXFSZ that every
Python interpreter ignores) or by :func:`spawn` (``os.posix_spawn``, which
does the same: the supervisor's way, with no subprocess import on every
start), becomes ARGV in the same process after:

1. ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills it when the thread
   that started it ends (the setting survives ``exec``);
2. a check that its parent is still the process that started it: one that
   died before the ``prctl`` would never send the signal, so the child then
   exits 137 at once, saying so.

The supervisor starts every child this way, and ``serve`` its job processes
and its S3 server: ``preexec_fn`` is unsafe in a program whose threads run,
and theirs always do.

Two ways, the same guarantees:

* util-linux's ``setpriv --pdeathsig KILL`` (in every Debian and Ubuntu
  base, util-linux 2.33 and later), then ``/bin/sh`` for the parent check
  (``$PPID``) and the ``exec``: about 1 ms, two small C programs. The shell
  puts back the ``PWD`` it was given; an environment it would not pass on
  whole (a variable whose name is no shell name) takes the second way. When
  the ``exec`` fails, the shell's exit trap hands over to the second way,
  which fails the same and writes the error record;
* this file run by path as ``python -I -S guard.py PARENT CWD ARGV...`` (no
  site, only ``os`` and ``_ctypes`` imported), where ``setpriv`` is missing or too
  old: a bare interpreter start, 10 ms or more. It also resets SIGPIPE and
  SIGXFSZ itself (its own interpreter ignored them again). When ARGV cannot
  run it writes an error record to ``$SAGEMAKER_ERROR_FILE`` (the schema of
  :func:`sagemaker_training.errors.error_record`) and exits 126 or 127, as
  a shell does.

This file must stay free of imports from the package: it runs without it.
"""

import os
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9
SIGPIPE = 13
SIGXFSZ = 25
SIG_DFL = 0
GONE_CODE = 137  # as if the signal had come
_SETPRIV_PATHS = ("/usr/bin/setpriv", "/bin/setpriv")
_SHELL = "/bin/sh"
# $1: the parent's pid; $2 $3: the Python fallback (interpreter, this file); $4: "-" or "=" and the
# PWD the program gets (the shell would set its own); $5: the directory to run it in ("" for this one;
# the OLDPWD that cd sets is put back); then the program. A directory it cannot enter hands over to
# the fallback, which says why.
_SCRIPT = ('p=$1 py=$2 g=$3 w=$4 d=$5; shift 5; if [ -n "$d" ]; then o=${OLDPWD+=}${OLDPWD-}; '
           'cd -P -- "$d" 2>/dev/null || exec "$py" -I -S "$g" "$p" "$d" "$@"; '
           'case $o in "") unset OLDPWD;; *) export OLDPWD="${o#=}";; esac; fi; '
           'case $w in -) unset PWD;; *) export PWD="${w#=}";; esac; '
           '[ "$PPID" = "$p" ] || { echo "sagemaker_training: the process that started $1 ($p) is gone; not '
           'starting it" >&2; exit 137; }; trap \'exec "$py" -I -S "$g" "$p" "" "$@"\' EXIT; exec "$@"')
_setpriv: list = []  # [path or None], found once per process


def _find_setpriv():
    """``setpriv``'s path when it has ``--pdeathsig`` (read from the binary: no process started), else None."""
    if not _setpriv:
        found = None
        for path in _SETPRIV_PATHS:
            try:
                with open(path, "rb") as f:
                    if b"pdeathsig" in f.read() and os.access(_SHELL, os.X_OK):
                        found = path
                        break
            except OSError:
                continue
        _setpriv.append(found)
    return _setpriv[0]


def _shell_keeps(environ) -> bool:
    """Whether ``/bin/sh`` passes ``environ`` on as it is: a POSIX shell drops the variables whose
    names are no shell names (``SM_CHANNEL_EVAL-SET``, ``SM_HP_LEARNING-RATE``)."""
    return all(name.isascii() and name.isidentifier() for name in environ)


def argv(program: list, parent: int | None = None, environ=None, cwd: str | None = None) -> list:
    """``program`` under the guard of ``parent`` (this process by default), for ``subprocess.Popen``
    (``restore_signals`` left at its default) called from the thread that outlives the child, with
    ``environ`` (``os.environ`` by default), which the program gets exactly; in ``cwd`` (an absolute
    path) when given (:func:`spawn` has no other way to set it)."""
    parent = os.getpid() if parent is None else parent
    environ = os.environ if environ is None else environ
    fallback = [sys.executable, "-I", "-S", os.path.abspath(__file__)]
    setpriv = _find_setpriv()
    if setpriv is None or not _shell_keeps(environ):
        return [*fallback, str(parent), cwd or "", *program]
    pwd = environ.get("PWD")
    return [setpriv, "--pdeathsig", "KILL", "--", _SHELL, "-c", _SCRIPT, "sh", str(parent), *fallback[:1],
            fallback[-1], "-" if pwd is None else f"={pwd}", cwd or "", *program]


def spawn(program: list, environ: dict, cwd: str | None = None, stdout: int | None = None,
          stderr: int | None = None) -> int:
    """Start ``program`` under the guard with ``os.posix_spawn``; returns its pid.

    What ``subprocess.Popen(argv(...), start_new_session=True, stdin=DEVNULL)`` does, without
    importing subprocess (and selectors, signal, locale ... with it) on every start: a session of
    its own, SIGPIPE and SIGXFSZ back at their defaults, stdin ``/dev/null``, stdout and stderr the
    given file descriptors, none of this process's other inheritable descriptors (``close_fds``),
    ``environ`` exactly, and ``cwd``: a directory that is not there raises FileNotFoundError here,
    as Popen does."""
    if cwd is not None:
        cwd = os.path.abspath(cwd)
        if not os.path.isdir(cwd):
            raise FileNotFoundError(2, os.strerror(2), cwd)
    args = argv(program, environ=environ, cwd=cwd)
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    for target, fd in ((1, stdout), (2, stderr)):
        if fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, fd, target))
    actions.extend((os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds())
    return os.posix_spawn(args[0], args, environ, file_actions=actions, setsid=True, setsigdef=(SIGPIPE, SIGXFSZ))


def _inheritable_fds() -> list:
    """This process's inheritable descriptors above 2 (Python makes its own non-inheritable: these came
    from whoever started it, or were made so on purpose)."""
    found = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return found


# -- the Python fallback: ``python -I -S guard.py PARENT CWD ARGV...`` (CWD "": stay where it is) ---------

def libc_call():
    """``call(name, *args)``: a libc function called with int arguments (or ``int_ref`` pointers).

    ``_ctypes`` (ctypes' C core; importing ``ctypes`` itself costs half an
    interpreter start more) where it has ``call_function`` (CPython 3.11 to
    3.13), else ``ctypes``. Used here and by the supervisor (orphans.py)."""
    import _ctypes  # noqa: PLC0415

    if hasattr(_ctypes, "call_function"):
        handle = _ctypes.dlopen(None)
        return lambda name, *args: _ctypes.call_function(_ctypes.dlsym(handle, name), args)
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    return lambda name, *args: getattr(libc, name)(*(ctypes.c_long(a) if isinstance(a, int) else a for a in args))


def int_ref():
    """(a C int holding 0, a pointer to it) for :func:`libc_call`: ``value.value`` reads it."""
    import _ctypes  # noqa: PLC0415

    class CInt(_ctypes._SimpleCData):  # ctypes.c_int, without importing ctypes
        _type_ = "i"

    value = CInt(0)
    return value, _ctypes.byref(value)


def _prepare(parent: int, program: str) -> None:
    call = libc_call()
    call("prctl", PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl: nothing would kill us later
        sys.stderr.write(f"sagemaker_training: the process that started {program} ({parent}) is gone; "
                         "not starting it\n")
        sys.stderr.flush()
        os._exit(GONE_CODE)
    for signum in (SIGPIPE, SIGXFSZ):
        call("signal", signum, SIG_DFL)


def _report(argv0: str, exc: OSError, what: str = "run") -> int:
    path = os.environ.get("SAGEMAKER_ERROR_FILE")
    if path:
        import json  # noqa: PLC0415 - only on this failure path
        import time  # noqa: PLC0415

        # errors.error_record's schema (this file cannot import the package)
        record = {"type": type(exc).__name__, "message": f"cannot {what} {argv0}: {exc.strerror}", "traceback": "",
                  "user_function": None, "kind": None, "pid": os.getpid(), "timestamp": time.time()}
        try:
            with open(path, "x", encoding="utf-8") as f:
                json.dump(record, f)
        except OSError:
            pass
    sys.stderr.write(f"sagemaker_training: cannot {what} {argv0}: {exc.strerror}\n")
    sys.stderr.flush()
    return 127 if isinstance(exc, FileNotFoundError) else 126


def main(args) -> int:
    parent, cwd, command = int(args[0]), args[1], args[2:]
    _prepare(parent, command[0])
    if cwd:
        try:
            os.chdir(cwd)
        except OSError as exc:
            return _report(cwd, exc, what="enter the directory")
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        return _report(command[0], exc)
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
