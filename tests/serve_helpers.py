"""Helpers for the ``sagemaker-training serve`` tests: the real server as a subprocess,
boto3 clients of it, small training jobs, and the SDKs' own virtualenvs.

:class:`Server` starts ``sagemaker-training serve`` with its state dir in a
test's tmp dir, waits for its ``ready`` line and keeps its ``export`` lines
(the environment a client needs: the endpoint, the region and the server's
printed key pair, which every client here signs with). :func:`sdk_python` makes (once, cached
under ``~/.cache/sagemaker-training-tests``) a virtualenv holding one
SageMaker Python SDK, so that tests can run the SDK's own code unchanged as
a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import psutil

BIN = os.path.dirname(sys.executable)
CLI = [os.path.join(BIN, "sagemaker-training")] if os.path.exists(os.path.join(BIN, "sagemaker-training")) \
    else [sys.executable, "-m", "sagemaker_training.cli"]
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "sagemaker-training-tests")
SDKS = {  # name -> pip requirements
    "sdk-v1": ["sagemaker==1.72.1", "protobuf<3.21"],
    "sdk-v1-local": ["sagemaker==1.72.1", "protobuf<3.21", "PyYAML>=5.3"],  # local mode (tests/test_docker_sdk.py)
    "sdk-v2": ["sagemaker>=2.200,<3", "pandas"],  # pandas: the tuner's analytics().dataframe()
    "awscli": ["awscli>=1.40"],  # the AWS CLI (v1: on PyPI), as a client of its own
}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A TensorFlow 2.15 script-mode job as users write it today (Keras on a rows.csv channel), for the
# SDK v2 tests (serve and the SDK's own local mode): it says its TF_CONFIG task when it has one, the
# model_dir it was given and its TensorFlow, then each epoch's loss; the SavedModel goes to 1/.
TF_KERAS_SCRIPT = """
    import argparse, json, os
    import numpy as np
    import tensorflow as tf

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--model_dir")
    args, _ = parser.parse_known_args()
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task")
    if task:
        print(f"task {task['type']} {task['index']} on {os.environ['SM_CURRENT_HOST']}", flush=True)
    print(f"model_dir {args.model_dir}; tensorflow {tf.__version__}", flush=True)
    rows = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "rows.csv"), delimiter=",", dtype="float32")
    x, y = rows[:, :4], rows[:, 4]
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    for epoch in range(args.epochs):
        loss = model.fit(x, y, epochs=1, verbose=0).history["loss"][0]
        print(f"epoch {epoch} loss={loss:.4f}", flush=True)
    model.save(os.path.join(os.environ["SM_MODEL_DIR"], "1"))
"""
# its data: 40 rows of 4 features and a 0/1 label
ROWS_CSV = "\n".join(f"{i % 3 * .3:.1f},{i % 5 * .2:.1f},{i % 7 * .1:.1f},{i % 2 * .5:.1f},{i % 2}" for i in range(40))

def clean_environ() -> dict:
    """This process's environment without anything that points AWS clients elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_", "SM_", "TF_CONFIG"))}


class Server:
    def __init__(self, state_dir: str, *args: str, env: dict | None = None):
        self.state_dir = str(state_dir)
        self.args = list(args)
        self.env = {**clean_environ(), **(env or {})}
        self.process: subprocess.Popen | None = None
        self.environ: dict = {}
        self.url = None
        self.stdout_lines: list[str] = []

    def start(self, timeout: float = 90) -> "Server":
        self.stderr = open(os.path.join(self.state_dir + ".stderr.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen([*CLI, "serve", "--state-dir", self.state_dir, *self.args],
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=self.env, text=True)
        deadline = time.monotonic() + timeout
        self.environ = {}
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                code = self.process.wait()
                self.stderr.flush()
                raise AssertionError(f"serve exited with {code} before ready: {self.log()[-2000:]}")
            line = line.rstrip("\n")
            self.stdout_lines.append(line)
            if line.startswith("export "):
                name, _, value = line[len("export "):].partition("=")
                self.environ[name] = value
            elif line.startswith("ready "):
                self.url = line.split(" ", 1)[1]
                return self
        raise AssertionError("serve did not print ready in time")

    def client_environ(self) -> dict:
        return {**clean_environ(), **self.environ}

    def client(self, service: str, validate: bool = True, **config):
        """A boto3 client of the server, signing with its printed key (``validate=False``: boto3 sends
        what it is given, unchecked; ``config``: more of botocore's ``Config``)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=self.environ["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.environ["AWS_SECRET_ACCESS_KEY"],
            config=Config(parameter_validation=validate, **config))

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None, service: str = "sagemaker",
                sign: bool = True, key: tuple[str, str] | None = None, region: str | None = None,
                when=None) -> tuple[int, dict, bytes]:
        """One raw HTTP request to the server, signed (SigV4, botocore's signer) with its key, or with
        ``key`` / ``region`` / at ``when`` (a datetime) when given; (status, headers, body)."""
        import http.client
        from unittest import mock

        from botocore.auth import S3SigV4Auth, SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=self.url + path, data=body, headers=dict(headers or {}))
        if sign:
            key = key or (self.environ["AWS_ACCESS_KEY_ID"], self.environ["AWS_SECRET_ACCESS_KEY"])
            signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(
                Credentials(*key), service, region or self.environ["AWS_DEFAULT_REGION"])
            with mock.patch("botocore.auth.get_current_datetime", return_value=when) if when else _nothing():
                signer.add_auth(request)
        host, port = self.url[len("http://"):].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, body=body, headers=dict(request.headers.items()))
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def descendants(self) -> list[int]:
        return [p.pid for p in psutil.Process(self.process.pid).children(recursive=True)]

    def stop(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()
        return self.process.returncode

    def log(self) -> str:
        with open(self.stderr.name, encoding="utf-8", errors="replace") as f:
            return f.read()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_client(python: str, server: Server, script: str, *args: str, cwd=None, timeout: float = 900):
    """Run a client script with the server's environment; (its stdout, stdout + stderr).
    A non-zero exit fails the test with the output's tail."""
    result = subprocess.run([python, script, *args], cwd=cwd, env={**server.client_environ(), "PYTHONUNBUFFERED": "1"},
                            capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return result.stdout, output


def source_tarball(files: dict) -> bytes:
    """A sourcedir.tar.gz of ``files`` (name -> text, dedented)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


SCRIPT = """
    import os, signal, sys, time
    host = os.environ["SM_CURRENT_HOST"]
    print(f"hello from {host}", flush=True)
    steps = int(os.environ.get("STEPS", "3"))
    def on_term(signum, frame):
        print(f"{host} got SIGTERM, saving", flush=True)
        open(os.path.join(os.environ["SM_MODEL_DIR"], "stopped.txt"), "w").write("saved")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    for i in range(steps):
        print(f"step {i} loss={1.0 / (i + 1):.4f}", flush=True)
        time.sleep(float(os.environ.get("STEP_SECONDS", "0.1")))
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write(host)
    if os.environ.get("FAIL_WITH"):
        raise ValueError(os.environ["FAIL_WITH"])
"""


def put_code(s3, bucket: str, key: str = "code/sourcedir.tar.gz", script: str = SCRIPT) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=source_tarball({"train.py": script}))
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1,2\n3,4\n")
    return f"s3://{bucket}/{key}"


def job_request(name: str, bucket: str, code: str, hosts: int = 1, env: dict | None = None, **extra) -> dict:
    """A CreateTrainingJob body as the SDK sends it (JSON-encoded hyperparameters), for the test script."""
    body = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "123.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.9.0-cpu-py38",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": json.dumps("train.py"),
                            "sagemaker_submit_directory": json.dumps(code)},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data", "S3DataDistributionType": "FullyReplicated"}}}],
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": hosts, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if env:
        body["Environment"] = env
    body.update(extra)
    return body


def wait_for(sm, name: str, statuses=("Completed", "Failed", "Stopped"), timeout: float = 300,
             secondary: str | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = sm.describe_training_job(TrainingJobName=name)
        if answer["TrainingJobStatus"] in statuses and (secondary is None or answer["SecondaryStatus"] == secondary):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is still {answer['TrainingJobStatus']}/{answer['SecondaryStatus']}")
        time.sleep(0.3)


def stream_messages(logs, stream: str) -> list[str]:
    """Every message of a stream, read the way the SDKs read (forward tokens until an empty page)."""
    messages, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream,
                                   startFromHead=True, limit=5, **kwargs)
        if not page["events"]:
            return messages
        messages.extend(e["message"] for e in page["events"])
        token = page["nextForwardToken"]


def sdk_python(name: str) -> str:
    """The python of a virtualenv holding SDK ``name`` (made once; cached between runs)."""
    venv = os.path.join(CACHE, name)
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".ready-" + "-".join(SDKS[name]).replace("<", "lt").replace("=", "eq")
                         .replace(",", "_").replace(">", "gt"))
    if not os.path.exists(stamp):
        os.makedirs(CACHE, exist_ok=True)
        if not os.path.exists(python):
            subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *SDKS[name]],
                       check=True)
        open(stamp, "w").close()
    return python


def server_fixture(label: str, *args: str, env: dict | None = None):
    """A module-scoped pytest fixture: a serve of its own state dir, started with ``args``."""
    import pytest

    @pytest.fixture(scope="module")
    def server(tmp_path_factory):
        running = Server(str(tmp_path_factory.mktemp(label) / "state"), *args, env=env).start()
        yield running
        running.stop()

    return server


def sdk_fixture(name: str):
    """A module-scoped pytest fixture giving the python of SDK ``name``'s virtualenv."""
    import pytest

    @pytest.fixture(scope="module")
    def python():
        return sdk_python(name)

    return python
