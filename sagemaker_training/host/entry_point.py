"""The user's code: its requirements, how to run it, what it sees.

An entry point is one of:

* a Python script (``train.py``): run as ``python train.py --hp value ...``;
* a shell script (``train.sh``): run with ``/bin/sh``;
* an installable package (the submit directory has ``setup.py``,
  ``setup.cfg`` or ``pyproject.toml``): ``pip install .``, then run as
  ``python -m <module>``;
* any other executable file, run directly.
"""

from __future__ import annotations

import os
import signal
import sys

from ..core import logs
from ..errors import ClientError, Redactor, UserError

PIP_TAIL_LINES = 15
DEFAULT_REQUIREMENTS = "requirements.txt"
# The kernel's bound on one argument or environment string, its NUL included
# (MAX_ARG_STRLEN, 32 pages of 4 KiB): execve fails with E2BIG past it.
MAX_ARG_STRLEN = 131072
# SM_* variables that repeat what a file already holds; one too long to pass
# is left out (with a log line), the file is still there.
_AGGREGATES = {
    "SM_HPS": "input/config/hyperparameters.json", "SM_USER_ARGS": "the command-line arguments",
    "SM_TRAINING_ENV": "input/config/*.json (or sagemaker_training.environment.Environment())",
    "SM_FRAMEWORK_PARAMS": "input/config/hyperparameters.json",
    "SM_INPUT_DATA_CONFIG": "input/config/inputdataconfig.json", "SM_CHANNELS": "input/config/inputdataconfig.json",
    "SM_RESOURCE_CONFIG": "input/config/resourceconfig.json", "SM_HOSTS": "input/config/resourceconfig.json",
}


def _listing(directory: str) -> str:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return "(the directory does not exist)"
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return shown or "(empty)"


def is_installable(code_dir: str) -> bool:
    return any(os.path.exists(os.path.join(code_dir, name)) for name in ("setup.py", "setup.cfg", "pyproject.toml"))


def locate(code_dir: str, program: str | None) -> str:
    """Absolute path of the entry point, or a ClientError that says what is there."""
    if not program:
        raise ClientError(
            "hyperparameter sagemaker_program is not set: name the entry point script "
            "(the SDK's entry_point), e.g. \"train.py\"."
        )
    path = os.path.normpath(os.path.join(code_dir, program))
    if not _inside(path, code_dir):
        raise ClientError(f"sagemaker_program {program!r} points outside the code directory.")
    if os.path.lexists(path) and not _inside(os.path.realpath(path), os.path.realpath(code_dir)):
        raise ClientError(f"sagemaker_program {program!r} is a symbolic link to {os.path.realpath(path)}, outside "
                          "the code directory: ship the entry point itself in the submit directory.")
    if os.path.isfile(path):
        return path
    if is_installable(code_dir):
        return path  # a module of the package, resolved by python -m after install
    raise ClientError(
        f"entry point {program!r} is not in the submit directory (it holds: {_listing(code_dir)}): "
        "check sagemaker_program and sagemaker_submit_directory."
    )


def _inside(path: str, directory: str) -> bool:
    return path.startswith(os.path.normpath(directory) + os.sep)


def install_requirements(code_dir: str, name: str | None = DEFAULT_REQUIREMENTS, python: str | None = None) -> bool:
    """pip-install ``name`` from the code dir; True if it did.

    The default requirements.txt is optional; a file named by
    sagemaker_requirements must exist, and inside the code dir.
    """
    name = name or DEFAULT_REQUIREMENTS
    path = os.path.normpath(os.path.join(code_dir, name))
    real_code_dir = os.path.realpath(code_dir)
    if not _inside(path, code_dir) or (os.path.lexists(path) and not _inside(os.path.realpath(path), real_code_dir)):
        raise ClientError(f"sagemaker_requirements {name!r} is outside the code directory: name a file of the "
                          "submit directory, relative to it (e.g. \"requirements.txt\").")
    if not os.path.isfile(path):
        if name == DEFAULT_REQUIREMENTS:
            return False
        raise ClientError(f"sagemaker_requirements {name!r} is not in the submit directory (it holds: "
                          f"{_listing(code_dir)}): check the name or add the file.")
    _pip([python or sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-r", path],
         code_dir, f"installing {name}")
    return True


def install_package(code_dir: str, python: str | None = None) -> None:
    _pip([python or sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "."],
         code_dir, "installing the submit directory as a package")


def _pip(argv, cwd: str, what: str) -> None:
    import subprocess  # noqa: PLC0415 - only when there is something to install: not on every start
    from ..supervision import streams  # noqa: PLC0415 - the supervisor's; the TensorFlow children import this module

    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    tail = streams.Tail(PIP_TAIL_LINES)
    redact = Redactor()  # pip echoes requirement lines and URLs
    try:
        for text, end_of_line in streams.pieces(proc.stdout):
            text = redact(text)
            sys.stderr.write(f"{text}\n" if end_of_line else text)
            sys.stderr.flush()
            tail.take(text, end_of_line)
    except BaseException:  # a stop (SIGTERM) while pip runs: pip and what it started end too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    code = proc.wait()
    lines = [line.rstrip() for line in tail.lines()]
    if code != 0:
        last = next((line for line in reversed(lines) if line.strip()), "")
        raise UserError(
            f"{what} failed (pip exit code {code}): {last.strip()} Fix the requirements and run again; "
            "pip's last lines follow.",
            details="\n".join(lines),
            exit_code=code,
        )


def command(code_dir: str, program: str, args: list, python: str | None = None) -> list:
    """The argv that runs the entry point with ``args``."""
    python = python or sys.executable
    path = os.path.join(code_dir, program)
    if program.endswith(".py") and os.path.isfile(path):
        return [python, path, *args]
    if program.endswith(".sh"):
        return ["/bin/sh", path, *args]
    if not os.path.isfile(path):  # a module of an installed package
        module = program[:-3] if program.endswith(".py") else program
        return [python, "-m", module.replace(os.sep, "."), *args]
    if os.access(path, os.X_OK):
        return [path, *args]
    return [python, path, *args]


def defines_top_level(path: str, names) -> set:
    """Which of ``names`` the Python file defines at top level (functions,
    assignments, imports), decided from its syntax tree without running it."""
    import ast  # noqa: PLC0415 - only the framework runners parse user modules

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):  # the parser's limits too
        return set()
    wanted = set(names)
    found = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).split(".")[0] for a in node.names)
    return found & wanted


# Python 2 in a file that does not parse as Python 3: the parser's message, or the line's text.
_PYTHON2_MESSAGES = ("Missing parentheses in call to 'print'", "Missing parentheses in call to 'exec'",
                     "multiple exception types must be parenthesized", "leading zeros in decimal integer literals",
                     "Function parameters cannot be parenthesized")
_PYTHON2_LINE = (r"^\s*raise\s+[\w.]+\s*,", r"`", r"<>", r"\b\d+[lL]\b", r"\b[uU][rR]['\"]")


def _python3_syntax_error(path: str) -> SyntaxError | None:
    try:
        with open(path, "rb") as f:
            compile(f.read(), path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # TabError and IndentationError too
        return exc
    except (OSError, ValueError, RecursionError, MemoryError):  # not Python 2: Python 3's own limits
        return None
    return None


def python2_error(path: str) -> UserError | None:
    """The UserError for a Python file that is Python 2 (``print "x"``,
    ``except E, e``, ...), naming the file and the line; None otherwise."""
    import re  # noqa: PLC0415

    exc = _python3_syntax_error(path)
    if exc is None:
        return None
    text = (exc.text or "").strip()
    if not (any(exc.msg.startswith(m) for m in _PYTHON2_MESSAGES)
            or (exc.msg in ("invalid syntax", "invalid decimal literal")
                and any(re.search(pattern, text) for pattern in _PYTHON2_LINE))):
        return None
    name = os.path.basename(path)
    return UserError(
        f"{name} is Python 2 code (line {exc.lineno}: {text}), and this container runs Python 3 "
        f"({sys.version_info.major}.{sys.version_info.minor}): convert it with `2to3 -w {name}` (then review the "
        "changes) and run the job again."
    )


def defines_top_level_text(path: str, names) -> set:
    """For a Python file that does not parse as Python 3 (Python 2 code):
    which of ``names`` its unindented ``def`` lines define."""
    import re  # noqa: PLC0415

    if _python3_syntax_error(path) is None:
        return set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            defined = {m.group(1) for m in re.finditer(r"^(?:async\s+)?def\s+(\w+)\s*\(", f.read(), re.M)}
    except OSError:
        return set()
    return defined & set(names)


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogateescape")) + 1


def _passable_sm_vars(variables: dict) -> dict:
    """The SM_* variables, less the aggregates too long for the kernel to pass
    (a ClientError naming the limit for a single value that is too long)."""
    result = {}
    for name, value in variables.items():
        if _size(f"{name}={value}") <= MAX_ARG_STRLEN:
            result[name] = value
        elif name in _AGGREGATES:
            logs.get("entry_point").warning(
                "%s is not set: it would be %d bytes, over the kernel's limit of %d bytes for one environment "
                "variable (MAX_ARG_STRLEN); read %s instead", name, _size(f"{name}={value}"), MAX_ARG_STRLEN,
                _AGGREGATES[name])
        else:
            raise ClientError(f"{name} would be {_size(f'{name}={value}')} bytes, over the kernel's limit of "
                              f"{MAX_ARG_STRLEN} bytes for one environment variable (MAX_ARG_STRLEN): shorten the "
                              "value or pass it in a file (a channel).")
    return result


def has_main_guard(path: str) -> bool:
    """Whether the Python file has a top-level ``if __name__ == "__main__":``
    block: a script meant to be run (script mode), even when it also defines
    ``train`` or ``model_fn`` (the public script-mode examples do)."""
    import re  # noqa: PLC0415

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            source = f.read()
    except OSError:
        return False
    return re.search(r"""^if\s+\(?\s*__name__\s*==\s*['"]__main__['"]\s*\)?\s*:""", source, re.M) is not None


def child_environ(env, extra: dict | None = None, base=None) -> dict:
    """The environment of a user process: ours (less a stray TF_CONFIG: only
    a runner that sets up a cluster gives one, in ``extra``), every SM_*
    variable short enough to pass, the code dir first on PYTHONPATH, and ``extra``."""
    result = dict(os.environ if base is None else base)
    result.pop("TF_CONFIG", None)
    result.update(_passable_sm_vars(env.sm_env_vars()))
    path = result.get("PYTHONPATH")
    result["PYTHONPATH"] = env.code_dir + (os.pathsep + path if path else "")
    if extra:
        result.update(extra)
    return result


def check_exec_size(argv: list, environ: dict) -> None:
    """A ClientError naming the limit when the kernel could not start ``argv``
    with ``environ``: one string over MAX_ARG_STRLEN, or all of them (with
    their pointers) over ARG_MAX."""
    for arg in argv:
        if _size(arg) > MAX_ARG_STRLEN:
            raise ClientError(f"an argument of the entry point is {_size(arg)} bytes ({arg[:40]!r}...), over the "
                              f"kernel's limit of {MAX_ARG_STRLEN} bytes for one argument (MAX_ARG_STRLEN): shorten "
                              "the hyperparameter or pass it in a file (a channel).")
    total = sum(_size(a) + 8 for a in argv) + sum(_size(f"{k}={v}") + 8 for k, v in environ.items())
    limit = os.sysconf("SC_ARG_MAX")
    if total > limit:
        raise ClientError(f"the entry point's arguments and environment are {total} bytes, over the kernel's "
                          f"limit of {limit} bytes (ARG_MAX): send fewer or shorter hyperparameters, or pass them "
                          "in a file (a channel).")
