"""The TFRecord reader of digits_records.py: a helper module of the user's
code directory, itself TensorFlow 1.x code."""
import os

import tensorflow as tf

SIDE = 8


def read_and_decode(filename_queue):
    reader = tf.TFRecordReader()
    _, serialized_example = reader.read(filename_queue)
    features = tf.parse_single_example(serialized_example, features={
        "image_raw": tf.FixedLenFeature([], tf.string),
        "label": tf.FixedLenFeature([], tf.int64),
    })
    image = tf.decode_raw(features["image_raw"], tf.uint8)
    image.set_shape([SIDE * SIDE])
    image = tf.cast(image, tf.float32) * (1. / 255)
    return image, tf.cast(features["label"], tf.int32)


def read_batches(directory, filename, batch_size):
    filename_queue = tf.train.string_input_producer([os.path.join(directory, filename)])
    image, label = read_and_decode(filename_queue)
    return tf.train.batch([image, label], batch_size=batch_size, capacity=100 + 3 * batch_size)
