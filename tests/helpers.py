"""Shared test helpers: a job's base dir on disk and the real ``train`` process.

``write_base_dir`` lays out what the platform leaves in ``/opt/ml`` (the
three config files, channel dirs, optionally the code dir) and returns the
base dir; ``run_train`` runs the installed ``train`` entrypoint on it as a
real subprocess with a clean environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

_BIN = os.path.dirname(sys.executable)
TRAIN = os.path.join(_BIN, "train")
# The entrypoint as the image runs it; ``python -m`` where no console script is installed.
TRAIN_ARGV = [TRAIN] if os.path.exists(TRAIN) else [sys.executable, "-m", "sagemaker_training.train"]

# Variables of the test runner's own environment that would change how a job runs.
_JOB_VARIABLE_PREFIXES = ("SM_", "SAGEMAKER_", "AWS_", "TF_CONFIG", "DMLC_")


# A user's script that saves a checkpoint when SIGTERM comes (StopTrainingJob, `docker stop`), after
# it has said it is running (model/ready).
SIGTERM_SCRIPT = """
    import os, signal, sys, time
    def on_term(signum, frame):
        print(f"user handler: signal {signum}, saving a checkpoint", flush=True)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint"), "w") as f:
            f.write(f"saved on signal {signum}")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    open(os.path.join(os.environ["SM_MODEL_DIR"], "ready"), "w").close()
    while True:
        time.sleep(0.1)
"""


def sdk_encode(hyperparameters: dict) -> dict:
    """Hyperparameters as the SageMaker Python SDK writes them: every value JSON-encoded."""
    return {name: json.dumps(value) for name, value in hyperparameters.items()}


def write_base_dir(
    root,
    hyperparameters: dict | None = None,
    *,
    program: str | None = None,
    code: dict | None = None,
    hosts=("algo-1",),
    current_host: str | None = None,
    channels: dict | None = None,
    network_interface_name: str = "eth0",
) -> str:
    """Write a job's base dir under ``root`` and return its path.

    ``hyperparameters`` are written as given (every value should be a string, as
    on the platform; see :func:`sdk_encode`). ``program`` adds a JSON-encoded
    ``sagemaker_program``. ``code`` (file name -> text, dedented; ``/`` makes
    sub-directories) is written to ``<base>/code``, the code dir a job uses when
    no ``sagemaker_submit_directory`` is given. ``channels`` maps a channel name
    to a dict of file name -> text (default: one empty ``training`` channel).
    """
    base = os.path.abspath(str(root))
    config = os.path.join(base, "input", "config")
    os.makedirs(config, exist_ok=True)
    hps = dict(hyperparameters or {})
    if program is not None:
        hps["sagemaker_program"] = json.dumps(program)
    channels = {"training": {}} if channels is None else channels
    resource = {
        "current_host": current_host or hosts[0],
        "hosts": list(hosts),
        "network_interface_name": network_interface_name,
    }
    data_config = {
        name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
               "RecordWrapperType": "None", "ContentType": "text/csv"}
        for name in channels
    }
    for name, content in (("hyperparameters.json", hps), ("resourceconfig.json", resource),
                          ("inputdataconfig.json", data_config)):
        with open(os.path.join(config, name), "w", encoding="utf-8") as f:
            json.dump(content, f)
    for name, files in channels.items():
        write_files(os.path.join(base, "input", "data", name), files or {})
    if code is not None:
        write_files(os.path.join(base, "code"), code)
    return base


def write_files(directory: str, files: dict) -> str:
    """``files`` (relative name -> text or bytes) under ``directory``; returns it."""
    os.makedirs(directory, exist_ok=True)
    for name, content in files.items():
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, bytes):
            with open(path, "wb") as f:
                f.write(content)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(content))
    return directory


def train_env(base_dir: str, extra: dict | None = None) -> dict:
    """A clean environment for ``train``: ours without job variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_JOB_VARIABLE_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env["SAGEMAKER_BASE_DIR"] = base_dir
    env.setdefault("SAGEMAKER_TERMINATION_GRACE_SECONDS", "5")
    env.update(extra or {})
    return env


def run_train(base_dir: str, env: dict | None = None, timeout: float = 60, args=()) -> subprocess.CompletedProcess:
    """Run ``train`` on ``base_dir`` to the end. stdout/stderr are decoded with
    replacement (the child's bytes may be anything)."""
    proc = subprocess.run([*TRAIN_ARGV, *args], env=train_env(base_dir, env), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)
    proc.stdout = proc.stdout.decode("utf-8", errors="replace")
    proc.stderr = proc.stderr.decode("utf-8", errors="replace")
    return proc


def start_train(base_dir: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start ``train`` in the background (its output to files or pipes as given)."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(TRAIN_ARGV, env=train_env(base_dir, env), **kwargs)


def wait_for_file(path: str, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    """Block until ``path`` exists; fail early when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"train exited with {proc.returncode} before {path} appeared")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.02)


def read_failure(base_dir: str) -> str:
    with open(os.path.join(base_dir, "output", "failure"), encoding="utf-8") as f:
        return f.read()


def succeeded(base_dir: str) -> bool:
    return os.path.exists(os.path.join(base_dir, "output", "success"))


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


LONG_LINE_MIB = 64  # what the long-line writer sends, with no newline at all


def long_line_writer(stream: str = "stdout", mib: int = LONG_LINE_MIB, then: str = "", code: int = 0) -> list:
    """argv of a child that writes ``mib`` MiB with no newline to ``stream`` (1 MiB at a time: the
    child itself stays small), then ``then``, and exits ``code``."""
    script = (f"import sys\nout = sys.{stream}.buffer\nchunk = b'z' * 2**20\n"
              f"for _ in range({mib}):\n    out.write(chunk)\nout.write({then.encode()!r})\nout.flush()\n"
              f"sys.exit({code})\n")
    return [sys.executable, "-c", script]


class CountingSink:
    """A text stream stand-in that keeps no text: how much was written, in how many writes, the
    largest write, and the last characters."""

    def __init__(self):
        self.chars = 0
        self.writes = 0
        self.largest = 0
        self.last = ""

    def write(self, text: str) -> int:
        self.chars += len(text)
        self.writes += 1
        self.largest = max(self.largest, len(text))
        self.last = (self.last + text)[-1000:]
        return len(text)

    def flush(self) -> None:
        pass


def peak_python_memory(call):
    """(what ``call()`` returned or raised, the peak of Python's allocations while it ran, in bytes)."""
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
