"""A helper module of the code dir: TensorFlow 1.x code too (tf.get_variable, tf.zeros_initializer)."""
import tensorflow as tf


def weights():
    w = tf.get_variable("w", [], initializer=tf.zeros_initializer())
    b = tf.get_variable("b", [], initializer=tf.zeros_initializer())
    return w, b
