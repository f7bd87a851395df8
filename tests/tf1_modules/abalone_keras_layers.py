"""Abalone ages with Keras layers in a model_fn (2017 spelling).

Uses: the tf.contrib.keras import path, tf.contrib.layers.optimize_loss,
tf.contrib.framework.get_global_step, tf.losses.absolute_difference,
tf.metrics.mean_absolute_error, tf.summary.scalar, and TF 1's
tensorflow.python.estimator.model_fn.ModeKeys.
"""
import os

import numpy as np
import tensorflow as tf
from tensorflow.contrib.keras.python.keras.layers import Dense
from tensorflow.python.estimator.export.export import build_raw_serving_input_receiver_fn
from tensorflow.python.estimator.model_fn import ModeKeys as Modes

INPUT_TENSOR_NAME = "inputs"


def model_fn(features, labels, mode, params):
    first = Dense(10, activation="relu", name="first-layer")(features[INPUT_TENSOR_NAME])
    second = Dense(10, activation="relu")(first)
    predictions = tf.reshape(Dense(1, activation="linear")(second), [-1])

    if mode == Modes.PREDICT:
        return tf.estimator.EstimatorSpec(
            mode=mode, predictions={"ages": predictions},
            export_outputs={"serving_default": tf.estimator.export.PredictOutput({"ages": predictions})})

    loss = tf.losses.absolute_difference(tf.cast(labels, tf.float32), predictions)
    tf.summary.scalar("absolute_difference", loss)
    train_op = tf.contrib.layers.optimize_loss(
        loss=loss,
        global_step=tf.contrib.framework.get_global_step(),
        learning_rate=params["learning_rate"],
        optimizer="SGD")
    eval_metric_ops = {"mae": tf.metrics.mean_absolute_error(tf.cast(labels, tf.float32), predictions)}
    return tf.estimator.EstimatorSpec(mode=mode, loss=loss, train_op=train_op, eval_metric_ops=eval_metric_ops)


def serving_input_fn(params):
    tensor = tf.placeholder(tf.float32, shape=[None, 7])
    return build_raw_serving_input_receiver_fn({INPUT_TENSOR_NAME: tensor})()


def train_input_fn(training_dir, params):
    return _input_fn(os.path.join(training_dir, "abalone_train.csv"))


def eval_input_fn(training_dir, params):
    return _input_fn(os.path.join(training_dir, "abalone_test.csv"))


def _input_fn(path):
    data = tf.contrib.learn.datasets.base.load_csv_without_header(
        filename=path, target_dtype=np.int, features_dtype=np.float32)
    return tf.estimator.inputs.numpy_input_fn(x={INPUT_TENSOR_NAME: data.data}, y=data.target, batch_size=32,
                                              num_epochs=None, shuffle=True)()
