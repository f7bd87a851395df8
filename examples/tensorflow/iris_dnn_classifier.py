"""Iris with a DNNClassifier: the 2017 SageMaker legacy TensorFlow example,
written for TensorFlow 2.15's estimator API.

The container imports this module (it is not run as a script) and calls:

* ``estimator_fn(run_config, params)``: the Estimator to train;
* ``train_input_fn(training_dir, params)`` / ``eval_input_fn(training_dir, params)``:
  batches from ``iris_training.csv`` / ``iris_test.csv`` in the ``training``
  channel;
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

INPUT_TENSOR_NAME = "inputs"
FEATURES = 4
CLASSES = 3
BATCH_SIZE = 128


def estimator_fn(run_config, params):
    columns = [tf.feature_column.numeric_column(INPUT_TENSOR_NAME, shape=[FEATURES])]
    # TF 2's default (Adagrad at 0.05) leaves iris near chance after 1000 steps; Adam learns it.
    learning_rate = float(params.get("learning_rate", 0.01))
    return tf.estimator.DNNClassifier(feature_columns=columns, hidden_units=[10, 20, 10], n_classes=CLASSES,
                                      optimizer=lambda: tf.keras.optimizers.legacy.Adam(learning_rate=learning_rate),
                                      config=run_config)


def serving_input_fn(params):
    spec = {INPUT_TENSOR_NAME: tf.io.FixedLenFeature(dtype=tf.float32, shape=[FEATURES])}
    return tf.estimator.export.build_parsing_serving_input_receiver_fn(spec)()


def train_input_fn(training_dir, params):
    return _input_fn(os.path.join(training_dir, "iris_training.csv"))


def eval_input_fn(training_dir, params):
    return _input_fn(os.path.join(training_dir, "iris_test.csv"))


def load_csv_with_header(path):
    """(features float32 [rows, 4], labels int32 [rows]) of one iris CSV."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        rows, columns = int(header[0]), int(header[1])
        table = np.loadtxt(f, delimiter=",", ndmin=2)
    if table.shape != (rows, columns + 1):
        raise ValueError(f"{path}: the header announces {rows} rows of {columns} features, the file has "
                         f"{table.shape[0]} rows of {table.shape[1] - 1}")
    return table[:, :columns].astype(np.float32), table[:, columns].astype(np.int32)


def _input_fn(path):
    features, labels = load_csv_with_header(path)
    dataset = tf.data.Dataset.from_tensor_slices(({INPUT_TENSOR_NAME: features}, labels))
    return dataset.shuffle(len(labels)).repeat().batch(BATCH_SIZE)
