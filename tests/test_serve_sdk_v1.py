"""The SageMaker Python SDK 1.72.1, unmodified, against ``sagemaker-training serve``:
the seeds' TensorFlow iris and MXNet mnist cells verbatim (wait=True, logs=True),
attach, a failing script, stop. The SDK runs in a virtualenv of its own
(made once, cached), as a subprocess; nothing leaves loopback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap

import pytest

from serve_helpers import REPO, ROLE, Server, run_client, sdk_fixture

SAMPLES = "sagemaker-sample-data-us-west-2"
BUCKET = "sagemaker-notebooks"
NOTEBOOKS = os.path.join(REPO, "examples", "notebooks")
CLIENTS = os.path.join(REPO, "tests", "serve_clients")


python = sdk_fixture("sdk-v1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("serve-v1") / "state"
    server = Server(str(state), "--region", "us-west-2", "--bucket", SAMPLES, "--bucket", BUCKET,
                    "--stop-grace", "5").start()
    subprocess.run([sys.executable, os.path.join(NOTEBOOKS, "upload_data.py")], env=server.client_environ(),
                   check=True, capture_output=True)
    yield server
    server.stop()


def _run(python, server, script, *args, cwd=None) -> str:
    return run_client(python, server, script, *args, cwd=cwd)[1]


def _value(output: str, label: str) -> str:
    return [line for line in output.splitlines() if line.startswith(label)][-1][len(label):].strip()


def _members(server, uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    data = server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sorted(tar.getnames())


def test_tensorflow_iris_seed_cell_then_attach(python, server):
    output = _run(python, server, os.path.join(NOTEBOOKS, "tensorflow_iris.py"),
                  cwd=os.path.join(REPO, "examples", "tensorflow"))
    # logs=True printed the job's own lines: TensorFlow's evaluation of the user's estimator
    assert "Saving dict for global step 1000: accuracy = " in output
    assert "Completed - Training job completed" in output
    model_data = _value(output, "model_data:")
    job = _value(output, "job_name:")
    assert model_data == f"s3://{BUCKET}/artifacts/{job}/output/model.tar.gz"
    exported = [m for m in _members(server, model_data) if m.endswith("saved_model.pb")]
    assert len(exported) == 1 and exported[0].startswith("export/Servo/"), exported

    attached = _run(python, server, os.path.join(CLIENTS, "v1_attach.py"), job)
    assert json.loads(_value(attached, "ATTACHED")) == {
        "model_data": model_data, "training_steps": 1000, "evaluation_steps": 100,
        "entry_point": "iris_dnn_classifier.py", "job_name": job}


def test_mxnet_mnist_seed_cell(python, server):
    output = _run(python, server, os.path.join(NOTEBOOKS, "mxnet_mnist.py"), cwd=os.path.join(REPO, "examples", "mxnet"))
    assert "Epoch[0] Train-accuracy=" in output  # the user's own logging, through CloudWatch Logs
    assert "Completed - Training job completed" in output
    model_data = _value(output, "model_data:")
    assert sorted(_members(server, model_data)) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]


def _entry_point(tmp_path, text: str) -> str:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent(text))
    return str(folder / "train.py")


@pytest.fixture
def data(server):
    server.client("s3").put_object(Bucket=BUCKET, Key="data/rows.csv", Body=b"1,2\n")


def test_a_failing_script_makes_fit_raise_the_users_message(python, server, tmp_path, data):
    entry = _entry_point(tmp_path, """
        print("about to fail", flush=True)
        raise RuntimeError("learning_rate must be positive, got -1")
    """)
    output = _run(python, server, os.path.join(CLIENTS, "v1_fail.py"), entry, BUCKET, ROLE)
    assert "about to fail" in output  # the log was streamed before the error
    raised = _value(output, "RAISED")
    assert raised.startswith("UnexpectedStatusException: Error for Training job mxnet-training-")
    assert "Failed. Reason: UserError: " in raised
    assert "RuntimeError: learning_rate must be positive, got -1" in raised


def test_stop_during_training_ends_stopped(python, server, tmp_path, data):
    entry = _entry_point(tmp_path, """
        import time
        for step in range(100000):
            print(f"step {step}", flush=True)
            time.sleep(0.2)
    """)
    output = _run(python, server, os.path.join(CLIENTS, "v1_stop.py"), entry, BUCKET, ROLE)
    assert _value(output, "STATUS") == "Stopped Stopped"
    assert "step 1" in output


def test_input_mode_pipe_job_reads_its_fifo(python, server, tmp_path):
    s3 = server.client("s3")
    s3.put_object(Bucket=BUCKET, Key="pipe-data/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket=BUCKET, Key="pipe-data/b.csv", Body=b"3,4\n")
    entry = _entry_point(tmp_path, """
        import os
        data = os.path.join(os.environ["SM_INPUT_DIR"], "data")
        with open(os.path.join(data, "train_0"), "rb") as f:
            content = f.read()
        print(f"train_0 held {content!r}", flush=True)
        open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.txt"), "wb").write(content)
    """)
    output = _run(python, server, os.path.join(CLIENTS, "v1_pipe.py"), entry, BUCKET, ROLE)
    assert "train_0 held b'1,2\\n3,4\\n'" in output  # the job's own line, through the logs API
    assert _value(output, "STATUS") == "Completed"
    assert _value(output, "INPUT_MODE") == "Pipe"
    assert _members(server, _value(output, "MODEL")) == ["seen.txt"]
