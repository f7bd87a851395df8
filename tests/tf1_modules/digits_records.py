"""Small digit images from TFRecords through queue runners (the 2017
distributed-mnist spelling), with its reader in a helper module.

Uses: tf.layers.conv2d / max_pooling2d / dropout / dense,
tf.contrib.layers.fully_connected / xavier_initializer / l2_regularizer,
tf.train.get_or_create_global_step, tf.losses.softmax_cross_entropy,
tf.summary.scalar, tf.train.AdamOptimizer, tf.metrics.accuracy,
tf.estimator.export.ServingInputReceiver, tf.placeholder; the helper
(digits_input.py) uses tf.TFRecordReader, tf.parse_single_example,
tf.FixedLenFeature, tf.decode_raw, tf.train.string_input_producer and
tf.train.batch.
"""
import tensorflow as tf
from tensorflow.python.estimator.model_fn import ModeKeys as Modes

from digits_input import SIDE, read_batches

INPUT_TENSOR_NAME = "inputs"
SIGNATURE_NAME = "predictions"


def model_fn(features, labels, mode, params):
    images = tf.reshape(features[INPUT_TENSOR_NAME], [-1, SIDE, SIDE, 1])
    conv = tf.layers.conv2d(inputs=images, filters=4, kernel_size=[3, 3], padding="same", activation=tf.nn.relu)
    pool = tf.layers.max_pooling2d(inputs=conv, pool_size=[2, 2], strides=2)
    flat = tf.reshape(pool, [-1, (SIDE // 2) * (SIDE // 2) * 4])
    dense = tf.contrib.layers.fully_connected(flat, 16, weights_initializer=tf.contrib.layers.xavier_initializer(),
                                              weights_regularizer=tf.contrib.layers.l2_regularizer(1e-4))
    dropout = tf.layers.dropout(inputs=dense, rate=0.2, training=(mode == Modes.TRAIN))
    logits = tf.layers.dense(inputs=dropout, units=2)

    if mode in (Modes.PREDICT, Modes.EVAL):
        predicted = tf.argmax(input=logits, axis=1)
        probabilities = tf.nn.softmax(logits, name="softmax_tensor")
    if mode in (Modes.TRAIN, Modes.EVAL):
        global_step = tf.train.get_or_create_global_step()
        label_indices = tf.cast(labels, tf.int32)
        loss = tf.losses.softmax_cross_entropy(onehot_labels=tf.one_hot(label_indices, depth=2), logits=logits)
        tf.summary.scalar("OptimizeLoss", loss)

    if mode == Modes.PREDICT:
        predictions = {"classes": predicted, "probabilities": probabilities}
        return tf.estimator.EstimatorSpec(mode, predictions=predictions, export_outputs={
            SIGNATURE_NAME: tf.estimator.export.PredictOutput(predictions)})
    if mode == Modes.TRAIN:
        train_op = tf.train.AdamOptimizer(learning_rate=0.01).minimize(loss, global_step=global_step)
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)
    return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={
        "accuracy": tf.metrics.accuracy(label_indices, predicted)})


def serving_input_fn(params):
    inputs = {INPUT_TENSOR_NAME: tf.placeholder(tf.float32, [None, SIDE * SIDE])}
    return tf.estimator.export.ServingInputReceiver(inputs, inputs)


def train_input_fn(training_dir, params):
    images, labels = read_batches(training_dir, "train.tfrecords", batch_size=20)
    return {INPUT_TENSOR_NAME: images}, labels


def eval_input_fn(training_dir, params):
    images, labels = read_batches(training_dir, "test.tfrecords", batch_size=20)
    return {INPUT_TENSOR_NAME: images}, labels
