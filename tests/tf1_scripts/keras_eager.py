"""TF 1.x script mode in the style of the 2018 SageMaker eager example: tf.enable_eager_execution,
tfe from tensorflow.contrib.eager.python, a Keras model compiled with tf.train.GradientDescentOptimizer,
tfe.Saver, and tf.contrib.saved_model.save_keras_model into the model dir."""
import argparse
import json
import os

import numpy as np
import tensorflow as tf
from tensorflow.contrib.eager.python import tfe

tf.enable_eager_execution()
tf.set_random_seed(0)
np.random.seed(0)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAINING"))
    parser.add_argument("--model_dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    return parser.parse_known_args()


def load(path):
    with open(path) as f:
        f.readline()
        table = np.loadtxt(f, delimiter=",", ndmin=2)
    return table[:, :4].astype(np.float32), table[:, 4:5].astype(np.float32)


if __name__ == "__main__":
    args, _ = parse_args()
    x, y = load(os.path.join(args.train, "iris_training.csv"))
    with tf.device("/cpu:0"):
        inputs = tf.keras.Input(shape=(4,))
        hidden = tf.keras.layers.Dense(8, activation="tanh")(inputs)
        model = tf.keras.Model(inputs=inputs, outputs=tf.keras.layers.Dense(1)(hidden))
        model.compile(optimizer=tf.train.GradientDescentOptimizer(0.05), loss="mse")
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
        mse = model.evaluate(x, y, verbose=0)
        saver = tfe.Saver(model.variables)
        saver.save(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "weights.ckpt"))
        exported = tf.contrib.saved_model.save_keras_model(model, os.environ["SM_MODEL_DIR"])
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "result.json"), "w") as f:
        json.dump({"mse": float(mse), "export": exported.decode(), "eager": tf.executing_eagerly(),
                   "gpus": tfe.num_gpus()}, f)
