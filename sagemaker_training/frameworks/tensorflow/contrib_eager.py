"""``tf.contrib.saved_model`` and ``tf.contrib.eager`` of TensorFlow 1.x code (see :mod:`.contrib`).

TensorFlow 1.11-1.15 script-mode scripts (the SageMaker eager and Keras
examples of 2018-2019) saved their Keras model for TensorFlow Serving with
``tf.contrib.saved_model.save_keras_model(model, model_dir)`` and used
``tf.contrib.eager`` (``tfe``) for eager execution. On TensorFlow 2.15:

* :func:`save_keras_model`: a SavedModel in a new timestamped directory
  ``<saved_model_path>/<seconds since the epoch>/`` (written beside it as
  ``temp-<seconds>`` and renamed when whole), returned as bytes, as TF 1.12
  did; TensorFlow Serving takes the directory name for the model version.
  It holds the prediction graph, tagged ``serve`` with the signature
  ``serving_default`` (inputs and outputs named by the model's input and
  output names); the train and eval graphs TF 1.12 added are not written.
  In graph mode the graph and variables come from Keras' session; in eager
  mode the model is saved with ``tf.saved_model.save``.
* ``tf.contrib.eager`` (also imported as
  ``tensorflow.contrib.eager.python.tfe``): :data:`EAGER_NAMES` map to
  their TensorFlow 2.15 equivalents; ``Saver`` (:class:`EagerSaver`),
  ``num_gpus`` and ``Iterator`` are written here.
"""

from __future__ import annotations

import os
import time

# tf.contrib.eager name -> its path on TensorFlow 2.15's tf (the TF 1.x namespace's root)
EAGER_NAMES = {
    "enable_eager_execution": "compat.v1.enable_eager_execution",
    "executing_eagerly": "executing_eagerly",
    "in_eager_mode": "executing_eagerly",
    "Variable": "Variable",
    "Checkpoint": "train.Checkpoint",
    "GradientTape": "GradientTape",
    "defun": "function",
    "function": "function",
    "py_func": "py_function",
    "list_devices": "config.list_logical_devices",
}


def _new_export_dir(base: str) -> tuple[str, str]:
    """(export dir, temp dir) under ``base``: the current second, or the next free one."""
    seconds = int(time.time())
    while os.path.exists(os.path.join(base, str(seconds))) or os.path.exists(os.path.join(base, f"temp-{seconds}")):
        seconds += 1
    return os.path.join(base, str(seconds)), os.path.join(base, f"temp-{seconds}")


def save_keras_model(tf, model, saved_model_path, custom_objects=None, as_text=None):  # noqa: ARG001
    """``tf.contrib.saved_model.save_keras_model``: the model as a SavedModel in
    ``<saved_model_path>/<timestamp>``; returns that path as bytes."""
    v1 = tf.compat.v1
    base = os.fsdecode(saved_model_path)
    if "://" in base:
        raise ValueError(f"save_keras_model: {base} is not a local path: save under SM_MODEL_DIR "
                         "(/opt/ml/model), which SageMaker uploads when the job ends.")
    os.makedirs(base, exist_ok=True)
    export_dir, temp_dir = _new_export_dir(base)
    if tf.executing_eagerly():
        tf.saved_model.save(model, temp_dir)
    else:
        inputs = dict(zip(model.input_names, model.inputs))
        outputs = dict(zip(model.output_names, model.outputs))
        signature = v1.saved_model.predict_signature_def(inputs=inputs, outputs=outputs)
        builder = v1.saved_model.Builder(temp_dir)
        builder.add_meta_graph_and_variables(
            v1.keras.backend.get_session(), [v1.saved_model.tag_constants.SERVING],
            signature_def_map={v1.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature},
            main_op=v1.local_variables_initializer(), strip_default_attrs=True)
        builder.save(as_text=bool(as_text))
    os.rename(temp_dir, export_dir)
    return os.fsencode(export_dir)


class EagerSaver:
    """``tf.contrib.eager.Saver(var_list)``: a name-based checkpoint of variables in eager mode."""

    def __init__(self, tf, var_list):
        self._saver = tf.compat.v1.train.Saver(var_list)

    def save(self, file_prefix, global_step=None):
        return self._saver.save(None, file_prefix, global_step=global_step)

    def restore(self, file_prefix):
        self._saver.restore(None, file_prefix)


def num_gpus(tf) -> int:
    """``tf.contrib.eager.num_gpus()``: the GPUs TensorFlow sees."""
    return len(tf.config.list_physical_devices("GPU"))


def eager_iterator(tf, dataset):  # noqa: ARG001
    """``tf.contrib.eager.Iterator(dataset)``: a Python iterator over the dataset (eager mode)."""
    return iter(dataset)


def nodes(tf, node, bound, lazy_class) -> dict:
    """``saved_model`` and ``eager`` for :func:`.contrib.build` (``node(path, extras)`` makes a
    namespace, ``bound(fn)`` passes ``tf`` first, ``lazy_class`` is :class:`.tf1.Lazy`: like
    :mod:`.contrib`, this module imports nothing of the namespace's)."""

    def walk(path):
        value = tf
        for part in path.split("."):
            value = getattr(value, part)
        return value

    eager_extras = {name: walk(path) for name, path in EAGER_NAMES.items()}
    eager_extras.update({
        "Saver": lambda var_list: EagerSaver(tf, var_list),
        "num_gpus": bound(num_gpus),
        "Iterator": bound(eager_iterator),
        "python": lazy_class(lambda eager: node("eager.python", {"tfe": eager})),  # tensorflow.contrib.eager.python.tfe
    })
    saved_model = node("saved_model", {"save_keras_model": bound(save_keras_model)})
    return {"eager": node("eager", eager_extras), "saved_model": saved_model}
