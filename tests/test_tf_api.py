"""Which TensorFlow API a script-mode job gets (frameworks/tensorflow/api.py): the image tags
the SDKs put in TrainingImage, the knob, and ``auto`` on script snippets of both generations."""

from __future__ import annotations

import ast
import os
import textwrap

import pytest

from sagemaker_training.errors import ClientError
from sagemaker_training.frameworks.tensorflow import api

# What SageMaker Python SDK 1.72.1 (fw_utils.create_image_uri) and 2.x (image_uris.retrieve) put in
# TrainingImage, and the images of the TensorFlow containers' own READMEs.
IMAGES = [
    # SDK 1.72.1, script_mode=True, framework_version 1.11 / 1.12 (py3)
    ("520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow-scriptmode:1.11-cpu-py3", "1"),
    ("520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow-scriptmode:1.12-cpu-py3", "1"),
    ("520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow-scriptmode:1.12.0-cpu-py3", "1"),
    ("sagemaker-tensorflow-scriptmode:1.12.0-cpu-py3", "1"),  # a locally built image
    # SDK 1.72.1 and 2.x, 1.13 and later: the Deep Learning Containers' tensorflow-training
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:1.13-cpu-py3", "1"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:1.15.2-cpu-py3", "1"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:1.15.2-gpu-py37", "1"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:1.15.2-cpu-py36", "1"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:2.1.0-cpu-py3", "2"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:2.14-cpu-py310", "2"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.15.0-cpu-py310-ubuntu20.04-sagemaker", "2"),
    # the legacy images (their script-mode-free 1.x)
    ("520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:1.4.1-cpu-py2", "1"),
    ("localhost:5000/tensorflow-training:1.15.2-cpu-py3", "1"),  # a registry with a port
    # no version in the tag, or not TensorFlow: nothing (auto)
    ("123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:cpu", None),
    ("my-registry/tensorflow-training:latest", None),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training@sha256:" + "0" * 64, None),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/mxnet-training:1.9.0-cpu-py38", None),
    ("520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.4.1-cpu-py3", None),
    ("tensorflow-training:3.0-cpu", None),
    ("", None),
]


@pytest.mark.parametrize("image, expected", IMAGES)
def test_image_tag(image, expected):
    assert api.from_image(image) == expected


def test_local_mode_passes_the_tag_unless_the_knob_is_given():
    image = "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:1.15.2-cpu-py3"
    assert api.host_env(image, {}, {}) == {"SAGEMAKER_TF_API": "1"}
    assert api.host_env(image, {"SAGEMAKER_TF_API": "2"}, {}) == {}  # the request's Environment
    assert api.host_env(image, {}, {"SAGEMAKER_TF_API": "auto"}) == {}  # the caller's environment
    assert api.host_env(image, {"SAGEMAKER_TF_API": " "}, {}) == {"SAGEMAKER_TF_API": "1"}  # empty is unset
    assert api.host_env("my-image:latest", {}, {}) == {}


def test_the_knob_wins_and_a_bad_value_is_refused(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import tensorflow as tf\nsess = tf.Session()\n")
    assert api.choose({"SAGEMAKER_TF_API": "2"}, str(script), str(tmp_path)) == ("2", "SAGEMAKER_TF_API=2")
    assert api.choose({"SAGEMAKER_TF_API": "AUTO"}, str(script), str(tmp_path))[0] == "1"
    assert api.choose({}, str(script), str(tmp_path)) == (
        "1", "SAGEMAKER_TF_API is auto and train.py line 2 uses tf.Session, which only TensorFlow 1.x has")
    with pytest.raises(ClientError) as info:
        api.choose({"SAGEMAKER_TF_API": "1.15"}, str(script), str(tmp_path))
    assert info.value.message == ("environment variable SAGEMAKER_TF_API='1.15' is not valid: it must be one of "
                                  "1, 2, auto; fix or unset it.")
    assert api.choose({}, None, str(tmp_path)) == (
        "2", "SAGEMAKER_TF_API is auto and the entry point is not a Python file")


# (snippet, the TF 1.x-only name auto finds, or None for TF 2 code)
SNIPPETS = [
    ("import tensorflow as tf\nopt = tf.train.AdamOptimizer(0.01)", "tf.train.AdamOptimizer"),
    ("import tensorflow as tf\nhook = tf.train.LoggingTensorHook({'loss': 1}, every_n_iter=10)",
     "tf.train.LoggingTensorHook"),
    ("import tensorflow as tf\nx = tf.placeholder(tf.float32, [None, 4])", "tf.placeholder"),
    ("import tensorflow as tf\nwith tf.Session() as sess:\n    pass", "tf.Session"),
    ("import tensorflow as tf\ntf.logging.set_verbosity(tf.logging.INFO)", "tf.logging"),
    ("import tensorflow as tf\nflags = tf.app.flags", "tf.app"),
    ("import tensorflow as tf\nif __name__ == '__main__':\n    tf.app.run()", "tf.app"),
    ("import tensorflow as tf\ny = tf.layers.dense(x, 10)", "tf.layers"),
    ("import tensorflow as tf\nfn = tf.estimator.inputs.numpy_input_fn(x, y)", "tf.estimator.inputs"),
    ("import tensorflow as tf\ntf.contrib.saved_model.save_keras_model(m, d)", "tf.contrib"),
    ("import tensorflow as tf\nw = tf.get_variable('w', [1])", "tf.get_variable"),
    ("import tensorflow as tf\nwriter = tf.summary.FileWriter(d)", "tf.summary.FileWriter"),
    ("import tensorflow as tf\ntf.saved_model.simple_save(s, d, i, o)", "tf.saved_model.simple_save"),
    ("import tensorflow as tf\nit = dataset.make_one_shot_iterator()\nstep = tf.train.get_global_step()",
     "tf.train.get_global_step"),
    ("import tensorflow\ntensorflow.enable_eager_execution()", "tensorflow.enable_eager_execution"),
    ("from tensorflow.contrib.eager.python import tfe", "tensorflow.contrib.eager.python"),
    ("import tensorflow.contrib.slim as slim", "tensorflow.contrib.slim"),
    ("from tensorflow.examples.tutorials.mnist import input_data", "tensorflow.examples.tutorials.mnist"),
    ("from tensorflow import logging", "tensorflow.logging"),
    # TF 2 code: never TF 1.x
    ("import tensorflow as tf\nmodel = tf.keras.Sequential([tf.keras.layers.Dense(1)])", None),
    ("import tensorflow as tf\nopt = tf.keras.optimizers.Adam()\nckpt = tf.train.Checkpoint(opt=opt)", None),
    ("import tensorflow as tf\nx = tf.compat.v1.placeholder(tf.float32)\ntf.compat.v1.Session()", None),
    ("import tensorflow as tf\ntf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)", None),
    ("import tensorflow as tf\nopt = tf.compat.v1.train.AdamOptimizer()", None),
    ("import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\nx = tf.placeholder(tf.float32)", None),
    ("import tensorflow as tf\nloss = tf.losses.sparse_categorical_crossentropy(y, p)", None),
    ("import tensorflow as tf\nds = tf.data.Dataset.range(3)\nexample = tf.train.Example()", None),
    ("import tensorflow as tf\nfrom tensorflow import keras\ntf.summary.scalar('loss', 1.0)", None),
    ("import numpy as np\nclass Session:\n    pass\ns = Session()\nnp.train = 1\nnp.logging = 2", None),
    ("import tensorflow as tf\nimport mylib as tf1\ntf1.Session()", None),  # not tensorflow
    ("import tensorflow as tf\nx = tf.estimator.Estimator(model_fn)\ny = tf.estimator.LoggingTensorHook", None),
]


@pytest.mark.parametrize("source, expected", SNIPPETS)
def test_auto_on_snippets(source, expected):
    use = api.tf1_use(ast.parse(source))
    assert (use[1] if use else None) == expected


def test_auto_reads_the_code_dir_modules_the_script_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "model_def.py").write_text(textwrap.dedent("""
        import tensorflow as tf
        def build(x):
            return tf.layers.dense(x, 3)
    """))
    (tmp_path / "helpers.py").write_text("from pkg import model_def\n")
    (tmp_path / "train.py").write_text("import os\nimport tensorflow as tf\nimport helpers\n")
    assert api.scan(str(tmp_path / "train.py"), str(tmp_path)) == (os.path.join("pkg", "model_def.py"), 4,
                                                                   "tf.layers")
    (tmp_path / "tf2.py").write_text("import tensorflow as tf\nimport json\nfrom . import nothing\n")
    assert api.scan(str(tmp_path / "tf2.py"), str(tmp_path)) is None


def test_auto_scans_a_bounded_number_of_files(tmp_path):
    # a chain of modules longer than the bound; the TF 1.x name sits past it
    count = api.MAX_SCANNED_FILES + 1
    for i in range(count):
        (tmp_path / f"m{i}.py").write_text(f"import m{i + 1}\n")
    (tmp_path / f"m{count}.py").write_text("import tensorflow as tf\ntf.Session()\n")
    assert api.scan(str(tmp_path / "m0.py"), str(tmp_path)) is None
    assert api.scan(str(tmp_path / "m2.py"), str(tmp_path)) == (f"m{count}.py", 2, "tf.Session")


def test_the_tables_are_tensorflow_1_only_on_the_installed_tensorflow():
    """Every listed name is in tf.compat.v1 (TensorFlow 1.x's API) and missing from TensorFlow 2.15, so a
    script that runs on TensorFlow 2 cannot use one: auto never takes TF 2 code for TF 1.x."""
    import tensorflow as tf

    from sagemaker_training.frameworks.tensorflow.tf1_names import ONLY_TF1

    for module, names in ONLY_TF1.items():
        v1 = getattr(tf.compat.v1, module) if module else tf.compat.v1
        v2 = getattr(tf, module) if module else tf
        for name in names - {"contrib"}:
            assert hasattr(v1, name), f"tf.compat.v1.{module}.{name}"
            assert not hasattr(v2, name), f"tf.{module}.{name} exists in TensorFlow {tf.__version__}"
    assert not hasattr(tf, "contrib")


def test_auto_skips_a_module_the_parser_cannot_take(tmp_path):
    """A generated module nested beyond the parser (RecursionError) or too big for it (MemoryError) is
    skipped like a file with a syntax error: the scan goes on, the supervisor does not fail on it."""
    (tmp_path / "deep.py").write_text("total = a" + " + a" * 200_000 + "\n")
    (tmp_path / "huge.py").write_text("x = " + "-" * 100_000 + "1\n")
    (tmp_path / "model.py").write_text("import tensorflow as tf\nsess = tf.Session()\n")
    (tmp_path / "train.py").write_text("import deep\nimport huge\nimport model\n")
    assert api.scan(str(tmp_path / "train.py"), str(tmp_path)) == ("model.py", 2, "tf.Session")
