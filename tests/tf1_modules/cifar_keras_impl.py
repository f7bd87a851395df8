"""A keras_model_fn of early 2018 (TensorFlow 1.4's internal Keras paths).

Uses: tensorflow.python.keras._impl.keras.engine.topology.InputLayer,
tensorflow.python.keras._impl.keras.layers / models, Keras 2.0's lowercase
``rmsprop`` with ``lr`` and ``decay``,
tensorflow.python.saved_model.signature_constants.PREDICT_INPUTS,
tf.contrib.data.Dataset.from_tensor_slices with TF 1.3's
map(num_threads=..., output_buffer_size=...) and
tf.contrib.data.batch_and_drop_remainder.
"""
import os

import tensorflow as tf
from tensorflow.python.keras._impl.keras.engine.topology import InputLayer
from tensorflow.python.keras._impl.keras.layers import Dense, Flatten
from tensorflow.python.keras._impl.keras.models import Sequential
from tensorflow.python.keras._impl.keras.optimizers import rmsprop
from tensorflow.python.saved_model.signature_constants import PREDICT_INPUTS

SIDE = 8
DEPTH = 3
RECORD_BYTES = 1 + SIDE * SIDE * DEPTH


def keras_model_fn(hyperparameters):
    model = Sequential()
    model.add(InputLayer(input_shape=(SIDE, SIDE, DEPTH), name=PREDICT_INPUTS))
    model.add(Flatten())
    model.add(Dense(16, activation="relu"))
    model.add(Dense(2, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer=rmsprop(lr=0.001, decay=1e-6), metrics=["accuracy"])
    return model


def serving_input_fn(hyperparameters):
    tensor = tf.placeholder(tf.float32, shape=[None, SIDE, SIDE, DEPTH])
    return tf.estimator.export.ServingInputReceiver({PREDICT_INPUTS: tensor}, {PREDICT_INPUTS: tensor})


def train_input_fn(training_dir, hyperparameters):
    return _input(os.path.join(training_dir, "cifar-10-batches-bin", "data_batch_1.bin"), repeat=True)


def eval_input_fn(training_dir, hyperparameters):
    return _input(os.path.join(training_dir, "cifar-10-batches-bin", "test_batch.bin"), repeat=False)


def _input(path, repeat):
    with open(path, "rb") as f:
        raw = f.read()
    records = [raw[i:i + RECORD_BYTES] for i in range(0, len(raw), RECORD_BYTES)]
    dataset = tf.contrib.data.Dataset.from_tensor_slices(records)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(_parse, num_threads=2, output_buffer_size=32)
    dataset = dataset.apply(tf.contrib.data.batch_and_drop_remainder(8))
    images, labels = dataset.make_one_shot_iterator().get_next()
    return {PREDICT_INPUTS: images}, labels


def _parse(record):
    raw = tf.decode_raw(record, tf.uint8)
    image = tf.transpose(tf.reshape(raw[1:], [DEPTH, SIDE, SIDE]), [1, 2, 0])
    return tf.cast(image, tf.float32) / 255.0, tf.one_hot(tf.cast(raw[0], tf.int32), 2)
