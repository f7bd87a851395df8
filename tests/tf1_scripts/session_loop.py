"""TF 1.x script mode in the style of the 2017-2018 low-level examples: tf.placeholder, tf.Variable,
tf.train.GradientDescentOptimizer and a tf.Session loop; a tf.train.Saver checkpoint in the model dir;
a helper module of the code dir imports tensorflow too, and a Python process started with
sys.executable keeps the TF 1.x namespace (it checks it and writes what it saw)."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

import linear_helpers

CHILD = """
import json, sys
import tensorflow as tf
x = tf.placeholder(tf.float32, [None])
with tf.Session() as sess:
    doubled = sess.run(x * 2, feed_dict={x: [1.0, 2.0]})
json.dump({"eager": tf.executing_eagerly(), "doubled": doubled.tolist(),
           "adam": tf.train.AdamOptimizer.__name__}, open(sys.argv[1], "w"))
"""

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args, _ = parser.parse_known_args()

    xs = np.linspace(-1, 1, 64).astype(np.float32)
    ys = 3 * xs + 2
    x = tf.placeholder(tf.float32, [None], name="x")
    y = tf.placeholder(tf.float32, [None], name="y")
    w, b = linear_helpers.weights()
    loss = tf.reduce_mean(tf.square(w * x + b - y))
    train_op = tf.train.GradientDescentOptimizer(args.learning_rate).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(args.steps):
            _, value = sess.run([train_op, loss], feed_dict={x: xs, y: ys})
            if step % 50 == 0:
                tf.logging.info("step %d loss %.4f", step, value)
        learned = sess.run([w, b])
        tf.train.Saver().save(sess, os.path.join(os.environ["SM_MODEL_DIR"], "linear.ckpt"))
    out = os.environ["SM_OUTPUT_DATA_DIR"]
    subprocess.run([sys.executable, "-c", CHILD, os.path.join(out, "child.json")], check=True)
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"w": float(learned[0]), "b": float(learned[1]), "loss": float(value),
                   "eager": tf.executing_eagerly(), "argv": sys.argv[1:]}, f)
