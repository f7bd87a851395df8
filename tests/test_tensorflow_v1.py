"""TensorFlow 1.x code, unchanged, on TensorFlow 2.15 (legacy modules through ``train``).

The corpus in ``tests/tf1_modules`` is 2017-style legacy code (model_fn,
keras_model_fn; the SageMaker examples' APIs: tf.contrib.learn CSV loaders,
tf.estimator.inputs, tf.layers, tf.losses, tf.train optimizers and queue
runners, tf.metrics, tf.summary, tf.parse_single_example, TF 1 internal
import paths, tf.contrib.layers.optimize_loss, tf.contrib.keras ...). Each
module trains a few dozen steps with ``SAGEMAKER_FRAMEWORK=tensorflow`` and
its exported SavedModel is loaded and asked for predictions. The seed's iris
example (estimator_fn, 2017 spelling) is trained with the seed's 1000 steps in
test_tensorflow_legacy.py; here a TF 2-spelled iris module runs too, and the
failures: TF 1 API that has no equivalent, Python 2 modules.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from tensorflow_jobs import IRIS_DATA, exports, read_failure, tf_job

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf1_modules")

# The same job in the TF 2 spelling: TF 2's canned estimator with a Keras optimizer, tf.data, tf.io.
TF2_IRIS = """
    import os
    import numpy as np
    import tensorflow as tf

    def estimator_fn(run_config, params):
        columns = [tf.feature_column.numeric_column("inputs", shape=[4])]
        return tf.estimator.DNNClassifier(feature_columns=columns, hidden_units=[10, 10], n_classes=3,
                                          optimizer=lambda: tf.keras.optimizers.legacy.Adam(learning_rate=0.05),
                                          config=run_config)

    def serving_input_fn(params):
        spec = {"inputs": tf.io.FixedLenFeature(dtype=tf.float32, shape=[4])}
        return tf.estimator.export.build_parsing_serving_input_receiver_fn(spec)()

    def _input_fn(path):
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        features = {"inputs": table[:, :4].astype(np.float32)}
        return tf.data.Dataset.from_tensor_slices((features, table[:, 4].astype(np.int32))).repeat().batch(32)

    def train_input_fn(training_dir, params):
        return _input_fn(os.path.join(training_dir, "iris_training.csv"))

    def eval_input_fn(training_dir, params):
        return _input_fn(os.path.join(training_dir, "iris_test.csv"))
"""

WRITE_RECORDS = """
import os, random, sys
import tensorflow as tf
side, out = 8, sys.argv[1]
rng = random.Random(7)
for name, count in (("train.tfrecords", 200), ("test.tfrecords", 60)):
    with tf.io.TFRecordWriter(os.path.join(out, name)) as writer:
        for _ in range(count):
            label = rng.randrange(2)  # 0: dark image, 1: bright image
            pixels = bytes(rng.randrange(0, 90) + 160 * label for _ in range(side * side))
            example = tf.train.Example(features=tf.train.Features(feature={
                "image_raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}))
            writer.write(example.SerializeToString())
"""

# Loads each SavedModel with TF 2 and calls one signature: {"path", "signature", "inputs": {name: value},
# "examples": feature name -> list of float rows (serialized as tf.Example protos into the "examples" input)}.
PREDICT = """
import json, sys
import numpy as np
import tensorflow as tf
results = []
for request in json.loads(sys.argv[1]):
    fn = tf.saved_model.load(request["path"]).signatures[request["signature"]]
    kwargs = {name: tf.constant(value, dtype=tf.float32) for name, value in request.get("inputs", {}).items()}
    if "examples" in request:
        name, rows = next(iter(request["examples"].items()))
        protos = [tf.train.Example(features=tf.train.Features(feature={name: tf.train.Feature(
            float_list=tf.train.FloatList(value=row))})).SerializeToString() for row in rows]
        kwargs["examples"] = tf.constant(protos)
    results.append({key: np.asarray(value).tolist() for key, value in fn(**kwargs).items()})
print(json.dumps(results, default=lambda value: value.decode()))  # string outputs (class names)
"""


def _abalone_rows(rng, count):
    rows = []
    for _ in range(count):
        features = [round(rng.uniform(0, 1), 3) for _ in range(7)]
        rows.append(",".join(map(str, features + [int(round(4 + 8 * sum(features) / 7))])))
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Channel directories: abalone CSVs (no header) and digit TFRecords."""
    root = tmp_path_factory.mktemp("tf1-data")
    rng = random.Random(3)
    abalone = root / "abalone"
    abalone.mkdir()
    (abalone / "abalone_train.csv").write_text(_abalone_rows(rng, 300))
    (abalone / "abalone_test.csv").write_text(_abalone_rows(rng, 60))
    digits = root / "digits"
    digits.mkdir()
    out = subprocess.run([sys.executable, "-c", WRITE_RECORDS, str(digits)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    return {"abalone": str(abalone), "digits": str(digits), "iris": IRIS_DATA}


def _corpus(*names):
    return [os.path.join(CORPUS, name) for name in names]


# name -> (entry point, files, channel, hyperparameters)
JOBS = {
    "abalone_layers": ("abalone_layers.py", _corpus("abalone_layers.py"), "abalone",
                       {"training_steps": 40, "evaluation_steps": 5, "learning_rate": 0.01}),
    "abalone_keras_layers": ("abalone_keras_layers.py", _corpus("abalone_keras_layers.py"), "abalone",
                             {"training_steps": 40, "evaluation_steps": 5, "learning_rate": 0.01}),
    "digits_records": ("digits_records.py", _corpus("digits_records.py", "digits_input.py"), "digits",
                       {"training_steps": 40, "evaluation_steps": 3}),
    "iris_keras": ("iris_keras.py", _corpus("iris_keras.py"), "iris",
                   {"training_steps": 40, "evaluation_steps": 5, "learning_rate": 0.1}),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """Every corpus module and the TF 2-spelled iris, each trained through ``train``."""
    work = tmp_path_factory.mktemp("tf1-jobs")
    jobs = {
        name: tf_job(str(work / name), program, files=files, channels={"training": data[channel]},
                     hyperparameters=hps)
        for name, (program, files, channel, hps) in JOBS.items()
    }
    jobs["tf2_iris"] = tf_job(str(work / "tf2_iris"), "tf2_iris.py", sources={"tf2_iris.py": TF2_IRIS},
                              channels={"training": IRIS_DATA},
                              hyperparameters={"training_steps": 60, "evaluation_steps": 5})
    results = {name: job.run(max_run=180) for name, job in jobs.items()}
    return jobs, results


@pytest.fixture(scope="module")
def predictions(trained):
    """name -> the outputs of the last export's signature for a few inputs (one TF process for all)."""
    jobs, results = trained
    iris_rows = [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.6, 1.8]]
    requests = {
        "abalone_layers": {"signature": "serving_default", "inputs": {"inputs": [[0.5] * 7, [0.9] * 7]}},
        "abalone_keras_layers": {"signature": "serving_default", "inputs": {"inputs": [[0.1] * 7, [0.8] * 7]}},
        "digits_records": {"signature": "predictions", "inputs": {"inputs": [[0.1] * 64, [0.9] * 64]}},
        "iris_keras": {"signature": "serving_default", "inputs": {"hidden_input": iris_rows}},
        "tf2_iris": {"signature": "predict", "examples": {"inputs": iris_rows}},
    }
    names = [name for name in requests if results[name].ok and exports(jobs[name])]
    if not names:
        return {}
    batch = [{"path": exports(jobs[name])[-1], **requests[name]} for name in names]
    out = subprocess.run([sys.executable, "-c", PREDICT, json.dumps(batch)], capture_output=True, text=True,
                         timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(zip(names, json.loads(out.stdout.strip().splitlines()[-1])))


@pytest.mark.parametrize("name", [*JOBS, "tf2_iris"])
def test_module_trains_unchanged_and_exports_a_saved_model(trained, name):
    jobs, results = trained
    assert results[name].ok, results[name].failure_reason
    found = exports(jobs[name])
    assert found and os.path.isfile(os.path.join(found[-1], "saved_model.pb"))
    steps = (JOBS[name][3] if name in JOBS else {"training_steps": 60})["training_steps"]
    with open(os.path.join(jobs[name].base_dir("algo-1"), "model", "checkpoint")) as f:
        first = f.readline().strip()  # model_to_estimator's saver writes absolute paths
    assert first.startswith("model_checkpoint_path: ") and first.endswith(f'model.ckpt-{steps}"'), first


def test_regressions_predict_one_age_per_row(predictions):
    for name in ("abalone_layers", "abalone_keras_layers"):
        ages = predictions[name]["ages"]
        assert len(ages) == 2 and all(isinstance(age, float) for age in ages), (name, ages)


def test_classifiers_predict_probabilities(predictions):
    digits = predictions["digits_records"]
    assert len(digits["classes"]) == 2 and all(c in (0, 1) for c in digits["classes"])
    assert all(abs(sum(row) - 1) < 1e-4 for row in digits["probabilities"])
    # 40 steps separate dark from bright images.
    assert digits["classes"] == [0, 1], digits
    keras = predictions["iris_keras"]
    (output,) = keras.values()
    assert len(output) == 2 and all(len(row) == 3 and abs(sum(row) - 1) < 1e-4 for row in output)
    tf2 = predictions["tf2_iris"]
    assert [row[0] for row in tf2["class_ids"]] == [0, 2], tf2


def test_summaries_and_import_time_logging_reach_the_job(trained):
    jobs, _ = trained
    events = os.path.join(jobs["abalone_keras_layers"].base_dir("algo-1"), "model")
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(events))


# -- failures ------------------------------------------------------------------

UNKNOWN_API = """
    import numpy as np
    import tensorflow as tf

    tf.logging.set_verbosity(tf.logging.INFO)

    def model_fn(features, labels, mode, params):
        net = tf.contrib.slim.fully_connected(features["inputs"], 3)
        raise AssertionError("not reached")

    def train_input_fn(training_dir, params):
        x = np.zeros((8, 4), dtype=np.float32)
        return tf.estimator.inputs.numpy_input_fn(x={"inputs": x}, y=np.zeros(8, dtype=np.int32),
                                                  num_epochs=None, shuffle=False)()

    def eval_input_fn(training_dir, params):
        return train_input_fn(training_dir, params)
"""

UNKNOWN_IMPORT = """
    import tensorflow as tf
    from tensorflow.contrib.learn import SKCompat

    def estimator_fn(run_config, params):
        raise AssertionError("not reached")

    def train_input_fn(training_dir, params):
        raise AssertionError("not reached")

    def eval_input_fn(training_dir, params):
        raise AssertionError("not reached")
"""


def test_tf1_api_without_equivalent_names_the_attribute_and_the_function(tmp_path):
    job = tf_job(str(tmp_path / "attr"), "slim.py", sources={"slim.py": UNKNOWN_API},
                 channels={"training": IRIS_DATA}, hyperparameters={"training_steps": 5})
    assert not job.run(max_run=120).ok
    first = read_failure(job).splitlines()[0]
    assert first.startswith("UserError: model_fn raised TF1AttributeError: tf.contrib.slim is TensorFlow 1.x API "
                            "with no TensorFlow 2.15 equivalent here"), first

    job = tf_job(str(tmp_path / "import"), "nets.py", sources={"nets.py": UNKNOWN_IMPORT},
                 channels={"training": IRIS_DATA}, hyperparameters={"training_steps": 5})
    assert not job.run(max_run=120).ok
    first = read_failure(job).splitlines()[0]
    assert first.startswith("UserError: importing nets.py raised ImportError: cannot import name 'SKCompat' from "
                            "tensorflow.contrib.learn: tensorflow.contrib.learn.SKCompat is TensorFlow 1.x API with "
                            "no TensorFlow 2.15 equivalent here"), first


# -- Python 2 legacy modules (TensorFlow and MXNet) ------------------------------

PYTHON2_MODULE = """
    import tensorflow as tf

    def estimator_fn(run_config, params):
        print "building the estimator"
        return tf.estimator.LinearClassifier(feature_columns=[], config=run_config)

    def train_input_fn(training_dir, params):
        pass

    def eval_input_fn(training_dir, params):
        pass
"""


PYTHON2_TRAIN = """
    import mxnet as mx

    def train(hyperparameters, channel_input_dirs, **kwargs):
        try:
            epochs = int(hyperparameters["epochs"])
        except KeyError, e:
            epochs = 1
        return None
"""


@pytest.mark.parametrize(("framework", "source", "line"), [
    ("tensorflow", PYTHON2_MODULE, 'line 5: print "building the estimator"'),
    ("mxnet", PYTHON2_TRAIN, "line 7: except KeyError, e:"),
])
def test_a_python2_legacy_module_fails_before_anything_runs(tmp_path, framework, source, line):
    from helpers import read_failure as read_base_failure
    from helpers import run_train, write_base_dir

    base = write_base_dir(tmp_path, program="legacy.py", code={"legacy.py": source})
    proc = run_train(base, {"SAGEMAKER_FRAMEWORK": framework})
    assert proc.returncode != 0
    first = read_base_failure(base).splitlines()[0]
    assert first == (f"UserError: legacy.py is Python 2 code ({line}), and this container runs Python 3 (3.11): "
                     "convert it with `2to3 -w legacy.py` (then review the changes) and run the job again."), first
    assert "Traceback" not in proc.stderr  # no child was started to fail on the import
    assert not os.listdir(os.path.join(base, "model"))


@pytest.mark.parametrize(("source", "line"), [
    ('x = 1\nprint "x"\n', 2),
    ("try:\n    pass\nexcept ValueError, e:\n    pass\n", 3),
    ('raise ValueError, "bad"\n', 1),
    ("mode = 0755\n", 1),
    ("big = 10L\n", 1),
    ("same = 1 <> 2\n", 1),
    ('exec "x = 1"\n', 1),
])
def test_python2_constructs_are_recognised(tmp_path, source, line):
    from sagemaker_training.host import entry_point

    path = tmp_path / "old.py"
    path.write_text(source)
    error = entry_point.python2_error(str(path))
    assert error is not None and error.message.startswith(f"old.py is Python 2 code (line {line}: "), error


@pytest.mark.parametrize("source", ['print("fine")\n', "def broken(:\n    pass\n", 'print("unclosed"\n'])
def test_python3_files_are_not_called_python2(tmp_path, source):
    from sagemaker_training.host import entry_point

    path = tmp_path / "new.py"
    path.write_text(source)
    assert entry_point.python2_error(str(path)) is None


def test_a_python2_helper_module_gets_the_python2_advice(tmp_path):
    """A legacy module's helper that is Python 2 fails on import with the same
    advice as a Python 2 entry point, naming the helper and its line."""
    (tmp_path / "legacy.py").write_text("import helper2\n\ndef estimator_fn(run_config, params):\n    pass\n")
    (tmp_path / "helper2.py").write_text('RATE = 0.1\nprint "helper loaded"\n')
    (tmp_path / "fine.py").write_text("import broken3\n")
    (tmp_path / "broken3.py").write_text("def broken(:\n    pass\n")  # Python 3 with a typo: not Python 2
    code = f"""
from sagemaker_training.errors import UserError
from sagemaker_training.frameworks.tensorflow import user_module
try:
    user_module.load({str(tmp_path / "legacy.py")!r}, {str(tmp_path)!r})
except UserError as exc:
    print("UserError:", exc)
try:
    user_module.load({str(tmp_path / "fine.py")!r}, {str(tmp_path)!r})
except SyntaxError as exc:
    print("SyntaxError:", exc.msg, exc.lineno)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        'UserError: helper2.py is Python 2 code (line 2: print "helper loaded"), and this container runs Python 3 '
        "(3.11): convert it with `2to3 -w helper2.py` (then review the changes) and run the job again.",
        "SyntaxError: invalid syntax 1",
    ]


def test_a_misspelled_name_is_in_neither_tensorflow_version():
    """The namespace's verdict on a missing name (no TensorFlow needed: the
    namespaces are built over stand-in modules)."""
    import types

    from sagemaker_training.frameworks.tensorflow import tf1

    layers = types.ModuleType("layers")
    layers.dense = layers.conv2d = object()

    def missing(namespace, name):
        with pytest.raises(tf1.TF1AttributeError) as caught:
            getattr(namespace, name)
        return str(caught.value)

    advice = f"({tf1.ADVICE})."
    plain = tf1.Namespace("tensorflow.layers", [layers])
    assert missing(plain, "densez") == ("tf.layers.densez is in neither TensorFlow 1.x nor TensorFlow 2.15 "
                                        "(did you mean tf.layers.dense?): check the spelling.")
    assert missing(plain, "nothing_like_it") == ("tf.layers.nothing_like_it is in neither TensorFlow 1.x nor "
                                                 "TensorFlow 2.15: check the spelling.")
    contrib = tf1.Namespace("tensorflow.contrib", extras={"layers": plain, "learn": plain})
    assert missing(contrib, "slim") == f"tf.contrib.slim is TensorFlow 1.x API with no TensorFlow 2.15 equivalent " \
                                       f"here {advice}"
    assert missing(contrib, "slimz").startswith("tf.contrib.slimz is in neither TensorFlow 1.x nor TensorFlow 2.15")
    base = tf1.Namespace("tensorflow.contrib.learn.datasets.base", extras={"load_csv_with_header": object()})
    assert missing(base, "load_csv_with_headerz") == (
        "tf.contrib.learn.datasets.base.load_csv_with_headerz is TensorFlow 1.x API with no TensorFlow 2.15 "
        "equivalent here, or a misspelling of tf.contrib.learn.datasets.base.load_csv_with_header " + advice)
    assert missing(base, "SKCompat").startswith("tf.contrib.learn.datasets.base.SKCompat is TensorFlow 1.x API")


# -- script mode keeps TensorFlow 2 as it is --------------------------------------

# A script-mode script with its own Estimator's model_fn: its main block makes it a script, not a legacy module.
SCRIPT = """
    import json, os
    import tensorflow as tf

    def model_fn(features, labels, mode, params):
        raise AssertionError("not called")

    if __name__ == "__main__":
        seen = {"type": type(tf).__name__, "contrib": hasattr(tf, "contrib"),
                "v2_summary": tf.summary.scalar is tf.compat.v2.summary.scalar}
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
            json.dump(seen, f)
"""


def test_script_mode_scripts_get_tensorflow_2_itself(tmp_path):
    job = tf_job(str(tmp_path), "script.py", sources={"script.py": SCRIPT})
    result = job.run(max_run=120)
    assert result.ok, result.failure_reason
    with open(os.path.join(job.base_dir("algo-1"), "model", "seen.json")) as f:
        assert json.load(f) == {"type": "module", "contrib": False, "v2_summary": True}
