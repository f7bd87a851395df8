"""Iris with a DNNClassifier: the 2017 SageMaker legacy TensorFlow example,
in the TensorFlow 1.x spelling its users have (``tf.contrib.learn``,
``tf.estimator.inputs``, ``tf.FixedLenFeature``). The container runs it
unchanged on TensorFlow 2.15.

The container imports this module (it is not run as a script) and calls:

* ``estimator_fn(run_config, params)``: the Estimator to train;
* ``train_input_fn(training_dir, params)`` / ``eval_input_fn(training_dir, params)``:
  shuffled batches of ``iris_training.csv`` / ``iris_test.csv`` in the
  ``training`` channel;
* ``serving_input_fn(params)``: the serving signature (tf.Example protos with
  a 4-float ``inputs`` feature) of the SavedModel exported to
  ``model/export/Servo/<timestamp>/``.

Each CSV starts with a header ``<rows>,<features>,<class names...>``; every
other row is 4 floats and the integer class. Train it with
``training_steps=1000, evaluation_steps=100``.
"""

import os

import numpy as np
import tensorflow as tf

INPUT_TENSOR_NAME = 'inputs'


def estimator_fn(run_config, params):
    feature_columns = [tf.feature_column.numeric_column(INPUT_TENSOR_NAME, shape=[4])]
    return tf.estimator.DNNClassifier(feature_columns=feature_columns,
                                      hidden_units=[10, 20, 10],
                                      n_classes=3,
                                      config=run_config)


def serving_input_fn(params):
    feature_spec = {INPUT_TENSOR_NAME: tf.FixedLenFeature(dtype=tf.float32, shape=[4])}
    return tf.estimator.export.build_parsing_serving_input_receiver_fn(feature_spec)()


def train_input_fn(training_dir, params):
    """The training batches (features, labels)."""
    return _generate_input_fn(training_dir, 'iris_training.csv')


def eval_input_fn(training_dir, params):
    """The evaluation batches (features, labels)."""
    return _generate_input_fn(training_dir, 'iris_test.csv')


def _generate_input_fn(training_dir, training_filename):
    training_set = tf.contrib.learn.datasets.base.load_csv_with_header(
        filename=os.path.join(training_dir, training_filename),
        target_dtype=np.int,
        features_dtype=np.float32)

    return tf.estimator.inputs.numpy_input_fn(
        x={INPUT_TENSOR_NAME: np.array(training_set.data)},
        y=np.array(training_set.target),
        num_epochs=None,
        shuffle=True)()
