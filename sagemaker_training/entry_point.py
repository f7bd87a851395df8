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
import subprocess
import sys

from .errors import ClientError, Redactor, UserError

PIP_TAIL_LINES = 15


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
    if not path.startswith(os.path.normpath(code_dir) + os.sep):
        raise ClientError(f"sagemaker_program {program!r} points outside the code directory.")
    if os.path.isfile(path):
        return path
    if is_installable(code_dir):
        return path  # a module of the package, resolved by python -m after install
    raise ClientError(
        f"entry point {program!r} is not in the submit directory (it holds: {_listing(code_dir)}): "
        "check sagemaker_program and sagemaker_submit_directory."
    )


def install_requirements(code_dir: str, name: str = "requirements.txt", python: str | None = None) -> bool:
    """pip-install ``name`` from the code dir when it exists; True if it did."""
    path = os.path.join(code_dir, name or "requirements.txt")
    if not os.path.isfile(path):
        return False
    _pip([python or sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-r", path],
         code_dir, f"installing {name}")
    return True


def install_package(code_dir: str, python: str | None = None) -> None:
    _pip([python or sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "."],
         code_dir, "installing the submit directory as a package")


def _pip(argv, cwd: str, what: str) -> None:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    lines = []
    redact = Redactor()  # pip echoes requirement lines and URLs
    for raw in iter(proc.stdout.readline, b""):
        line = redact(raw.decode("utf-8", errors="replace").rstrip())
        sys.stderr.write(f"{line}\n")
        lines.append(line)
        del lines[:-PIP_TAIL_LINES]
    proc.stdout.close()
    code = proc.wait()
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
    except (OSError, SyntaxError, ValueError):
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


def child_environ(env, extra: dict | None = None, base=None) -> dict:
    """The environment of a user process: ours, every SM_* variable, the code
    dir first on PYTHONPATH, and ``extra``."""
    result = dict(os.environ if base is None else base)
    result.update(env.sm_env_vars())
    path = result.get("PYTHONPATH")
    result["PYTHONPATH"] = env.code_dir + (os.pathsep + path if path else "")
    if extra:
        result.update(extra)
    return result
