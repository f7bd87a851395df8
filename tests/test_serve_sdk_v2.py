"""The current SageMaker Python SDK v2, unmodified, against ``sagemaker-training serve``:
a TensorFlow script-mode job (framework_version '2.14', py310; it runs on our TF 2.15)
on 2 instances with a parameter server, and an MXNet 1.9 script-mode job, both with
metric_definitions that must show up in FinalMetricDataList. The SDK runs in a
virtualenv of its own (made once, cached), as a subprocess; its config file (from
serve's exports) opts out of telemetry, so nothing leaves loopback."""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap

import pytest

from serve_helpers import REPO, ROLE, ROWS_CSV, TF_KERAS_SCRIPT, Server, run_client, sdk_fixture

BUCKET = "sdk-v2-tests"
CLIENT = os.path.join(REPO, "tests", "serve_clients", "v2_fit.py")

MXNET = """
    import argparse, os
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, gluon

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    args, _ = parser.parse_known_args()
    rows = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "rows.csv"), delimiter=",", dtype="float32")
    x, y = mx.nd.array(rows[:, :4]), mx.nd.array(rows[:, 4:])
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(1))
    net.initialize()
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    for epoch in range(args.epochs):
        with autograd.record():
            loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        trainer.step(1)
        print(f"epoch {epoch} loss={loss.asscalar():.4f}", flush=True)
    net.export(os.path.join(os.environ["SM_MODEL_DIR"], "model"))
"""


python = sdk_fixture("sdk-v2")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("serve-v2") / "state"
    server = Server(str(state), "--region", "us-west-2", "--bucket", BUCKET, "--max-running", "2").start()
    server.client("s3").put_object(Bucket=BUCKET, Key="data/rows.csv", Body=ROWS_CSV.encode())
    yield server
    server.stop()


def _fit(python, server, tmp_path, framework: str, script: str, count: int, input_mode: str = "File"):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent(script))
    stdout, output = run_client(python, server, CLIENT, framework, str(folder / "train.py"), BUCKET, ROLE, str(count),
                                input_mode)
    values = {}
    for line in stdout.splitlines():
        label, _, value = line.partition(" ")
        if label in ("MODEL_DATA", "JOB", "METRICS"):
            values[label] = value
    return output, values


def _members(server, uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())) as t:
        return sorted(t.getnames())


def test_tensorflow_script_mode_on_two_instances_with_a_parameter_server(python, server, tmp_path):
    output, values = _fit(python, server, tmp_path, "tensorflow", TF_KERAS_SCRIPT, 2)
    assert "task master 0 on algo-1" in output and "task worker 0 on algo-2" in output  # both hosts' logs
    assert "Completed - Training job completed" in output
    metrics = json.loads(values["METRICS"])
    assert [m["MetricName"] for m in metrics] == ["train:loss"]
    last = [line for line in output.splitlines() if "epoch 2 loss=" in line]
    assert last and any(f"loss={metrics[0]['Value']:.4f}" in line for line in last)
    assert "1/saved_model.pb" in _members(server, values["MODEL_DATA"])
    assert values["MODEL_DATA"] == f"s3://{BUCKET}/artifacts/{values['JOB']}/output/model.tar.gz"


def test_mxnet_1_9_script_mode_with_metric_definitions(python, server, tmp_path):
    output, values = _fit(python, server, tmp_path, "mxnet", MXNET, 1)
    assert "epoch 2 loss=" in output
    metrics = json.loads(values["METRICS"])
    last = [line for line in output.splitlines() if "epoch 2 loss=" in line][-1]
    assert metrics == [{"MetricName": "train:loss", "Value": float(last.rsplit("loss=", 1)[1])}]
    assert _members(server, values["MODEL_DATA"]) == ["model-0000.params", "model-symbol.json"]


# A TF 2.15 Keras script reading its rows through PipeModeDataset: each epoch is one iteration of the
# dataset, so each reads the next FIFO (training_0, training_1, training_2), every row of it.
TF_PIPE = """
    import argparse, os
    import tensorflow as tf
    from sagemaker_tensorflow import PipeModeDataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    args, _ = parser.parse_known_args()

    def parse(line):
        fields = tf.io.decode_csv(line, [[0.0]] * 5)
        return tf.stack(fields[:4]), fields[4]

    rows = PipeModeDataset("training", record_format="TextLine").map(parse).batch(8)
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    for epoch in range(args.epochs):
        count = 0
        for x, y in rows:
            loss = model.train_on_batch(x, y)
            count += int(x.shape[0])
        print(f"epoch {epoch}: {count} rows loss={loss:.4f}", flush=True)
    model.save(os.path.join(os.environ["SM_MODEL_DIR"], "1"))
"""


def test_tensorflow_input_mode_pipe_with_pipemodedataset(python, server, tmp_path):
    output, values = _fit(python, server, tmp_path, "tensorflow", TF_PIPE, 1, "Pipe")
    for epoch in range(3):
        assert f"epoch {epoch}: 40 rows loss=" in output, output[-3000:]
    assert "Completed - Training job completed" in output
    assert "1/saved_model.pb" in _members(server, values["MODEL_DATA"])
