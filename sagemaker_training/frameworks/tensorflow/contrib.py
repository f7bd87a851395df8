"""``tf.contrib`` of TensorFlow 1.x code: what the SageMaker scripts of 2017-2019 used.

TensorFlow 2 dropped ``tf.contrib``. The names below are those the public
SageMaker TensorFlow training scripts of 2017-2019 used (the examples
repository, the SDK's and the containers' test scripts; README's
"tf.contrib map" lists them with the scripts), each mapped to its TensorFlow
2.15 equivalent:

* ``learn.datasets.base`` (``load_csv_with_header`` /
  ``load_csv_without_header`` / ``maybe_download``) and
  ``learn.datasets.mnist`` (:mod:`.contrib_datasets`; also TF 1's
  ``tensorflow.examples.tutorials.mnist.input_data``, :func:`examples`), and
  ``learn.ModeKeys``;
* ``layers.*`` (:mod:`.contrib_layers`, on ``tf.compat.v1.layers``);
* ``framework.local_variable`` / ``get_global_step`` /
  ``get_or_create_global_step`` / ``list_variables`` / ``load_variable`` /
  ``argsort``;
* ``data.*``: TF 1.2's datasets (:mod:`.contrib_data`), then
  ``tf.compat.v1.data.experimental`` and ``tf.compat.v1.data`` (also through
  TF 1's internal ``tensorflow.contrib.data.python.ops.*``);
* ``distribute``, ``distributions``, ``estimator``, ``rnn``: their
  ``tf.compat.v1`` homes; ``keras``: the namespace's ``tf.keras``.
* ``saved_model.save_keras_model`` and ``eager`` (TF 1.x script mode's Keras
  and eager examples; :mod:`.contrib_eager`).

Names checked and found to have no TensorFlow 2.15 equivalent are in
:data:`NO_EQUIVALENT` with what was checked; the error for any other missing
``tf.contrib`` name says it is not mapped here, never that it has no
equivalent. This module imports nothing of the namespace's: :mod:`.tf1`
hands :func:`build` its node classes.
"""

from __future__ import annotations

# tf.contrib names (dotted, ``tensorflow.contrib.``-prefixed; a module covers its names) checked against
# TensorFlow 2.15 and found without an equivalent -> what was checked.
NO_EQUIVALENT = {
    "tensorflow.contrib.slim": "it became the separate tf_slim package; TensorFlow 2.15 has no slim layers",
    "tensorflow.contrib.framework.arg_scope": "a tf.contrib.slim scope (now in the separate tf_slim package)",
    "tensorflow.contrib.framework.add_arg_scope": "a tf.contrib.slim scope (now in the separate tf_slim package)",
    "tensorflow.contrib.training.HParams": "neither tf.compat.v1 nor TensorFlow 2.15 has an HParams class",
    "tensorflow.contrib.training.GreedyLoadBalancingStrategy":
        "tf.compat.v1.train.replica_device_setter takes a ps_strategy, but 2.15 ships no load-balancing one",
    "tensorflow.contrib.training.byte_size_load_fn":
        "tf.compat.v1.train.replica_device_setter takes a ps_strategy, but 2.15 ships no load-balancing one",
    "tensorflow.contrib.learn.Experiment": "tf.contrib.learn's Experiment loop is gone; "
                                           "tf.estimator.train_and_evaluate replaces it with another API",
    "tensorflow.contrib.learn.learn_runner": "tf.contrib.learn's Experiment loop is gone; "
                                             "tf.estimator.train_and_evaluate replaces it with another API",
    "tensorflow.contrib.learn.make_export_strategy": "tf.contrib.learn's Experiment export strategies are gone; "
                                                     "tf.estimator.FinalExporter / LatestExporter replace them",
    "tensorflow.contrib.learn.utils": "tf.contrib.learn's Experiment export strategies are gone; "
                                      "tf.estimator.FinalExporter / LatestExporter replace them",
    "tensorflow.contrib.learn.RunConfig": "it configured tf.contrib.learn's Estimator and Experiment, which 2.15 "
                                         "lacks; tf.estimator.RunConfig configures tf.estimator",
    "tensorflow.contrib.learn.SKCompat": "2.15 has no scikit-learn style wrapper of an Estimator",
    "tensorflow.contrib.legacy_seq2seq": "TensorFlow 2.15 has no seq2seq functions (TensorFlow Addons' differ)",
    "tensorflow.contrib.all_reduce": "tf.distribute's cross-device ops replace it with another API",
    "tensorflow.contrib.image.python.ops.distort_image_ops": "tf.image adjusts hue and saturation, not in YIQ space",
    "tensorflow.contrib.data.threadpool": "tf.data.Options().threading.private_threadpool_size replaces it",
    "tensorflow.contrib.distributions.MultivariateNormalDiag":
        "tf.compat.v1.distributions has no multivariate distributions (TensorFlow Probability, a separate "
        "package, has them)",
    "tensorflow.contrib.rnn.NASCell": "tf.compat.v1.nn.rnn_cell has no NASCell",
}
# TF 1's internal spellings of tf.contrib paths -> the public spelling NO_EQUIVALENT uses.
INTERNAL_SPELLINGS = (("tensorflow.contrib.learn.python.learn", "tensorflow.contrib.learn"),
                      ("tensorflow.contrib.data.python.ops", "tensorflow.contrib.data"))


def no_equivalent(path: str) -> str | None:
    """What was checked, when the ``tensorflow.contrib...`` ``path`` (or a
    module above it) was found to have no TensorFlow 2.15 equivalent."""
    for internal, public in INTERNAL_SPELLINGS:
        if path == internal or path.startswith(internal + "."):
            path = public + path[len(internal):]
    parts = path.split(".")
    for end in range(len(parts), 2, -1):
        reason = NO_EQUIVALENT.get(".".join(parts[:end]))
        if reason:
            return reason
    return None


# --------------------------------------------------------------------------
# tf.contrib.learn


class ModeKeys:
    """``tf.contrib.learn.ModeKeys``; INFER is the Estimator's PREDICT, so the two compare equal."""

    TRAIN = "train"
    EVAL = "eval"
    INFER = "infer"


# --------------------------------------------------------------------------
# tf.contrib.framework, tf.contrib.data, tf.contrib.distribute


def local_variable(tf, initial_value, validate_shape=True, name=None, use_resource=None):
    """A variable in ``LOCAL_VARIABLES``, not trainable (initialised by
    ``tf.local_variables_initializer``, not saved in checkpoints)."""
    v1 = tf.compat.v1
    return v1.Variable(initial_value, trainable=False, collections=[v1.GraphKeys.LOCAL_VARIABLES],
                       validate_shape=validate_shape, name=name, use_resource=use_resource)


def batch_and_drop_remainder(tf, batch_size):  # noqa: ARG001 - bound like the rest
    return lambda dataset: dataset.batch(batch_size, drop_remainder=True)


def padded_batch_and_drop_remainder(tf, batch_size, padded_shapes, padding_values=None):  # noqa: ARG001
    return lambda dataset: dataset.padded_batch(batch_size, padded_shapes, padding_values, drop_remainder=True)


def sloppy_interleave(tf, map_func, cycle_length, block_length=1):
    return tf.data.experimental.parallel_interleave(map_func, cycle_length, block_length, sloppy=True)


def mirrored_strategy(tf, devices=None, num_gpus=None, num_gpus_per_worker=None, cross_device_ops=None,
                      auto_shard_dataset=False, cross_tower_ops=None):  # noqa: ARG001 - TF 1.12's signature
    """``tf.contrib.distribute.MirroredStrategy``: ``num_gpus`` GPUs (the CPU for 0) unless ``devices``."""
    count = num_gpus if num_gpus is not None else num_gpus_per_worker
    if devices is None and count is not None:
        devices = [f"/device:GPU:{index}" for index in range(count)] or ["/device:CPU:0"]
    return tf.compat.v1.distribute.MirroredStrategy(devices=devices,
                                                    cross_device_ops=cross_device_ops or cross_tower_ops)


# --------------------------------------------------------------------------
# The tree


def build(root, namespace_class, lazy_class):
    """``tf.contrib`` for the TF 1.x namespace ``root``, made of
    ``namespace_class`` nodes (:class:`.tf1.Namespace`) and ``lazy_class``
    extras (:class:`.tf1.Lazy`)."""
    import functools  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    from . import contrib_data, contrib_datasets, contrib_layers  # noqa: PLC0415

    v1 = tf.compat.v1

    def node(path, extras=None, sources=()):
        return namespace_class(f"tensorflow.contrib.{path}" if path else "tensorflow.contrib", sources,
                               extras=extras)

    def bound(fn):
        wrapper = functools.partial(fn, tf)
        functools.update_wrapper(wrapper, fn)
        return wrapper

    base = contrib_datasets.BASE
    learn = node("learn", {
        "datasets": node("learn.datasets", {"base": node("learn.datasets.base", base),
                                            "mnist": node("learn.datasets.mnist", contrib_datasets.MNIST), **base}),
        "ModeKeys": ModeKeys,
        "python": lazy_class(lambda ns: node("learn.python", {"learn": ns})),  # tf.contrib.learn.python.learn
    })
    layers = node("layers", {name: bound(fn) for name, fn in contrib_layers.FUNCTIONS.items()})
    framework = node("framework", {
        "get_global_step": v1.train.get_global_step, "get_or_create_global_step": v1.train.get_or_create_global_step,
        "local_variable": bound(local_variable), "list_variables": v1.train.list_variables,
        "load_variable": v1.train.load_variable, "argsort": tf.argsort})
    data_extras = {**contrib_data.classes(tf), "batch_and_drop_remainder": bound(batch_and_drop_remainder),
                   "padded_batch_and_drop_remainder": bound(padded_batch_and_drop_remainder),
                   "sloppy_interleave": bound(sloppy_interleave),
                   # TF 1's internal modules of tf.contrib.data: each is tf.contrib.data.
                   "python": lazy_class(lambda ns: node("data.python", {"ops": node("data.python.ops", {
                       name: ns for name in ("batching", "interleave_ops", "prefetching_ops")})}))}
    data = node("data", data_extras, sources=[v1.data.experimental, v1.data])
    distribute = node("distribute", {
        "MirroredStrategy": bound(mirrored_strategy),
        "CollectiveAllReduceStrategy": v1.distribute.experimental.MultiWorkerMirroredStrategy,
    }, sources=[v1.distribute, v1.distribute.experimental])
    rnn = node("rnn", {name: getattr(v1.nn, name) for name in (
        "static_rnn", "static_bidirectional_rnn", "static_state_saving_rnn")}, sources=[v1.nn.rnn_cell])
    empty = {  # modules some of whose names were checked (NO_EQUIVALENT): a missing name is named in full
        "training": node("training"),
        "image": node("image", {"python": node("image.python", {"ops": node("image.python.ops")})})}
    from . import contrib_eager  # noqa: PLC0415 - tf.contrib.eager and tf.contrib.saved_model

    return node("", {"learn": learn, "layers": layers, "framework": framework, "keras": root.keras, "data": data,
                     "distribute": distribute, "distributions": node("distributions", sources=[v1.distributions]),
                     "estimator": node("estimator", sources=[v1.estimator, v1.estimator.experimental]),
                     "rnn": rnn, **empty, **contrib_eager.nodes(tf, node, bound, lazy_class)})


def examples(namespace_class):
    """``tensorflow.examples`` of TF 1.x's pip package: ``tutorials.mnist.input_data``."""
    from . import contrib_datasets  # noqa: PLC0415

    def node(path, extras):
        return namespace_class(f"tensorflow.examples.{path}" if path else "tensorflow.examples", extras=extras)

    input_data = node("tutorials.mnist.input_data", contrib_datasets.MNIST)
    return node("", {"tutorials": node("tutorials", {"mnist": node("tutorials.mnist", {"input_data": input_data})})})
