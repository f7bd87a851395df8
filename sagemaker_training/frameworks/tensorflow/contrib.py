"""``tf.contrib`` of TensorFlow 1.x code: the pieces the SageMaker legacy examples used.

TensorFlow 2 dropped ``tf.contrib``. The 2017 SageMaker examples (iris,
abalone with layers and with Keras, distributed mnist, managed spot
training) and the tutorials of their time used:

* ``tf.contrib.learn.datasets.base.load_csv_with_header`` /
  ``load_csv_without_header`` (a ``Dataset(data, target)`` of NumPy
  arrays) and ``tf.contrib.learn.ModeKeys``;
* ``tf.contrib.layers.optimize_loss`` (loss → train op, with the
  optimizer named by a string), ``fully_connected``,
  ``xavier_initializer``, ``l2_regularizer``;
* ``tf.contrib.framework.get_global_step`` / ``get_or_create_global_step``;
* ``tf.contrib.keras`` (the namespace's ``tf.keras``);
* ``tf.contrib.saved_model.save_keras_model`` and ``tf.contrib.eager``
  (TF 1.x script mode's Keras and eager examples; :mod:`.contrib_eager`).

Written here after TensorFlow 1.x's documented behaviour; everything else
under ``tf.contrib`` is a :class:`~.tf1.TF1AttributeError`.
"""

from __future__ import annotations

import collections
import csv

Dataset = collections.namedtuple("Dataset", ["data", "target"])

OPTIMIZER_NAMES = {
    "Adagrad": "AdagradOptimizer",
    "Adam": "AdamOptimizer",
    "Ftrl": "FtrlOptimizer",
    "Momentum": "MomentumOptimizer",
    "RMSProp": "RMSPropOptimizer",
    "SGD": "GradientDescentOptimizer",
}


# --------------------------------------------------------------------------
# tf.contrib.learn.datasets.base


def load_csv_with_header(filename, target_dtype, features_dtype, target_column=-1):
    """A CSV whose first row is ``<rows>,<features>,...`` (the iris files):
    ``Dataset(data [rows, features], target [rows])``."""
    import numpy as np  # noqa: PLC0415

    with open(filename, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows, features = int(header[0]), int(header[1])
        data = np.zeros((rows, features), dtype=features_dtype)
        target = np.zeros((rows,), dtype=target_dtype)
        count = 0
        for index, row in enumerate(r for r in reader if r):
            if index >= rows:
                raise ValueError(f"{filename}: the header announces {rows} rows, the file has more")
            target[index] = np.asarray(row.pop(target_column), dtype=target_dtype)
            data[index] = np.asarray(row, dtype=features_dtype)
            count = index + 1
    if count != rows:
        raise ValueError(f"{filename}: the header announces {rows} rows, the file has {count}")
    return Dataset(data=data, target=target)


def load_csv_without_header(filename, target_dtype, features_dtype, target_column=-1):
    """A CSV of rows only, the target in ``target_column`` (the abalone files)."""
    import numpy as np  # noqa: PLC0415

    data, target = [], []
    with open(filename, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if not row:
                continue
            target.append(row.pop(target_column))
            data.append(row)
    return Dataset(data=np.array(data, dtype=features_dtype), target=np.array(target, dtype=target_dtype))


class ModeKeys:
    """``tf.contrib.learn.ModeKeys``; INFER is the Estimator's PREDICT, so the two compare equal."""

    TRAIN = "train"
    EVAL = "eval"
    INFER = "infer"


# --------------------------------------------------------------------------
# tf.contrib.layers


def _optimizer(tf, optimizer, learning_rate):
    v1 = tf.compat.v1
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"optimize_loss: unknown optimizer {optimizer!r}; use one of "
                             f"{', '.join(sorted(OPTIMIZER_NAMES))}, a tf.train.Optimizer class or instance.")
        if optimizer == "Momentum":
            raise ValueError("optimize_loss: 'Momentum' needs a momentum: pass "
                             "optimizer=lambda lr: tf.train.MomentumOptimizer(lr, momentum=0.9).")
        return getattr(v1.train, OPTIMIZER_NAMES[optimizer])(learning_rate=learning_rate)
    if isinstance(optimizer, v1.train.Optimizer):
        return optimizer
    if callable(optimizer):
        made = optimizer(learning_rate) if learning_rate is not None else optimizer()
        if isinstance(made, v1.train.Optimizer):
            return made
        raise ValueError(f"optimize_loss: optimizer made a {type(made).__name__}, not a tf.train.Optimizer.")
    raise ValueError(f"optimize_loss: optimizer {optimizer!r} is not a name, tf.train.Optimizer class or instance.")


def optimize_loss(tf, loss, global_step, learning_rate, optimizer, gradient_noise_scale=None,
                  gradient_multipliers=None, clip_gradients=None, learning_rate_decay_fn=None, update_ops=None,
                  variables=None, name=None, summaries=None, colocate_gradients_with_ops=False,
                  increment_global_step=True):
    """The train op of ``loss``: ``optimizer``'s gradients (optionally clipped
    by global norm, scaled per variable) applied after ``update_ops``; a
    tensor that evaluates to the loss once the update is done."""
    v1 = tf.compat.v1
    if gradient_noise_scale is not None:
        raise ValueError("optimize_loss(gradient_noise_scale=...) of tf.contrib.layers is not available on "
                         "TensorFlow 2.15 here: leave it out.")
    if global_step is None:
        global_step = v1.train.get_global_step()
    with v1.variable_scope(name, "OptimizeLoss", [loss, global_step]):
        if update_ops is None:
            update_ops = set(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
        if update_ops:
            with tf.control_dependencies(list(update_ops)):
                loss = tf.identity(loss)
        lr = None
        if learning_rate is not None:
            lr = tf.convert_to_tensor(learning_rate, dtype=tf.float32) if isinstance(learning_rate, (int, float)) \
                else learning_rate
            if learning_rate_decay_fn is not None:
                lr = learning_rate_decay_fn(lr, global_step)
        opt = _optimizer(tf, optimizer, lr)
        if variables is None:
            variables = v1.trainable_variables()
        gradients = opt.compute_gradients(loss, variables,
                                          colocate_gradients_with_ops=colocate_gradients_with_ops)
        if gradient_multipliers:
            gradients = [(g * gradient_multipliers.get(v, gradient_multipliers.get(v.name, 1.0))
                          if g is not None else g, v) for g, v in gradients]
        if clip_gradients is not None:
            grads, variables_ = zip(*gradients)
            clipped, _ = tf.clip_by_global_norm(grads, clip_gradients)
            gradients = list(zip(clipped, variables_))
        for summary in ("loss", "learning_rate") if summaries is None else summaries:
            if summary == "loss":
                v1.summary.scalar("loss", loss)
            elif summary == "learning_rate" and lr is not None:
                v1.summary.scalar("learning_rate", lr)
        update = opt.apply_gradients(gradients, global_step=global_step if increment_global_step else None,
                                     name="train")
        with tf.control_dependencies([update]):
            return tf.identity(loss)


def fully_connected(tf, inputs, num_outputs, activation_fn="relu", normalizer_fn=None, normalizer_params=None,
                    weights_initializer=None, weights_regularizer=None, biases_initializer="zeros",
                    biases_regularizer=None, reuse=None, variables_collections=None, outputs_collections=None,
                    trainable=True, scope=None):
    """``tf.contrib.layers.fully_connected``: a dense layer, ReLU by default."""
    v1 = tf.compat.v1
    activation = tf.nn.relu if activation_fn == "relu" else activation_fn
    outputs = v1.layers.dense(
        inputs, num_outputs, activation=None if normalizer_fn else activation,
        kernel_initializer=weights_initializer or v1.glorot_uniform_initializer(),
        kernel_regularizer=weights_regularizer,
        use_bias=biases_initializer is not None and normalizer_fn is None,
        bias_initializer=v1.zeros_initializer() if biases_initializer == "zeros" else biases_initializer,
        bias_regularizer=biases_regularizer, trainable=trainable, name=scope, reuse=reuse)
    if normalizer_fn is not None:
        outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        if activation is not None:
            outputs = activation(outputs)
    return outputs


def xavier_initializer(tf, uniform=True, seed=None, dtype=None):
    v1 = tf.compat.v1
    make = v1.glorot_uniform_initializer if uniform else v1.glorot_normal_initializer
    return make(seed=seed, dtype=dtype or tf.float32)


def l2_regularizer(tf, scale, scope=None):
    """``scale * sum(w ** 2) / 2`` of a weight tensor, as TF 1's contrib regularizer."""
    def regularizer(weights):
        with tf.name_scope(scope or "l2_regularizer"):
            return tf.multiply(tf.cast(scale, weights.dtype.base_dtype), tf.nn.l2_loss(weights))

    return regularizer


# --------------------------------------------------------------------------
# The tree


def build(root):
    """``tf.contrib`` for the TF 1.x namespace ``root``."""
    import functools  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    from .tf1 import Lazy, Namespace  # noqa: PLC0415

    v1 = tf.compat.v1

    def node(path, extras):
        return Namespace(f"tensorflow.contrib.{path}" if path else "tensorflow.contrib", extras=extras)

    def bound(fn):
        wrapper = functools.partial(fn, tf)
        functools.update_wrapper(wrapper, fn)
        return wrapper

    base = {"load_csv_with_header": load_csv_with_header, "load_csv_without_header": load_csv_without_header,
            "Dataset": Dataset}
    learn = node("learn", {
        "datasets": node("learn.datasets", {"base": node("learn.datasets.base", base), **base}),
        "ModeKeys": ModeKeys,
        "python": Lazy(lambda ns: node("learn.python", {"learn": ns})),  # tf.contrib.learn.python.learn
    })
    layers = node("layers", {name: bound(fn) for name, fn in (
        ("optimize_loss", optimize_loss), ("fully_connected", fully_connected),
        ("xavier_initializer", xavier_initializer), ("l2_regularizer", l2_regularizer))})
    framework = node("framework", {"get_global_step": v1.train.get_global_step,
                                   "get_or_create_global_step": v1.train.get_or_create_global_step})
    from . import contrib_eager  # noqa: PLC0415 - tf.contrib.eager and tf.contrib.saved_model

    return node("", {"learn": learn, "layers": layers, "framework": framework, "keras": root.keras,
                     **contrib_eager.nodes(tf, node, bound)})
