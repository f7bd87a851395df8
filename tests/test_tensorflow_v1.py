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
    cifar = root / "cifar" / "cifar-10-batches-bin"  # CIFAR-10's binary layout, 8x8 images, dark 0 / bright 1
    cifar.mkdir(parents=True)
    for name, count in (("data_batch_1.bin", 96), ("test_batch.bin", 32)):
        records = bytearray()
        for _ in range(count):
            label = rng.randrange(2)
            records += bytes([label]) + bytes(rng.randrange(0, 90) + 160 * label for _ in range(8 * 8 * 3))
        (cifar / name).write_bytes(bytes(records))
    return {"abalone": str(abalone), "digits": str(digits), "iris": IRIS_DATA, "cifar": str(cifar.parent)}


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
    "cifar_contrib_layers": ("cifar_contrib_layers.py", _corpus("cifar_contrib_layers.py"), "cifar",
                             {"training_steps": 30, "evaluation_steps": 1}),
    "cifar_keras_impl": ("cifar_keras_impl.py", _corpus("cifar_keras_impl.py"), "cifar",
                         {"training_steps": 20, "evaluation_steps": 2}),
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
        "cifar_contrib_layers": {"signature": "predictions", "inputs": {"images": [[[[0.1] * 3] * 8] * 8,
                                                                                    [[[0.9] * 3] * 8] * 8]}},
        "cifar_keras_impl": {"signature": "serving_default", "inputs": {"inputs": [[[[0.1] * 3] * 8] * 8]}},
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


def test_contrib_layers_and_contrib_data_modules_predict(predictions):
    cifar = predictions["cifar_contrib_layers"]
    assert all(abs(sum(row) - 1) < 1e-4 for row in cifar["probabilities"])
    assert cifar["classes"] == [0, 1], cifar  # 30 steps separate dark from bright images
    (output,) = predictions["cifar_keras_impl"].values()
    assert len(output) == 1 and len(output[0]) == 2 and abs(sum(output[0]) - 1) < 1e-4, output


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
    # Checked and found without an equivalent: the verdict, with what was checked.
    assert missing(contrib, "slim") == (
        "tf.contrib.slim is TensorFlow 1.x API with no TensorFlow 2.15 equivalent here (checked: it became the "
        f"separate tf_slim package; TensorFlow 2.15 has no slim layers; {tf1.ADVICE}).")
    # Not checked (not among the names the SageMaker scripts used): never "no equivalent".
    assert missing(contrib, "predictor") == (
        "tf.contrib.predictor is TensorFlow 1.x API that this container does not map to TensorFlow 2.15 (not among "
        f"the tf.contrib names the SageMaker scripts of 2017-2019 used) {advice}")
    assert missing(contrib, "slimz").startswith("tf.contrib.slimz is in neither TensorFlow 1.x nor TensorFlow 2.15")
    # TF 1's pip package shipped tensorflow.examples.tutorials: not "in neither".
    assert tf1.missing_phrase("tensorflow.examples.tutorials.word2vec", "tensorflow.examples.tutorials.word2vec") \
        == f"{tf1.UNMAPPED_HINT} {advice[:-1]}"
    base = tf1.Namespace("tensorflow.contrib.learn.datasets.base", extras={"load_csv_with_header": object()})
    assert missing(base, "load_csv_with_headerz") == (
        "tf.contrib.learn.datasets.base.load_csv_with_headerz is TensorFlow 1.x API that this container does not map "
        "to TensorFlow 2.15 (not among the tf.contrib names the SageMaker scripts of 2017-2019 used), or a "
        "misspelling of tf.contrib.learn.datasets.base.load_csv_with_header " + advice)
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


# -- the tf.contrib map: every name the 2017-2019 SageMaker scripts used -------------

# TensorFlow 1.x code (run with the legacy modules' namespace) that uses each mapped tf.contrib name the way
# the scripts did and reports what it got; compared below with TensorFlow 2.15's own objects and values.
CONTRIB_NAMES = """
import importlib, json, os, sys, tempfile
import numpy as np
import tensorflow as tf
from tensorflow.contrib.data import map_and_batch
from tensorflow.contrib.data.python.ops import batching, interleave_ops, prefetching_ops
from tensorflow.contrib import rnn

real = importlib.import_module("tensorflow")  # TensorFlow 2.15 itself
v1 = real.compat.v1
work = tempfile.mkdtemp()
seen = {}

mapped = {
    "data.map_and_batch": (map_and_batch, v1.data.experimental.map_and_batch),
    "data.python.ops.batching.map_and_batch": (batching.map_and_batch, v1.data.experimental.map_and_batch),
    "data.python.ops.interleave_ops.parallel_interleave": (interleave_ops.parallel_interleave,
                                                           v1.data.experimental.parallel_interleave),
    "data.python.ops.prefetching_ops.prefetch_to_device": (prefetching_ops.prefetch_to_device,
                                                           v1.data.experimental.prefetch_to_device),
    "data.parallel_interleave": (tf.contrib.data.parallel_interleave, v1.data.experimental.parallel_interleave),
    "data.shuffle_and_repeat": (tf.contrib.data.shuffle_and_repeat, v1.data.experimental.shuffle_and_repeat),
    "data.AUTOTUNE": (tf.contrib.data.AUTOTUNE, v1.data.experimental.AUTOTUNE),
    "data.Iterator": (tf.contrib.data.Iterator, v1.data.Iterator),
    "framework.get_global_step": (tf.contrib.framework.get_global_step, v1.train.get_global_step),
    "framework.get_or_create_global_step": (tf.contrib.framework.get_or_create_global_step,
                                            v1.train.get_or_create_global_step),
    "framework.list_variables": (tf.contrib.framework.list_variables, v1.train.list_variables),
    "framework.load_variable": (tf.contrib.framework.load_variable, v1.train.load_variable),
    "framework.argsort": (tf.contrib.framework.argsort, real.argsort),
    "distributions.Categorical": (tf.contrib.distributions.Categorical, v1.distributions.Categorical),
    "distribute.CollectiveAllReduceStrategy": (tf.contrib.distribute.CollectiveAllReduceStrategy,
                                               v1.distribute.experimental.MultiWorkerMirroredStrategy),
    "distribute.OneDeviceStrategy": (tf.contrib.distribute.OneDeviceStrategy, v1.distribute.OneDeviceStrategy),
    "estimator.add_metrics": (tf.contrib.estimator.add_metrics, v1.estimator.add_metrics),
    "estimator.stop_if_no_decrease_hook": (tf.contrib.estimator.stop_if_no_decrease_hook,
                                           v1.estimator.experimental.stop_if_no_decrease_hook),
    "rnn.LSTMCell": (rnn.LSTMCell, v1.nn.rnn_cell.LSTMCell),
    "rnn.GRUCell": (rnn.GRUCell, v1.nn.rnn_cell.GRUCell),
    "rnn.MultiRNNCell": (rnn.MultiRNNCell, v1.nn.rnn_cell.MultiRNNCell),
    "rnn.DropoutWrapper": (rnn.DropoutWrapper, v1.nn.rnn_cell.DropoutWrapper),
    "rnn.RNNCell": (rnn.RNNCell, v1.nn.rnn_cell.RNNCell),
    "rnn.static_rnn": (rnn.static_rnn, v1.nn.static_rnn),
}
seen["same"] = {name: got is want for name, (got, want) in mapped.items()}

with tf.Graph().as_default():
    local = tf.contrib.framework.local_variable(tf.zeros([2]), name="counts")
    seen["local_variable"] = {
        "local": local in tf.local_variables(), "global": local in tf.global_variables(),
        "trainable": local in tf.trainable_variables(), "name": local.op.name}
    weights = tf.Variable([3.0, 1.0, 2.0], name="weights")
    order = tf.contrib.framework.argsort(weights)
    inputs = tf.placeholder(tf.float32, [None, 2])
    normed_in_place = tf.contrib.layers.batch_norm(inputs, decay=0.5, updates_collections=None, scope="in_place")
    normed = tf.contrib.layers.batch_norm(inputs, decay=0.5, scope="collected")
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    cell = rnn.MultiRNNCell([rnn.DropoutWrapper(rnn.LSTMCell(3), output_keep_prob=1.0)])
    outputs, _ = rnn.static_rnn(cell, [tf.ones([1, 2]), tf.ones([1, 2])], dtype=tf.float32)
    sample = tf.contrib.distributions.Categorical(probs=[0.0, 1.0]).sample()
    saver = tf.train.Saver([weights])
    with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
        seen["argsort"] = sess.run(order).tolist()
        feed = {inputs: [[2.0, 4.0], [4.0, 8.0]]}
        sess.run(normed_in_place, feed)
        sess.run([normed] + update_ops, feed)
        scopes = ("in_place", "collected")
        variables = {variable.op.name: variable for variable in tf.global_variables()}
        seen["batch_norm_moving_mean"] = {scope: sess.run(variables[f"{scope}/moving_mean"]).tolist()
                                          for scope in scopes}
        seen["batch_norm_update_ops"] = sorted(op.name.split("/")[0] for op in update_ops)
        seen["static_rnn"] = [list(o.shape) for o in sess.run(outputs)]
        seen["categorical"] = int(sess.run(sample))
        checkpoint = saver.save(sess, os.path.join(work, "model.ckpt"))
    seen["list_variables"] = tf.contrib.framework.list_variables(checkpoint)
    seen["load_variable"] = tf.contrib.framework.load_variable(checkpoint, "weights").tolist()

with tf.Graph().as_default():
    lines = os.path.join(work, "lines.txt")
    with open(lines, "w") as f:
        f.write("a\\nbb\\nccc\\n")
    dataset = tf.contrib.data.TextLineDataset([lines]).map(tf.strings.length, num_threads=2, output_buffer_size=4)
    dataset = dataset.apply(tf.contrib.data.batch_and_drop_remainder(2))
    padded = tf.contrib.data.Dataset.from_tensor_slices([[1], [2], [3]]).apply(
        tf.contrib.data.padded_batch_and_drop_remainder(2, [2]))
    sloppy = tf.contrib.data.Dataset.from_tensor_slices([5, 6]).apply(
        tf.contrib.data.sloppy_interleave(lambda x: tf.contrib.data.Dataset.from_tensors(x), cycle_length=1))
    with tf.Session() as sess:
        seen["datasets"] = [sess.run(d.make_one_shot_iterator().get_next()).tolist()
                            for d in (dataset, padded)] + [sorted(sess.run(
                                tf.contrib.data.get_single_element(sloppy.batch(2))).tolist())]
    seen["dataset_classes"] = [isinstance(dataset, real.data.Dataset),
                               type(tf.contrib.data.FixedLengthRecordDataset([lines], 1)).__name__]

strategy = tf.contrib.distribute.MirroredStrategy(num_gpus=0)
seen["mirrored"] = [isinstance(strategy, v1.distribute.MirroredStrategy), list(strategy.extended.worker_devices)]

source = os.path.join(work, "source.csv")
with open(source, "w") as f:
    f.write("2,2\\n1,2,0\\n3,4,1\\n")
path = tf.contrib.learn.datasets.base.maybe_download("iris.csv", os.path.join(work, "data"), "file://" + source)
again = tf.contrib.learn.datasets.base.maybe_download("iris.csv", os.path.join(work, "data"), "file:///nowhere")
table = tf.contrib.learn.datasets.base.load_csv_with_header(path, target_dtype=np.int32, features_dtype=np.float32)
seen["maybe_download"] = [path == again, table.data.tolist(), table.target.tolist()]

# MNIST's idx files, 7 training and 3 test images of 2x3 pixels (gzipped, as MNIST ships them).
import gzip
from tensorflow.contrib.learn.python.learn.datasets import mnist
from tensorflow.examples.tutorials.mnist import input_data
mnist_dir = os.path.join(work, "MNIST-data")
os.makedirs(mnist_dir)
def idx(name, magic, dims, values):
    with gzip.open(os.path.join(mnist_dir, name), "wb") as f:
        f.write(b"".join(n.to_bytes(4, "big") for n in (magic, *dims)) + bytes(values))
idx("train-images-idx3-ubyte.gz", 2051, (7, 2, 3), [10 * i for i in range(7) for _ in range(6)])
idx("train-labels-idx1-ubyte.gz", 2049, (7,), range(7))
idx("t10k-images-idx3-ubyte.gz", 2051, (3, 2, 3), [255] * 18)
idx("t10k-labels-idx1-ubyte.gz", 2049, (3,), [9, 8, 7])
sets = mnist.read_data_sets(mnist_dir, one_hot=True, validation_size=2, seed=1)
firsts = [sets.train.next_batch(3)[1].argmax(axis=1).tolist() for _ in range(3)]  # 9 labels of a 5-label epoch
raw = input_data.read_data_sets(mnist_dir, dtype=tf.uint8, reshape=False, validation_size=0)
seen["mnist"] = {
    "same_reader": input_data.read_data_sets is mnist.read_data_sets is tf.contrib.learn.datasets.mnist.read_data_sets,
    "sizes": [sets.train.num_examples, sets.validation.num_examples, sets.test.num_examples],
    "validation": [sets.validation.images.shape[1], round(float(sets.validation.images[1][0]) * 255, 3),
                   sets.validation.labels.argmax(axis=1).tolist()],
    "epochs": [sorted(firsts[0] + firsts[1][:2]), len(set(firsts[1][2:] + firsts[2])),
               set(firsts[1][2:] + firsts[2]) <= {2, 3, 4, 5, 6}, sets.train.epochs_completed],
    "uint8": [str(raw.train.images.dtype), list(raw.train.images.shape), raw.test.labels.tolist()],
}

tf.contrib._warning = None  # what generate_cifar10_tfrecords.py did to quiet tf.contrib's warning
seen["assigned"] = tf.contrib._warning is None
print(json.dumps(seen))
"""


def test_every_mapped_contrib_name_is_its_tensorflow_2_15_equivalent(tmp_path):
    """Each tf.contrib name of README's map that TensorFlow 2.15 has: the same
    object, or (for those written here) the behaviour of TensorFlow 1.x."""
    out = subprocess.run([sys.executable, "-c", f"""
from sagemaker_training.frameworks.tensorflow import tf1
exec(compile({CONTRIB_NAMES!r}, "contrib_names.py", "exec"), {{"__builtins__": tf1.module_builtins()}})
"""], capture_output=True, text=True, timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert [name for name, same in seen["same"].items() if not same] == []
    assert seen["local_variable"] == {"local": True, "global": False, "trainable": False, "name": "counts"}
    assert seen["argsort"] == [1, 2, 0]
    # Both update styles move the moving mean halfway (decay 0.5) to the batch mean [3, 6].
    assert seen["batch_norm_moving_mean"] == {"in_place": [1.5, 3.0], "collected": [1.5, 3.0]}
    assert seen["batch_norm_update_ops"] == ["collected", "collected"]  # in place: none left in UPDATE_OPS
    assert seen["static_rnn"] == [[1, 3], [1, 3]]
    assert seen["categorical"] == 1
    assert seen["list_variables"] == [["weights", [3]]] and seen["load_variable"] == [3.0, 1.0, 2.0]
    assert seen["datasets"] == [[1, 2], [[1, 0], [2, 0]], [5, 6]]
    assert seen["dataset_classes"] == [True, "FixedLengthRecordDataset"]
    assert seen["mirrored"] == [True, ["/job:localhost/replica:0/task:0/device:CPU:0"]]
    assert seen["maybe_download"] == [True, [[1.0, 2.0], [3.0, 4.0]], [0, 1]]
    assert seen["assigned"] is True
    assert seen["mnist"] == {
        "same_reader": True, "sizes": [5, 2, 3],
        "validation": [6, 10.0, [0, 1]],  # the first images, flattened and scaled to [0, 1]
        "epochs": [[2, 3, 4, 5, 6], 4, True, 1],  # each epoch a permutation of the 5 training labels
        "uint8": ["uint8", [7, 2, 3, 1], [9, 8, 7]]}


# name -> how it is reached (attribute walk from tf, or an import statement); each was checked and has none.
WITHOUT_EQUIVALENT = {
    "tf.contrib.slim": "tf.contrib.slim.arg_scope",
    "tf.contrib.framework.arg_scope": "tf.contrib.framework.arg_scope",
    "tf.contrib.framework.add_arg_scope": "tf.contrib.framework.add_arg_scope",
    "tensorflow.contrib.training.HParams": "from tensorflow.contrib.training import HParams",
    "tf.contrib.training.GreedyLoadBalancingStrategy": "tf.contrib.training.GreedyLoadBalancingStrategy",
    "tf.contrib.training.byte_size_load_fn": "tf.contrib.training.byte_size_load_fn",
    "tensorflow.contrib.learn.RunConfig": "from tensorflow.contrib.learn import RunConfig, Experiment",
    "tensorflow.contrib.learn.Experiment": "from tensorflow.contrib.learn import Experiment",
    "tensorflow.contrib.learn.SKCompat": "from tensorflow.contrib.learn import SKCompat",
    "tensorflow.contrib.learn.python.learn.learn_runner": "from tensorflow.contrib.learn.python.learn import "
                                                          "learn_runner",
    "tensorflow.contrib.learn.python.learn.utils": "from tensorflow.contrib.learn.python.learn.utils import "
                                                   "saved_model_export_utils",
    "tensorflow.contrib.learn.make_export_strategy": "from tensorflow.contrib.learn import make_export_strategy",
    "tensorflow.contrib.legacy_seq2seq": "from tensorflow.contrib import legacy_seq2seq",
    "tensorflow.contrib.all_reduce.python": "from tensorflow.contrib.all_reduce.python import all_reduce",
    "tensorflow.contrib.image.python.ops.distort_image_ops": "from tensorflow.contrib.image.python.ops import "
                                                             "distort_image_ops",
    "tensorflow.contrib.data.python.ops.threadpool": "from tensorflow.contrib.data.python.ops import threadpool",
    "tf.contrib.distributions.MultivariateNormalDiag": "tf.contrib.distributions.MultivariateNormalDiag",
    "tf.contrib.rnn.NASCell": "tf.contrib.rnn.NASCell",
}


def test_names_checked_without_an_equivalent_say_so_and_what_was_checked():
    code = f"""
import json
from sagemaker_training.frameworks.tensorflow import tf1
names = {WITHOUT_EQUIVALENT!r}
said = {{}}
for name, use in names.items():
    statement = use if use.startswith("from ") else "import tensorflow as tf\\n" + use
    try:
        exec(statement, {{"__builtins__": tf1.module_builtins()}})
    except (AttributeError, ImportError) as exc:
        said[name] = str(exc)
print(json.dumps(said))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    said = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(said) == sorted(WITHOUT_EQUIVALENT)
    for name, message in said.items():
        assert f"{name} is TensorFlow 1.x API with no TensorFlow 2.15 equivalent here (checked: " in message, message
