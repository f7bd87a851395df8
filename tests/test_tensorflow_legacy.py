"""Legacy TensorFlow (the 2017 interface) through the real ``train`` process,
one host: estimator_fn, keras_model_fn and model_fn scripts train with real
TensorFlow and export SavedModels that load; input-function argument aliases;
failure reasons; S3 checkpoints with resume (moto)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from tensorflow_jobs import IRIS_DATA, IRIS_EXAMPLE, exports, load_saved_models, read_failure, tf_job

KERAS_SCRIPT = """
    import os
    import numpy as np
    import tensorflow as tf

    def _data(path):
        with open(path) as f:
            f.readline()
            table = np.loadtxt(f, delimiter=",", ndmin=2)
        return table[:, :4].astype(np.float32), table[:, 4].astype(np.int32)

    def keras_model_fn(hyperparameters):
        inputs = tf.keras.Input(shape=(4,), name="inputs")
        hidden = tf.keras.layers.Dense(hyperparameters["units"], activation="relu")(inputs)
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(3, activation="softmax")(hidden))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def train_input_fn(training_dir, hyperparameters):
        x, y = _data(os.path.join(training_dir, "iris_training.csv"))
        return tf.data.Dataset.from_tensor_slices(({"inputs": x}, y)).repeat().batch(16)

    def eval_input_fn(training_dir, hyperparameters):
        x, y = _data(os.path.join(training_dir, "iris_test.csv"))
        return tf.data.Dataset.from_tensor_slices(({"inputs": x}, y)).repeat().batch(16)

    def serving_input_fn(hyperparameters):
        inputs = tf.compat.v1.placeholder(tf.float32, [None, 4], name="inputs")
        return tf.estimator.export.ServingInputReceiver({"inputs": inputs}, {"inputs": inputs})
"""

# model_fn with its own parameter names; input functions asking by the contract's aliases.
MODEL_FN_SCRIPT = """
    import json, os
    import numpy as np
    import tensorflow as tf

    def _data(path):
        with open(path) as f:
            f.readline()
            table = np.loadtxt(f, delimiter=",", ndmin=2)
        return table[:, :4].astype(np.float32), table[:, 4].astype(np.int32)

    def model_fn(feats, targets, how, hps):
        logits = tf.keras.layers.Dense(3)(tf.keras.layers.Dense(8, activation="relu")(feats["inputs"]))
        predictions = {"class": tf.argmax(logits, 1), "probabilities": tf.nn.softmax(logits)}
        if how == tf.estimator.ModeKeys.PREDICT:
            return tf.estimator.EstimatorSpec(how, predictions=predictions, export_outputs={
                "serving_default": tf.estimator.export.PredictOutput(predictions)})
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(targets, logits)
        train_op = tf.compat.v1.train.GradientDescentOptimizer(hps["learning_rate"]).minimize(
            loss, global_step=tf.compat.v1.train.get_global_step())
        return tf.estimator.EstimatorSpec(how, loss=loss, train_op=train_op, eval_metric_ops={
            "accuracy": tf.compat.v1.metrics.accuracy(targets, predictions["class"])})

    def _record(name, **values):
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], name + ".json"), "w") as f:
            json.dump(values, f)

    def train_input_fn(dir, params):
        _record("train_input_fn", dir=dir, params=params)
        x, y = _data(os.path.join(dir, "iris_training.csv"))
        return tf.data.Dataset.from_tensor_slices(({"inputs": x}, y)).repeat().batch(16)

    def eval_input_fn(channels, hyperparameters, unknown, mode="kept"):
        _record("eval_input_fn", channels=channels, hyperparameters=hyperparameters, unknown=unknown, mode=mode)
        x, y = _data(os.path.join(channels["training"], "iris_test.csv"))
        return tf.data.Dataset.from_tensor_slices(({"inputs": x}, y)).batch(16)

    def serving_input_fn(params):
        inputs = tf.compat.v1.placeholder(tf.float32, [None, 4], name="inputs")
        return tf.estimator.export.ServingInputReceiver({"inputs": inputs}, {"inputs": inputs})
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The three kinds of legacy script, each trained once through ``train``."""
    work = tmp_path_factory.mktemp("legacy")
    channels = {"training": IRIS_DATA}
    jobs = {
        # The seed example with the seed's settings: the "done when".
        "estimator_fn": tf_job(str(work / "estimator_fn"), "iris_dnn_classifier.py", files=[IRIS_EXAMPLE],
                               channels=channels, hyperparameters={"training_steps": 1000, "evaluation_steps": 100},
                               # Unseeded, about 1 start in 14 leaves every ReLU dead (chance accuracy), as in TF 1.
                               env={"SAGEMAKER_TF_RANDOM_SEED": "1"}),
        "keras_model_fn": tf_job(str(work / "keras"), "keras_iris.py", sources={"keras_iris.py": KERAS_SCRIPT},
                                 channels=channels,
                                 hyperparameters={"training_steps": 30, "evaluation_steps": 5, "units": 8}),
        "model_fn": tf_job(str(work / "model_fn"), "custom.py", sources={"custom.py": MODEL_FN_SCRIPT},
                           channels=channels, hyperparameters={"training_steps": 30, "evaluation_steps": 5,
                                                               "learning_rate": 0.1, "save_checkpoints_steps": 10}),
    }
    results = {name: job.run(max_run=180) for name, job in jobs.items()}
    return jobs, results


@pytest.fixture(scope="module")
def signatures(trained):
    jobs, results = trained
    paths = [path for name, job in jobs.items() if results[name].ok for path in exports(job)]
    return load_saved_models(paths) if paths else {}


@pytest.mark.parametrize("kind", ["estimator_fn", "keras_model_fn", "model_fn"])
def test_legacy_script_trains_and_exports_a_saved_model(trained, signatures, kind):
    jobs, results = trained
    job, result = jobs[kind], results[kind]
    assert result.ok, result.failure_reason
    base = job.base_dir("algo-1")
    assert os.path.exists(os.path.join(base, "output", "success"))
    found = exports(job)  # LatestExporter: one per evaluation, the last one final
    assert found
    export = found[-1]
    assert os.path.isfile(os.path.join(export, "saved_model.pb"))
    assert os.path.isdir(os.path.join(export, "variables"))
    assert "serving_default" in signatures[export]
    # Without checkpoint_path the checkpoints live in the model dir, as in the 2017 containers.
    with open(os.path.join(base, "model", "checkpoint")) as f:
        assert "model.ckpt-" in f.read()


def test_iris_example_trains_the_seed_steps(trained):
    jobs, results = trained
    base = jobs["estimator_fn"].base_dir("algo-1")
    with open(os.path.join(base, "model", "checkpoint")) as f:
        assert 'model_checkpoint_path: "model.ckpt-1000"' in f.read()


IRIS_ACCURACY = """
import sys
import numpy as np
import tensorflow as tf
table = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
protos = [tf.train.Example(features=tf.train.Features(feature={"inputs": tf.train.Feature(
    float_list=tf.train.FloatList(value=row[:4]))})).SerializeToString() for row in table]
predict = tf.saved_model.load(sys.argv[1]).signatures["predict"]
classes = predict(examples=tf.constant(protos))["class_ids"].numpy()[:, 0]
print(float(np.mean(classes == table[:, 4].astype(int))))
"""


def test_iris_example_in_its_2017_spelling_learns_iris(trained):
    """The seed's script as its users have it (tf.contrib.learn, tf.estimator.inputs, tf.FixedLenFeature,
    TF 1's DNNClassifier defaults): 1000 steps classify the held-out flowers."""
    jobs, results = trained
    assert results["estimator_fn"].ok, results["estimator_fn"].failure_reason
    with open(IRIS_EXAMPLE) as f:
        source = f.read()
    assert "tf.contrib.learn.datasets.base.load_csv_with_header" in source and "tf.FixedLenFeature" in source
    out = subprocess.run([sys.executable, "-c", IRIS_ACCURACY, exports(jobs["estimator_fn"])[-1],
                          os.path.join(IRIS_DATA, "iris_test.csv")], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert float(out.stdout.strip().splitlines()[-1]) >= 0.9


def test_input_functions_get_arguments_by_name(trained):
    jobs, results = trained
    assert results["model_fn"].ok, results["model_fn"].failure_reason
    base = jobs["model_fn"].base_dir("algo-1")
    training = os.path.join(base, "input", "data", "training")
    hps = {"training_steps": 30, "evaluation_steps": 5, "learning_rate": 0.1, "save_checkpoints_steps": 10}
    with open(os.path.join(base, "output", "data", "train_input_fn.json")) as f:
        assert json.load(f) == {"dir": training, "params": hps}
    with open(os.path.join(base, "output", "data", "eval_input_fn.json")) as f:
        assert json.load(f) == {"channels": {"training": training}, "hyperparameters": hps, "unknown": None,
                                "mode": "kept"}


# -- failures -----------------------------------------------------------------

BROKEN_INPUT = """
    import tensorflow as tf

    def estimator_fn(run_config, hyperparameters):
        columns = [tf.feature_column.numeric_column("inputs", shape=[4])]
        return tf.estimator.LinearClassifier(feature_columns=columns, n_classes=3, config=run_config)

    def train_input_fn(training_dir, hyperparameters):
        return hyperparameters["training"]  # a bug: the channel is not a hyperparameter

    def eval_input_fn(training_dir, hyperparameters):
        raise AssertionError("not reached")
"""


def test_a_user_error_names_the_user_function(tmp_path):
    job = tf_job(str(tmp_path), "broken.py", sources={"broken.py": BROKEN_INPUT}, channels={"training": IRIS_DATA},
                 hyperparameters={"training_steps": 5})
    result = job.run(max_run=120)
    assert not result.ok
    first = read_failure(job).splitlines()[0]
    assert first.startswith("UserError: train_input_fn raised KeyError: 'training'"), first


# Imports TensorFlow lazily: these failures come before any TensorFlow is needed.
NO_TF_AT_IMPORT = """
    def model_fn(features, labels, mode, params):
        raise AssertionError("not reached")

    def train_input_fn(training_dir, hyperparameters):
        raise AssertionError("not reached")
"""


def test_missing_functions_and_channels_fail_before_training(tmp_path):
    missing_eval = tf_job(str(tmp_path / "a"), "m.py", sources={"m.py": NO_TF_AT_IMPORT},
                          channels={"training": IRIS_DATA})
    result = missing_eval.run(max_run=60)
    assert not result.ok
    first = read_failure(missing_eval).splitlines()[0]
    assert first.startswith("UserError: m.py: missing eval_input_fn: m.py defines model_fn, so it must also "
                            "define eval_input_fn(training_dir, hyperparameters)"), first



NO_TRAINING_CHANNEL = """
    def model_fn(features, labels, mode, params):
        raise AssertionError("not reached")

    def train_input_fn(training_dir, hyperparameters):
        raise ValueError(f"train_input_fn got training_dir={training_dir!r}")

    def eval_input_fn(dir, params):
        raise AssertionError("not reached")
"""


def test_no_training_channel_gives_training_dir_none_with_a_warning(tmp_path):
    # As the legacy container did since 2018 (the pipe-mode example relies on it).
    job = tf_job(str(tmp_path), "m.py", sources={"m.py": NO_TRAINING_CHANNEL},
                 channels={"train": IRIS_DATA, "test": IRIS_DATA})
    with open(tmp_path / "log", "w+") as log:
        result = job.run(max_run=60, out=log, err=log)
        log.seek(0)
        output = log.read()
    assert not result.ok
    first = read_failure(job).splitlines()[0]
    assert first.startswith("UserError: train_input_fn raised ValueError: train_input_fn got training_dir=None"), first
    warnings = [line for line in output.splitlines() if "has no 'training' channel" in line]
    assert len(warnings) == 1, output[-3000:]  # once, though both input functions ask
    assert "it gets None" in warnings[0] and "channels there are: test (" in warnings[0]
    assert ", train (" in warnings[0]


# -- checkpoints on S3 ----------------------------------------------------------

S3_SCRIPT = """
    import os
    import numpy as np
    import tensorflow as tf

    def estimator_fn(run_config, hyperparameters):
        columns = [tf.feature_column.numeric_column("inputs", shape=[4])]
        return tf.estimator.LinearClassifier(feature_columns=columns, n_classes=3, config=run_config)

    def _input(path):
        with open(path) as f:
            f.readline()
            table = np.loadtxt(f, delimiter=",", ndmin=2)
        features = {"inputs": table[:, :4].astype(np.float32)}
        return tf.data.Dataset.from_tensor_slices((features, table[:, 4].astype(np.int32))).repeat().batch(16)

    def train_input_fn(training_dir, hyperparameters):
        return _input(os.path.join(training_dir, "iris_training.csv"))

    def eval_input_fn(training_dir, hyperparameters):
        return _input(os.path.join(training_dir, "iris_test.csv"))
"""


@pytest.fixture(scope="module")
def tf_s3_endpoint(request):
    """The session's moto endpoint (conftest's ``s3_endpoint``) when there is
    one, else a moto server of this module's own."""
    try:
        yield request.getfixturevalue("s3_endpoint")
        return
    except pytest.FixtureLookupError:
        pass
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3_env(endpoint):
    return {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS": "0.5"}


def test_s3_checkpoints_resume_with_more_steps(tmp_path, tf_s3_endpoint):
    s3_endpoint = tf_s3_endpoint
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket="tf-ckpt")

    def index():
        body = client.get_object(Bucket="tf-ckpt", Key="runs/tune-1/checkpoints/checkpoint")["Body"].read()
        return body.decode().splitlines()[0]

    # A tuning job: checkpoint_path gets <job name>/checkpoints appended.
    first = tf_job(str(tmp_path / "first"), "linear.py", sources={"linear.py": S3_SCRIPT},
                   channels={"training": IRIS_DATA}, env=_s3_env(s3_endpoint),
                   hyperparameters={"checkpoint_path": "s3://tf-ckpt/runs", "_tuning_objective_metric": "loss",
                                    "sagemaker_job_name": "tune-1", "training_steps": 20, "evaluation_steps": 2,
                                    "save_checkpoints_steps": 10})
    out = io.StringIO()
    result = first.run(max_run=120, err=out)
    assert result.ok, result.failure_reason
    assert index() == 'model_checkpoint_path: "model.ckpt-20"'
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="tf-ckpt")["Contents"]}
    assert "runs/tune-1/checkpoints/model.ckpt-20.index" in keys
    assert all(k.startswith("runs/tune-1/checkpoints/") for k in keys)
    assert "defines no serving_input_fn: no SavedModel will be exported" in out.getvalue()
    assert exports(first) == []

    # A second job on the same location with more steps resumes from step 20.
    second = tf_job(str(tmp_path / "second"), "linear.py", sources={"linear.py": S3_SCRIPT},
                    channels={"training": IRIS_DATA}, env=_s3_env(s3_endpoint),
                    hyperparameters={"checkpoint_path": "s3://tf-ckpt/runs/tune-1/checkpoints",
                                     "training_steps": 30, "evaluation_steps": 2})
    out = io.StringIO()
    result = second.run(max_run=120, err=out)
    assert result.ok, result.failure_reason
    log = out.getvalue()
    assert "restored" in log and "model.ckpt-20" in log
    assert "Restoring parameters from" in log
    assert index() == 'model_checkpoint_path: "model.ckpt-30"'
    # Trained 10 steps, not 30: the first logged step after the restore is 21 (TF logs "step = 20" for it).
    assert "step = 0" not in log.split("restored")[1]


# -- SIGTERM ---------------------------------------------------------------------


def test_sigterm_stops_training_with_a_checkpoint_of_the_step_reached(tmp_path):
    import signal
    import time

    from helpers import read_failure as read_base_failure
    from helpers import sdk_encode, start_train, write_base_dir

    with open(IRIS_EXAMPLE) as f:
        example = f.read()
    data = {}
    for name in ("iris_training.csv", "iris_test.csv"):
        with open(os.path.join(IRIS_DATA, name)) as f:
            data[name] = f.read()
    base = write_base_dir(tmp_path, sdk_encode({"training_steps": 10_000_000, "evaluation_steps": 5}),
                          program="iris_dnn_classifier.py", code={"iris_dnn_classifier.py": example},
                          channels={"training": data})
    log_path = tmp_path / "train.log"
    with open(log_path, "wb") as log:
        proc = start_train(base, {"SAGEMAKER_FRAMEWORK": "tensorflow", "SAGEMAKER_TERMINATION_GRACE_SECONDS": "30"},
                           stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while b"step = 500" not in log_path.read_bytes():
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text()
    assert code == 128 + signal.SIGTERM, text[-3000:]
    assert read_base_failure(base).startswith("Stopped: the container received SIGTERM")
    assert "received SIGTERM: stopping after this step and saving a checkpoint" in text
    with open(os.path.join(base, "model", "checkpoint")) as f:
        step = int(f.readline().split("model.ckpt-")[1].strip('"\n'))
    assert step >= 500
