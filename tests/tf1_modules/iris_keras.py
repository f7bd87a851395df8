"""Iris with keras_model_fn (2017 spelling): a Sequential model compiled
with a tf.keras optimizer given ``lr``, CSVs read with
load_csv_with_header (imported from TF 1's internal contrib path) and fed by
tf.estimator.inputs.numpy_input_fn; a tf.placeholder serving input.
Also uses tf.contrib.learn.ModeKeys, tf.__version__, ``import a.b as c`` of
TensorFlow paths and tf.logging in a function.
"""
import os

import numpy as np
import tensorflow as tf
import tensorflow.contrib.learn as learn
from tensorflow.contrib.learn.python.learn.datasets import base

# model_to_estimator names the Sequential model's input after its first layer.
INPUT_NAME = "hidden_input"


def keras_model_fn(hyperparameters):
    tf.logging.info("building the Keras model on TensorFlow %s (mode keys %s/%s)", tf.__version__,
                    learn.ModeKeys.TRAIN, learn.ModeKeys.INFER)
    model = tf.keras.models.Sequential()
    model.add(tf.keras.layers.Dense(16, activation="relu", input_shape=(4,), name="hidden"))
    model.add(tf.keras.layers.Dense(3, activation="softmax"))
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=tf.keras.optimizers.SGD(lr=hyperparameters.get("learning_rate", 0.1)),
                  metrics=["accuracy"])
    return model


def serving_input_fn(hyperparameters):
    tensor = tf.placeholder(tf.float32, shape=[None, 4])
    return tf.estimator.export.ServingInputReceiver({INPUT_NAME: tensor}, {INPUT_NAME: tensor})


def train_input_fn(training_dir, hyperparameters):
    return _input_fn(os.path.join(training_dir, "iris_training.csv"))


def eval_input_fn(training_dir, hyperparameters):
    return _input_fn(os.path.join(training_dir, "iris_test.csv"))


def _input_fn(path):
    data = base.load_csv_with_header(filename=path, target_dtype=np.int, features_dtype=np.float32)
    return tf.estimator.inputs.numpy_input_fn(x={INPUT_NAME: data.data}, y=data.target, batch_size=16,
                                              num_epochs=None, shuffle=True)()
