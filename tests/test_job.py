"""Script mode end to end through the real ``train`` process.

The code arrives every way the contract allows (already in place, a local
directory, a local tarball, ``file://``, ``s3://`` on the test S3 endpoint);
the job leaves its model and ``output/success``, or ``output/failure`` whose
first line says the kind, what failed and what to do; secrets never reach a
log or the failure file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap

import pytest

from helpers import TRAIN_ARGV, read_failure, run_train, succeeded, train_env, write_base_dir, write_files
from sagemaker_training import train as job

TRAIN_SCRIPT = """
    import argparse, json, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAINING"])
    args = parser.parse_args()
    from helper_module import total  # a sibling module of the submit dir
    with open(os.path.join(args.train, "data.csv")) as f:
        rows = [list(map(float, line.split(","))) for line in f if line.strip()]
    with open(os.path.join(args.model_dir, "model.json"), "w") as f:
        json.dump({"epochs": args.epochs, "weights": total(rows)}, f)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as f:
        json.dump({"loss": 0.1}, f)
    print(f"trained {args.epochs} epochs")
"""

SOURCES = {"train.py": TRAIN_SCRIPT, "helper_module.py": "def total(rows):\n    return [sum(r) for r in rows]\n"}
CHANNELS = {"training": {"data.csv": "1,2\n3,4\n"}}


def _assert_trained(base: str, result, epochs: int = 3) -> None:
    assert result.returncode == 0, result.stderr
    with open(os.path.join(base, "model", "model.json")) as f:
        assert json.load(f) == {"epochs": epochs, "weights": [3.0, 7.0]}
    assert os.path.exists(os.path.join(base, "output", "data", "metrics.json"))
    with open(os.path.join(base, "output", "success")) as f:
        assert f.read() == ""
    assert not os.path.exists(os.path.join(base, "output", "failure"))
    assert f"trained {epochs} epochs" in result.stdout


def _sourcedir_tarball(path: str) -> str:
    """A sourcedir.tar.gz as the SDK makes it: the files at the archive's root."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in SOURCES.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


# ---------------------------------------------------------------------------
# Where the code comes from


def test_code_already_in_the_code_dir(tmp_path):
    base = write_base_dir(tmp_path, {"epochs": "3"}, program="train.py", code=SOURCES, channels=CHANNELS)
    result = run_train(base)
    _assert_trained(base, result)
    assert "training succeeded" in result.stderr


def test_submit_dir_is_a_local_directory(tmp_path):
    source = write_files(str(tmp_path / "source"), SOURCES)
    base = write_base_dir(tmp_path / "job", {"epochs": "3", "sagemaker_submit_directory": json.dumps(source)},
                          program="train.py", channels=CHANNELS)
    _assert_trained(base, run_train(base))


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_submit_dir_is_a_local_tarball(tmp_path, as_uri):
    tarball = _sourcedir_tarball(str(tmp_path / "sourcedir.tar.gz"))
    where = f"file://{tarball}" if as_uri else tarball
    base = write_base_dir(tmp_path / "job", {"epochs": "3", "sagemaker_submit_directory": json.dumps(where)},
                          program="train.py", channels=CHANNELS)
    _assert_trained(base, run_train(base))


def test_submit_dir_on_s3(tmp_path, s3, s3_endpoint):
    """The acceptance case: sourcedir.tar.gz on the S3 endpoint, as the SDK uploads it."""
    bucket = "sagemaker-us-west-2-000000000000"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    key = "iris-job-1/source/sourcedir.tar.gz"
    s3.upload_file(_sourcedir_tarball(str(tmp_path / "sourcedir.tar.gz")), bucket, key)
    base = write_base_dir(tmp_path / "job", {
        "epochs": "3",
        "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{key}"),
        "sagemaker_region": json.dumps("us-west-2"),
        "sagemaker_job_name": json.dumps("iris-job-1"),
    }, program="train.py", channels=CHANNELS)
    result = run_train(base, {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    })
    _assert_trained(base, result)


# ---------------------------------------------------------------------------
# The report


def test_a_new_run_replaces_the_old_report(tmp_path):
    base = write_base_dir(tmp_path, {"epochs": "3"}, program="train.py",
                          code={**SOURCES, "train.py": "raise SystemExit('not yet')\n"}, channels=CHANNELS)
    assert run_train(base).returncode == 1
    assert read_failure(base).startswith("UserError:") and not succeeded(base)
    write_files(os.path.join(base, "code"), SOURCES)
    _assert_trained(base, run_train(base))


def test_failure_kinds_say_what_failed_and_what_to_do(tmp_path):
    heads = {}
    # UserError: the user's code failed.
    base = write_base_dir(tmp_path / "user", program="train.py",
                          code={"train.py": "raise ValueError('labels must be integers')\n"})
    run_train(base)
    heads["UserError"] = read_failure(base).splitlines()[0]
    # ClientError: the job's input is wrong.
    base = write_base_dir(tmp_path / "client", program="train.py", code={"train.py": ""})
    os.remove(os.path.join(base, "input", "config", "resourceconfig.json"))
    run_train(base)
    heads["ClientError"] = read_failure(base).splitlines()[0]
    # PlatformError: what is around the container failed.
    base = write_base_dir(tmp_path / "platform", program="train.py", code={"train.py": ""},
                          hosts=["algo-1", "algo-2.invalid"])
    run_train(base, {"SAGEMAKER_HOST_WAIT_SECONDS": "1",
                     "SAGEMAKER_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1"})})
    heads["PlatformError"] = read_failure(base).splitlines()[0]

    assert heads["UserError"] == ("UserError: train.py exited with code 1: ValueError: labels must be integers. "
                                  "Fix the training code; its last stderr lines follow.")
    assert heads["ClientError"].startswith("ClientError: input/config/resourceconfig.json is missing")
    assert "create it" in heads["ClientError"]
    assert heads["PlatformError"].startswith("PlatformError: host algo-2.invalid did not resolve")
    assert "run the job again" in heads["PlatformError"]


def test_toolkit_error_when_sagemaker_training_itself_fails(tmp_path, monkeypatch, capsys):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": ""})

    def broken(env, log, guard=None):
        raise RuntimeError("an internal invariant broke")

    monkeypatch.setattr(job, "prepare", broken)
    code = job.run({"SAGEMAKER_BASE_DIR": base})
    assert code == 1
    failure = read_failure(base)
    head = failure.splitlines()[0]
    assert head.startswith("ToolkitError: RuntimeError: an internal invariant broke.")
    assert "report it with the log" in head
    assert "Traceback (most recent call last)" in failure  # for the bug report
    assert head in capsys.readouterr().err


def test_unknown_framework_is_a_client_error(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": "open('ran', 'w').close()\n"})
    result = run_train(base, {"SAGEMAKER_FRAMEWORK": "pytorch"})
    assert result.returncode == 1
    head = read_failure(base).splitlines()[0]
    assert head.startswith("ClientError: SAGEMAKER_FRAMEWORK='pytorch' is not a framework")
    assert "tensorflow, mxnet" in head
    assert not os.path.exists(os.path.join(base, "code", "ran"))


def test_failure_file_is_bounded_but_starts_with_the_reason(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": """
        import sys
        for i in range(40):
            print("noise " * 2000, file=sys.stderr)
        raise MemoryError("could not allocate the embedding table")
    """})
    assert run_train(base).returncode == 1
    failure = read_failure(base)
    assert len(failure) <= job.FAILURE_LIMIT
    assert "MemoryError: could not allocate the embedding table" in failure[:1024]


# ---------------------------------------------------------------------------
# How train is started


def test_ways_to_start_train(tmp_path):
    base = write_base_dir(tmp_path, {"epochs": "3"}, program="train.py", code=SOURCES, channels=CHANNELS)
    # docker run IMAGE train
    _assert_trained(base, run_train(base, args=["train"]))
    # python -m sagemaker_training.train, and the user-facing CLI
    for argv in ([sys.executable, "-m", "sagemaker_training.train"], [sys.executable, "-m", "sagemaker_training", "train"]):
        result = subprocess.run(argv, env=train_env(base), capture_output=True, text=True, timeout=60)
        _assert_trained(base, result)


def test_unexpected_arguments(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": ""})
    result = subprocess.run([*TRAIN_ARGV, "serve"], env=train_env(base), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage: train" in result.stderr
    assert not os.path.exists(os.path.join(base, "output"))


# ---------------------------------------------------------------------------
# Secrets

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEKj//////////wEaCXVzLWVzdC0yIkcwRQIhAKq4Tokenvalue+abc/def=="
OTHER_SECRET = "Zm9vYmFyYmF6cXV1eGZvb2JhcmJhenF1dXhmb28"  # not in the environment: caught by its shape


@pytest.mark.parametrize("record", [False, True], ids=["traceback", "error-record"])
def test_secrets_never_reach_logs_or_the_failure_file(tmp_path, record):
    decorate = "from sagemaker_training import errors\n@errors.record" if record else ""
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": f"""
import os, sys
print(dict(os.environ))
print("key is", os.environ["AWS_SECRET_ACCESS_KEY"], file=sys.stderr)
print("token:", os.environ["AWS_SESSION_TOKEN"], flush=True)
print("config says aws_secret_access_key = {OTHER_SECRET}", file=sys.stderr)
{decorate}
def main():
    raise PermissionError("AccessDenied for " + os.environ["AWS_SECRET_ACCESS_KEY"] + " " + os.environ["AWS_SESSION_TOKEN"])
main()
"""})
    result = run_train(base, {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                              "AWS_SESSION_TOKEN": SESSION_TOKEN})
    assert result.returncode == 1
    failure = read_failure(base)
    for text in (result.stdout, result.stderr, failure):
        for secret in (SECRET_KEY, SESSION_TOKEN, OTHER_SECRET):
            assert secret not in text
        assert "****" in text
    assert "PermissionError: AccessDenied for ****" in failure.splitlines()[0]
    assert "AKIAIOSFODNN7EXAMPLE" in result.stdout  # key ids are not secret: the log stays useful


# ---------------------------------------------------------------------------
# Signals before the training code runs


def _hanging_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers; (server, accepted)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, accepted


def _stop_when_connected(base, env, accepted, timeout=60):
    """Start train, SIGTERM it once it is blocked on the hanging server; (proc, seconds to exit, its
    children then: pid -> command line)."""
    import signal
    import time

    import psutil

    from helpers import kill_quietly, start_train

    proc = start_train(base, env)
    try:
        deadline = time.monotonic() + timeout
        while not accepted:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "train never reached the server"
            time.sleep(0.05)
        children = {c.pid: " ".join(c.cmdline()) for c in psutil.Process(proc.pid).children(recursive=True)}
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        return proc, time.monotonic() - started, children
    finally:
        kill_quietly(proc.pid)


def test_sigterm_during_the_code_fetch_stops_it_and_says_so(tmp_path):
    server, accepted = _hanging_server()
    uri = "s3://code-bucket/job/source/sourcedir.tar.gz"
    base = write_base_dir(tmp_path, {"sagemaker_submit_directory": json.dumps(uri)}, program="train.py")
    env = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{server.getsockname()[1]}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}
    try:
        proc, seconds, _ = _stop_when_connected(base, env, accepted)
    finally:
        server.close()
    assert proc.returncode == 143
    assert read_failure(base).splitlines()[0] == (
        f"Stopped: the container received SIGTERM while fetching the code from {uri}, before the training code "
        "started (StopTrainingJob, a spot interruption or the max run time); nothing was trained.")
    assert seconds < 10  # the transfer thread blocked on its read does not hold the exit
    assert not succeeded(base)


def test_sigterm_during_the_requirements_install_stops_pip_and_says_so(tmp_path):
    from helpers import pid_alive

    server, accepted = _hanging_server()
    index = f"http://127.0.0.1:{server.getsockname()[1]}/simple"
    base = write_base_dir(tmp_path, program="train.py", code={
        "train.py": "open('ran', 'w').close()\n",
        "requirements.txt": f"--index-url {index}\nsagemaker-training-test-package-that-hangs==1.0\n"})
    try:
        proc, seconds, children = _stop_when_connected(base, {}, accepted)
    finally:
        server.close()
    assert proc.returncode == 143
    assert read_failure(base).splitlines()[0] == (
        "Stopped: the container received SIGTERM while installing requirements.txt, before the training code "
        "started (StopTrainingJob, a spot interruption or the max run time); nothing was trained.")
    assert seconds < 10
    assert any(" -m pip install " in line for line in children.values()), children
    assert not [pid for pid in children if pid_alive(pid)]  # pip ended with train
    assert not os.path.exists(os.path.join(base, "code", "ran"))


def test_a_bad_grace_period_is_refused_before_anything_runs(tmp_path):
    from sagemaker_training.errors import ClientError

    base = write_base_dir(tmp_path, program="train.py", code={"train.py": "open('ran', 'w').close()\n"})
    result = run_train(base, {"SAGEMAKER_TERMINATION_GRACE_SECONDS": "abc"})
    assert result.returncode == ClientError("x").exit_code
    assert read_failure(base).splitlines()[0] == (
        "ClientError: environment variable SAGEMAKER_TERMINATION_GRACE_SECONDS='abc' is not valid: it must be a "
        "number >= 0; fix or unset it.")
    assert not os.path.exists(os.path.join(base, "code", "ran"))
