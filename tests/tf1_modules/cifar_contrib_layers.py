"""Small CIFAR-10-style images with tf.contrib.layers and tf.contrib.data (2018 spelling).

Uses: tf.contrib.data.FixedLengthRecordDataset with TF 1.3's
map(num_threads=..., output_buffer_size=...), ``from tensorflow.contrib.data
import map_and_batch``, tf.contrib.data.AUTOTUNE,
tf.contrib.framework.local_variable (a fixed evaluation batch, as the SDK's
cifar_10 test scripts), tf.contrib.layers.conv2d / batch_norm (as a
normalizer_fn with in-place updates, and with UPDATE_OPS) / flatten /
dropout / fully_connected / variance_scaling_initializer / l1_regularizer,
tf.losses.get_regularization_loss, and a serving_input_fn that returns
build_raw_serving_input_receiver_fn(...) itself.
"""
import os

import tensorflow as tf
from tensorflow.contrib.data import map_and_batch
from tensorflow.python.estimator.export.export import build_raw_serving_input_receiver_fn

layers = tf.contrib.layers

SIDE = 8
DEPTH = 3
RECORD_BYTES = 1 + SIDE * SIDE * DEPTH
BATCH_SIZE = 16
DATA_DIR = "cifar-10-batches-bin"


def model_fn(features, labels, mode, params):
    training = mode == tf.estimator.ModeKeys.TRAIN
    net = layers.conv2d(features["images"], 4, kernel_size=[3, 3], activation_fn=tf.nn.relu,
                        weights_initializer=layers.variance_scaling_initializer(),
                        weights_regularizer=layers.l1_regularizer(1e-5),
                        normalizer_fn=layers.batch_norm,
                        normalizer_params={"is_training": training, "decay": 0.9, "updates_collections": None})
    net = tf.nn.max_pool(net, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    net = layers.batch_norm(net, is_training=training, scale=True, decay=0.9)
    net = layers.flatten(net)
    net = layers.dropout(net, keep_prob=0.8, is_training=training)
    logits = layers.fully_connected(net, 2, activation_fn=None)
    predictions = {"classes": tf.argmax(logits, 1), "probabilities": tf.nn.softmax(logits)}

    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions=predictions, export_outputs={
            "predictions": tf.estimator.export.PredictOutput(predictions)})

    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits) + tf.losses.get_regularization_loss()
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        train_op = tf.train.AdamOptimizer(0.01).minimize(loss, global_step=tf.train.get_or_create_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops={
        "accuracy": tf.metrics.accuracy(labels, predictions["classes"])})


def serving_input_fn(params):
    images = tf.placeholder(tf.float32, [None, SIDE, SIDE, DEPTH])
    return build_raw_serving_input_receiver_fn({"images": images})


def _parse(record):
    raw = tf.decode_raw(record, tf.uint8)
    label = tf.cast(raw[0], tf.int32)
    image = tf.transpose(tf.reshape(raw[1:], [DEPTH, SIDE, SIDE]), [1, 2, 0])
    return tf.cast(image, tf.float32), label


def _scale(image, label):
    return {"images": image / 255.0}, label


def _dataset(training_dir, name):
    return tf.contrib.data.FixedLengthRecordDataset([os.path.join(training_dir, DATA_DIR, name)], RECORD_BYTES)


def train_input_fn(training_dir, params):
    dataset = _dataset(training_dir, "data_batch_1.bin").repeat()
    dataset = dataset.map(_parse, num_threads=1, output_buffer_size=2 * BATCH_SIZE)
    dataset = dataset.shuffle(buffer_size=64)
    dataset = dataset.apply(map_and_batch(_scale, batch_size=BATCH_SIZE, num_parallel_batches=1))
    return dataset.prefetch(tf.contrib.data.AUTOTUNE)


def eval_input_fn(training_dir, params):
    dataset = _dataset(training_dir, "test_batch.bin").map(_parse).map(_scale).batch(BATCH_SIZE)
    features, labels = dataset.make_one_shot_iterator().get_next()
    images = tf.contrib.framework.local_variable(features["images"], name="images")
    labels = tf.contrib.framework.local_variable(labels, name="labels")
    return {"images": images}, labels
