"""Abalone ages with tf.layers (2017 spelling): a model_fn regression.

Uses: tf.logging at import time, TF 1 internal import paths for
build_raw_serving_input_receiver_fn and PredictOutput,
tf.contrib.learn.datasets.base.load_csv_without_header,
tf.estimator.inputs.numpy_input_fn, tf.layers.dense,
tf.losses.mean_squared_error, tf.train.GradientDescentOptimizer,
tf.train.get_global_step, tf.metrics.root_mean_squared_error,
tf.placeholder.
"""
import os

import numpy as np
import tensorflow as tf
from tensorflow.python.estimator.export.export import build_raw_serving_input_receiver_fn
from tensorflow.python.estimator.export.export_output import PredictOutput

tf.logging.set_verbosity(tf.logging.INFO)

INPUT_TENSOR_NAME = "inputs"
SIGNATURE_NAME = "serving_default"


def model_fn(features, labels, mode, params):
    hidden = tf.layers.dense(features[INPUT_TENSOR_NAME], 10, activation=tf.nn.relu)
    hidden = tf.layers.dense(hidden, 10, activation=tf.nn.relu)
    predictions = tf.reshape(tf.layers.dense(hidden, 1), [-1])

    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(
            mode=mode, predictions={"ages": predictions},
            export_outputs={SIGNATURE_NAME: PredictOutput({"ages": predictions})})

    loss = tf.losses.mean_squared_error(labels, predictions)
    optimizer = tf.train.GradientDescentOptimizer(learning_rate=params["learning_rate"])
    train_op = optimizer.minimize(loss=loss, global_step=tf.train.get_global_step())
    eval_metric_ops = {"rmse": tf.metrics.root_mean_squared_error(tf.cast(labels, tf.float32), predictions)}
    return tf.estimator.EstimatorSpec(mode=mode, loss=loss, train_op=train_op, eval_metric_ops=eval_metric_ops)


def serving_input_fn(params):
    tensor = tf.placeholder(tf.float32, shape=[None, 7])
    return build_raw_serving_input_receiver_fn({INPUT_TENSOR_NAME: tensor})()


def train_input_fn(training_dir, params):
    return _input_fn(training_dir, "abalone_train.csv")


def eval_input_fn(training_dir, params):
    return _input_fn(training_dir, "abalone_test.csv")


def _input_fn(training_dir, training_filename):
    training_set = tf.contrib.learn.datasets.base.load_csv_without_header(
        filename=os.path.join(training_dir, training_filename), target_dtype=np.int, features_dtype=np.float32)
    return tf.estimator.inputs.numpy_input_fn(
        x={INPUT_TENSOR_NAME: np.array(training_set.data)},
        y=np.array(training_set.target),
        num_epochs=None,
        shuffle=True)()
